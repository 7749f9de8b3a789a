"""Row 6 of docs/papers.md §4: the mechanism of the residual polysemantic neurons of the LR3 models.

``analysis.explain_summary`` sorts the neurons of every LR3 model into mono, narrow, broad and dead
(``analysis.neuron_kinds``). The paper's residual polysemantic neurons are the **broad** ones (firing for at least a
quarter of the lone features); the narrow ones are near-mono neurons just under the 0.999 cut and are reported
separately. :func:`judge_mechanism` checks the paper's picture (Sec. 5 as reconstructed in docs/papers.md §1.6) on
the models in the paper's regime, and :func:`figure_mechanism` draws the most monosemantic one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from toymodels.families.em.analysis import KINDS, explain_summary, instance_config, training_like_inputs
from toymodels.plotting.save import save_figure
from toymodels.results.store import Results
from toymodels.reproduce.em_claims.figures import EM_FIGURE_DPI, figure_row
from toymodels.reproduce.em_claims.judges import claim_verdict
from toymodels.reproduce.em_claims.rules import RULES, EMRules
from toymodels.reproduce.verdict import Check, Verdict, verdict_from_checks

#: The two central criteria: without them the paper's description of the residual neurons does not hold here.
CENTRAL = ("broad neurons mostly positive-bias", "broad block ≈ c·EᵀE")


def regime_problem(mono_per_feature: float, dead: int, k: int, broad: int, rules: EMRules = RULES) -> str:
    """Why a model is outside the claim's regime ('' when inside): the regime of ``rules``."""
    problems = []
    if not mono_per_feature >= rules.regime_mono_per_feature:
        problems.append(f"mono/feature {mono_per_feature:.2f} < {rules.regime_mono_per_feature}")
    if dead > rules.regime_max_dead_fraction * k:
        problems.append(f"{dead}/{k} neurons dead (> {rules.regime_max_dead_fraction:.0%})")
    if broad < rules.min_broad:
        problems.append(f"{broad} broad neurons (< {rules.min_broad})")
    return "; ".join(problems)


def mechanism_numbers(res: Results, rules: EMRules = RULES) -> pd.DataFrame:
    """``analysis.explain_summary`` of the final model of every LR3 instance that did not diverge, most
    monosemantic first: one row per model with its regime (``in_regime``, ``outside``: why not), the counts of each
    kind, the broad block's numbers, the narrow neurons' and the first 2m singular values of the broad block."""
    inst = res.instances[res.instances["status"] == "ok"].sort_values("mono_per_feature", ascending=False)
    rows = []
    for _, r in inst.iterrows():
        cfg = instance_config(res, r["run_id"])
        p = res.params(r["run_id"])
        s = explain_summary(p["W1"], p["b1"], p["W2"], p["E"], cfg.model.nonlinearity, task=cfg.task.task,
                            inputs=training_like_inputs(cfg))
        mono = s["neurons"][s["neurons"]["kind"] == "mono"]
        N, m, k = p["E"].shape[1], p["E"].shape[0], p["W1"].shape[0]
        outside = regime_problem(s["n_mono"] / N, s["n_dead"], k, s["n_broad"], rules)
        rows.append(dict(
            run_id=r["run_id"], lr=float(r["lr"]), seed=int(r["seed"]), mono_per_feature=s["n_mono"] / N,
            in_regime=not outside, outside=outside, N=N, m=m, k=k,
            **{f"n_{kind}": s[f"n_{kind}"] for kind in KINDS},
            **{key: s[key] for key in (
                "broad_positive_bias", "broad_median_bias", "broad_features_firing", "broad_linear_fraction",
                "broad_rank", "gram_c", "gram_residual", "offset_mean", "offset_std", "offset_same_sign",
                "narrow_features_firing", "narrow_median_bias", "narrow_median_mono_ratio",
                "loss_full", "loss_without_broad", "loss_broad", "loss_mono", "loss_zero")},
            mono_negative_bias=float((mono["bias"] < 0).mean()) if len(mono) else float("nan"),
            mono_threshold=float(mono["threshold"].median()) if len(mono) else float("nan"),
            sv=[float(x) for x in torch.as_tensor(s["broad_singular_values"])[:2 * m]]))
    return pd.DataFrame(rows)


#: The columns of the verdict's table (the document), in order.
TABLE_COLUMNS = ("lr", "seed", "mono_per_feature", "n_dead", "n_narrow", "n_broad", "broad_positive_bias",
                 "broad_median_bias", "broad_features_firing", "broad_linear_fraction", "gram_c", "gram_residual",
                 "offset_mean", "loss_full", "loss_without_broad", "in_regime")


