"""Row 6 of docs/papers.md §4: the mechanism of the residual polysemantic neurons of the LR3 models.

``analysis.explain_summary`` splits each of the most monosemantic LR3 models into its mono, poly and dead neurons
and measures how the two live blocks compute; :func:`judge_mechanism` checks the paper's picture (Sec. 5 as
reconstructed in docs/papers.md §1.6) on the median of those models, and :func:`figure_mechanism` draws one of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..analysis import explain_summary
from ..figures.save import save_figure
from ..store import Results
from .em_figures import EM_FIGURE_DPI, figure_row
from .em_judges import claim_verdict
from .verdict import Check, Verdict

#: the ``top`` most monosemantic models are studied, those with at least half the best mono/feature
TOP_MODELS = 4


def mechanism_numbers(res: Results, top: int = TOP_MODELS) -> pd.DataFrame:
    """``analysis.explain_summary`` of the final model of the ``top`` most monosemantic LR3 instances (those with at
    least half the best mono/feature): one row per model, with the first 2m singular values of its poly block."""
    inst = res.instances[res.instances["status"] == "ok"].sort_values("mono_per_feature", ascending=False)
    if len(inst) and inst["mono_per_feature"].iloc[0] > 0:  # the monosemantic models: at least half the best
        inst = inst[inst["mono_per_feature"] >= inst["mono_per_feature"].iloc[0] / 2]
    rows = []
    for _, r in inst.head(top).iterrows():
        p = res.params(r["run_id"])
        s = explain_summary(p["W1"], p["b1"], p["W2"], p["E"], r["nonlinearity"])
        t = s["neurons"]
        poly = t[t["kind"] == "poly"]
        mono = t[t["kind"] == "mono"]
        m = int(r["m"])
        rows.append(dict(
            run_id=r["run_id"], lr=float(r["lr"]), seed=int(r["seed"]), mono=s["n_mono"], poly=s["n_poly"],
            dead=s["n_dead"],
            poly_positive_bias=float((poly["bias"] > 0).mean()) if len(poly) else float("nan"),
            mono_negative_bias=float((mono["bias"] < 0).mean()) if len(mono) else float("nan"),
            poly_features_firing=float(poly["features_firing"].median()) if len(poly) else float("nan"),
            N=int(r["N"]), m=m, poly_rank=s["poly_rank"], poly_linear_fraction=s["poly_linear_fraction"],
            gram_c=s["gram_c"], gram_residual=s["gram_residual"], mono_threshold=float(mono["threshold"].median())
            if len(mono) else float("nan"),
            loss_full=s["loss_full"], loss_mono=s["loss_mono"], loss_poly=s["loss_poly"], loss_zero=s["loss_zero"],
            sv=[float(x) for x in torch.as_tensor(s["poly_singular_values"])[:2 * m]]))
    return pd.DataFrame(rows)


def judge_mechanism(res: Results) -> Verdict:
    """Row 6 on the most monosemantic LR3 models: the residual polysemantic neurons have positive bias
    (fraction >= 0.5), fire for most lone features (median >= N/2) in the linear regime (linear fraction >= 0.9),
    so the poly block is a rank <= m linear map, close to c E^T E + d (Gram-fit residual <= 0.5); the mono neurons
    are thresholded (negative bias, positive threshold), and together the blocks beat either alone.
    agrees: all of these; partly: the poly block is linear-and-broad but some other part fails; disagrees:
    the poly neurons are not broad/linear; inconclusive: no poly or no mono neurons to study.
    ``details["mech"]`` holds the per-model numbers (:func:`mechanism_numbers`)."""
    mech = mechanism_numbers(res)
    if mech.empty or mech["poly"].sum() == 0 or mech["mono"].sum() == 0:
        return claim_verdict("MECH", "inconclusive", "the top LR3 models have no poly or no mono neurons", "",
                             mech.drop(columns=["sv"], errors="ignore"), mech=mech)
    med = mech.median(numeric_only=True)
    N = int(med["N"])
    which = ", ".join(f"lr {a:g} seed {b}" for a, b in zip(mech["lr"], mech["seed"]))
    numbers = (f"median over the {len(mech)} most monosemantic LR3 models of `{res.sweep.name}` ({which}): "
               f"{med['poly']:.0f} poly / {med['mono']:.0f} mono / {med['dead']:.0f} dead neurons; poly neurons "
               f"with positive bias {med['poly_positive_bias']:.2f}, "
               f"median lone features firing a poly neuron {med['poly_features_firing']:.0f}/{N}, linear fraction "
               f"{med['poly_linear_fraction']:.2f}, poly-block rank {med['poly_rank']:.0f} (m={int(med['m'])}; "
               "rank <= m holds by construction, the block only sees the m-dim input), "
               f"fit c·EᵀE+d: c={med['gram_c']:.2f}, residual {med['gram_residual']:.2f}; mono neurons with negative "
               f"bias {med['mono_negative_bias']:.2f}, median threshold amplitude {med['mono_threshold']:.2f}; "
               f"lone-feature loss full {med['loss_full']:.4f}, mono only {med['loss_mono']:.4f}, poly only "
               f"{med['loss_poly']:.4f}, no neurons {med['loss_zero']:.4f}")
    checks = (
        Check("poly neurons broad and linear",
              bool(med["poly_features_firing"] >= N / 2 and med["poly_linear_fraction"] >= 0.9),
              f"median features firing {med['poly_features_firing']:.0f}/{N}, linear fraction "
              f"{med['poly_linear_fraction']:.2f}"),
        Check("poly neurons positive-bias", bool(med["poly_positive_bias"] >= 0.5),
              f"{med['poly_positive_bias']:.2f} of them"),
        Check("poly block ≈ c·EᵀE + d", bool(med["gram_residual"] <= 0.5), f"residual {med['gram_residual']:.2f}"),
        Check("mono neurons thresholded", bool(med["mono_negative_bias"] >= 0.5 and med["mono_threshold"] > 0),
              f"negative bias {med['mono_negative_bias']:.2f}, threshold {med['mono_threshold']:.2f}"),
        Check("the two blocks complement each other",
              bool(med["loss_full"] < min(med["loss_mono"], med["loss_poly"])),
              f"loss full {med['loss_full']:.4f}, mono {med['loss_mono']:.4f}, poly {med['loss_poly']:.4f}"),
    )
    failed = [c.criterion for c in checks if not c.passed]
    verdict = "disagrees" if not checks[0].passed else "partly" if failed else "agrees"
    reason = ("all checks hold: " if not failed else "fails: " + ", ".join(failed) + "; holds: ") + \
        ", ".join(c.criterion for c in checks if c.passed)
    return claim_verdict("MECH", verdict, reason, numbers, mech.drop(columns=["sv", "N"]).round(4), checks,
                         mech=mech)


def figure_mechanism(res: Results, mech: pd.DataFrame, path: Path) -> Path:
    """The most monosemantic model's neurons (bias against lone features firing them), the poly blocks' singular
    values, and the lone-feature loss of each block alone (median over the studied models)."""
    fig, ax = figure_row(3)
    r = res.row(mech["run_id"].iloc[0])
    p = res.params(r["run_id"])
    t = explain_summary(p["W1"], p["b1"], p["W2"], p["E"], r["nonlinearity"])["neurons"]
    for kind, color in [("mono", "tab:blue"), ("poly", "tab:red"), ("dead", "tab:grey")]:
        sub = t[t["kind"] == kind]
        ax[0].scatter(sub["bias"], sub["features_firing"], s=5, c=color, label=f"{kind} ({len(sub)})")
    ax[0].set_xlabel("neuron bias")
    ax[0].set_ylabel("lone features that fire it")
    ax[0].legend(fontsize=6)
    ax[0].set_title(f"LR3 lr {r['lr']:g} seed {int(r['seed'])}", fontsize=8)
    m = int(r["m"])
    for _, row in mech.iterrows():
        sv = np.asarray(row["sv"])
        if len(sv) and sv[0] > 0:
            ax[1].semilogy(np.arange(1, len(sv) + 1), sv / sv[0], marker=".", ms=3, lw=0.8)
    ax[1].axvline(m, color="grey", ls=":", lw=1)
    ax[1].set_xlabel("singular value index (dotted: m)")
    ax[1].set_ylabel("poly block σ / σ1")
    x = np.arange(4)
    med = mech[["loss_full", "loss_mono", "loss_poly", "loss_zero"]].median()
    ax[2].bar(x, med.to_numpy(), color=["k", "tab:blue", "tab:red", "tab:grey"])
    ax[2].set_xticks(x, ["full", "mono", "poly", "none"], fontsize=7)
    ax[2].set_ylabel("lone-feature loss (median)")
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)