def mechanism_checks(models: pd.DataFrame, rules: EMRules = RULES) -> tuple[Check, ...]:
    """The four criteria of claim 6 on the medians over ``models`` (rows of :func:`mechanism_numbers`), each with
    the number of models it holds in on its own."""
    med = models.median(numeric_only=True)
    rise = models["loss_without_broad"] / models["loss_full"].where(models["loss_full"] > 0) - 1
    med_rise = float(rise.median()) if rise.notna().any() else float("inf")
    tests = (
        (CENTRAL[0], models["broad_positive_bias"] >= rules.positive_bias_min,
         med["broad_positive_bias"] >= rules.positive_bias_min,
         f"{med['broad_positive_bias']:.2f} of them have b > 0, median b {med['broad_median_bias']:.3f}"),
        (CENTRAL[1], (models["gram_c"] > 0) & (models["gram_residual"] <= rules.fit_residual_max),
         med["gram_c"] > 0 and med["gram_residual"] <= rules.fit_residual_max,
         f"c = {med['gram_c']:.3f}, relative residual {med['gram_residual']:.2f}"),
        ("broad neurons in the linear region", models["broad_linear_fraction"] >= rules.linear_fraction_min,
         med["broad_linear_fraction"] >= rules.linear_fraction_min,
         f"{med['broad_linear_fraction']:.2f} of (input, neuron) pairs fire"),
        ("removing the broad block raises the loss", rise >= rules.loss_rise_min, med_rise >= rules.loss_rise_min,
         f"lone-feature loss {med['loss_full']:.4f} -> {med['loss_without_broad']:.4f} without it"),
    )
    return tuple(Check(name, bool(holds), f"{detail}; holds in {int(each.sum())}/{len(models)} models")
                 for name, each, holds, detail in tests)


def outside_regime(mech: pd.DataFrame, rules: EMRules = RULES) -> str:
    """The same criteria on the models outside the regime that have enough broad neurons, per lr: evidence about
    other solutions, reported and never part of the verdict (e.g. LR3 at lr 0.01, where every criterion may hold
    while mono/feature stays far below the paper's ≈1)."""
    out = mech[~mech["in_regime"] & (mech["n_broad"] >= rules.min_broad)]
    parts = []
    for lr, group in out.groupby("lr"):
        checks = mechanism_checks(group, rules)
        held = [c.criterion for c in checks if c.passed]
        parts.append(f"lr {lr:g} ({len(group)} models, median mono/feature "
                     f"{group['mono_per_feature'].median():.2f}): {len(held)}/{len(checks)} criteria hold"
                     + (f" ({', '.join(held)})" if held else ""))
    return ("Outside the regime (not evidence for the claim, which is about the highly monosemantic models): "
            + "; ".join(parts)) if parts else ""


def judge_mechanism(res: Results | None, rules: EMRules = RULES) -> Verdict:
    """Row 6: the residual polysemantic neurons of the LR3 models (docs/papers.md §1.6). The rule (thresholds in
    ``rules``):

    1. Regime first. A model is in the claim's regime when mono/feature >= ``regime_mono_per_feature``, at most
       ``regime_max_dead_fraction`` of its neurons are dead and it has at least ``min_broad`` broad neurons.
       Without such a model the verdict is ``inconclusive`` and says why.
    2. On the medians over the models in the regime, four criteria (:func:`mechanism_checks`), each also counted
       model by model:
       * broad neurons mostly positive-bias: fraction with b > 0 >= ``positive_bias_min`` (central);
       * broad block ≈ c·EᵀE: the linear part ``W2_B W1_B E`` of the block's affine map fits ``c EᵀE`` with c > 0
         and relative residual <= ``fit_residual_max`` (central); the output offset ``W2_B b_B`` is reported;
       * broad neurons in the linear region: >= ``linear_fraction_min`` of (input, broad neuron) pairs fire;
       * removing the broad block raises the lone-feature loss by >= ``loss_rise_min``.
       ``agrees``: all hold; ``disagrees``: both central ones fail; ``partly``: a central one holds and another
       criterion fails (a non-central criterion alone cannot make ``partly``: both central failing is disagrees).
       With fewer than 2 models in the regime the verdict is at most ``inconclusive``: one model is not a sample.
    Reported beside it: the same criteria outside the regime (:func:`outside_regime`). Not evidence, stated as
    such: the block's rank <= m (true by construction). ``details["mech"]`` holds the per-model numbers.
    """
    mech = mechanism_numbers(res, rules) if res is not None else pd.DataFrame()
    table = mech[[c for c in TABLE_COLUMNS if c in mech]].round(4) if len(mech) else None
    if mech.empty:
        return claim_verdict("MECH", "inconclusive", "no LR3 model finished without diverging", "", table,
                             mech=mech)
    regime = mech[mech["in_regime"]]
    beside = outside_regime(mech, rules)
    if len(regime) < 2:
        best = mech.iloc[0]
        reason = (f"{len(regime)} LR3 model(s) in the claim's regime (mono/feature >= "
                  f"{rules.regime_mono_per_feature}, at most {rules.regime_max_dead_fraction:.0%} dead neurons, >= "
                  f"{rules.min_broad} broad neurons), fewer than 2; the most monosemantic (lr {best['lr']:g} seed "
                  f"{best['seed']}) {'is in it' if best['in_regime'] else 'has ' + best['outside']}")
        numbers = (f"{len(regime)}/{len(mech)} models in the regime; best: mono/feature "
                   f"{best['mono_per_feature']:.2f}, {best['n_dead']}/{best['k']} dead, {best['n_broad']} broad, "
                   f"{best['n_narrow']} narrow")
        return claim_verdict("MECH", "inconclusive", reason + (f". {beside}" if beside else ""), numbers, table,
                             mech=mech)
    med = regime.median(numeric_only=True)
    N, m = int(med["N"]), int(med["m"])
    checks = mechanism_checks(regime, rules)
    verdict, why = verdict_from_checks(checks, CENTRAL)
    if verdict == "partly" and not any(c.passed for c in checks if c.criterion in CENTRAL):
        verdict = "disagrees"
    reason = (f"{why} (medians over the {len(regime)} of {len(mech)} LR3 models in the regime; "
              f"holds: {', '.join(c.criterion for c in checks if c.passed) or 'none'})"
              + (f". {beside}" if beside else ""))
    numbers = (f"{len(regime)}/{len(mech)} models in regime; median {med['n_broad']:.0f} broad neurons "
               f"(b > 0: {med['broad_positive_bias']:.2f}, median b {med['broad_median_bias']:.3f}, "
               f"{med['broad_features_firing']:.0f}/{N} features, linear {med['broad_linear_fraction']:.2f}), "
               f"fit c·EᵀE: c={med['gram_c']:.3f}, residual {med['gram_residual']:.2f}; offset W2_B·b_B mean "
               f"{med['offset_mean']:.3f} (sd {med['offset_std']:.3f}, same sign {med['offset_same_sign']:.2f}); "
               f"loss {med['loss_full']:.4f} -> {med['loss_without_broad']:.4f} without broad; "
               f"{med['n_narrow']:.0f} narrow (median {med['narrow_features_firing']:.0f} features, b "
               f"{med['narrow_median_bias']:.2f}); rank <= m={m} by construction, not evidence")
    return claim_verdict("MECH", verdict, reason, numbers, table, checks, mech=mech)


KIND_COLOURS = {"mono": "tab:blue", "narrow": "tab:purple", "broad": "tab:red", "dead": "tab:grey"}


def figure_mechanism(res: Results, mech: pd.DataFrame, path: Path) -> Path:
    """The most monosemantic model's neurons (bias against lone features firing them, the broad cut N/4 dotted),
    the broad blocks' singular values (models in the regime solid), and the lone-feature loss with and without the
    broad block (median over the models in the regime, else over all)."""
    fig, ax = figure_row(3)
    r = mech.iloc[0]
    cfg, p = instance_config(res, r["run_id"]), res.params(r["run_id"])
    s = explain_summary(p["W1"], p["b1"], p["W2"], p["E"], cfg.model.nonlinearity, task=cfg.task.task)
    t = s["neurons"]
    for kind in KINDS:
        sub = t[t["kind"] == kind]
        ax[0].scatter(sub["bias"], sub["features_firing"], s=5, c=KIND_COLOURS[kind], label=f"{kind} ({len(sub)})")
    ax[0].axhline(0.25 * int(r["N"]), color="grey", ls=":", lw=1)
    ax[0].axvline(0, color="grey", lw=0.5)
    ax[0].set_xlabel("neuron bias")
    ax[0].set_ylabel("lone features that fire it")
    ax[0].legend(fontsize=6)
    ax[0].set_title(f"LR3 lr {r['lr']:g} seed {int(r['seed'])}" + ("" if r["in_regime"] else " (outside regime)"),
                    fontsize=8)
    for _, row in mech.iterrows():
        sv = np.asarray(row["sv"])
        if len(sv) and sv[0] > 0:
            ax[1].semilogy(np.arange(1, len(sv) + 1), sv / sv[0], marker=".", ms=3, lw=0.8,
                           ls="-" if row["in_regime"] else ":")
    ax[1].axvline(int(r["m"]), color="grey", ls=":", lw=1)
    ax[1].set_ylim(bottom=1e-4)  # beyond m they are exact zeros (rounding noise), by construction
    ax[1].set_xlabel("singular value index (dotted: m; rank <= m by construction)", fontsize=7)
    ax[1].set_ylabel("broad block σ / σ1")
    shown = mech[mech["in_regime"]] if mech["in_regime"].any() else mech
    cols = ["loss_full", "loss_without_broad", "loss_broad", "loss_mono", "loss_zero"]
    med = shown[cols].median()
    x = np.arange(len(cols))
    ax[2].bar(x, med.to_numpy(), color=["k", "tab:orange", "tab:red", "tab:blue", "tab:grey"])
    ax[2].set_xticks(x, ["full", "no broad", "broad", "mono", "none"], fontsize=7)
    ax[2].set_ylabel("lone-feature loss (median)")
    ax[2].set_title(f"{'in-regime' if mech['in_regime'].any() else 'all'} models ({len(shown)})", fontsize=8)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)
