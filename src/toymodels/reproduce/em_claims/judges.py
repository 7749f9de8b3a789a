"""How EM claims 1-3 (docs/papers.md §4 rows 1-3: the learning-rate sweeps) are judged, and what every EM judge shares.

Every ``judge_*`` function takes loaded ``Results`` and returns a :class:`~toymodels.reproduce.verdict.Verdict`;
its docstring states the whole rule, with the named thresholds below, which were fixed before the runs. The same
judge is applied to a claim's primary sweep (its verdict) and to each sensitivity run (shown beside it, never
replacing it). Numbers are means over the seeds that did not diverge (``toymodels.results.tables.seed_stats``), read from the
model the results hold: the final one, or one checkpoint of it (``oscillation.at_checkpoint``).

**The detection floor.** Monosemanticity is counted in neurons (``mono_neurons`` = mono/feature x N). A sweep whose
largest mean count is below MIN_MONO_NEURONS is ``inconclusive``: a handful of neurons cannot show an effect, and
nothing is derived from an argmax over counts that are zero or below the floor. Two counts differ only when they
differ by at least MIN_MONO_NEURONS neurons. Claims 4, 5 and 7 are in ``grid_judges``, row 6 in ``mechanism``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from toymodels.engine.optim import lr_phases
from toymodels.results.store import Results
from toymodels.results.tables import mean_std, seed_stats
from toymodels.reproduce.verdict import Check, Verdict, spearman

METRICS = ["final_loss", "mono_per_feature", "mono_neurons", "mono_per_neuron", "features_covered", "mean_bias",
           "dead_neurons", "positive_bias_neurons", "false_mono"]
LR_COLUMNS = ["mono_per_feature", "final_loss", "mean_bias", "dead_neurons"]

# Thresholds of the verdicts, fixed before the runs (each judge's docstring says how it uses them).
MIN_MONO_NEURONS = 5   # detection floor: fewer mono neurons than this (or a smaller difference) is not an effect
LOSS_TOL = 0.05        # "no loss cost": the loss within 5% of the loss it is compared with
PAPER_LEVEL = 0.5      # mono/feature at or above this counts as reaching the paper's level (≈1)
POWER_LAW_LEVEL = 0.3  # the same for power-law features (the paper's re-run tops out at ≈0.5-0.7)

#: claim -> (title in docs/reproduction.md, what the paper itself says, with where it says it)
STATEMENTS: dict[str, tuple[str, str]] = {
    "LR1": ("1. Learning rate steers monosemanticity (LR1, Fig. 3)",
            "Higher learning rate -> more monosemantic neurons at equal or lower loss (abstract: \"same loss, "
            "different minimum\"; Fig. 3)."),
    "LR2": ("2. Power-law features (LR2, Fig. 6)",
            "The same ordering as LR1 with power-law distributed features (Fig. 6)."),
    "LR3": ("3. Negative initial bias + bias decay engineers monosemanticity (LR3, Fig. 7)",
            "Starting the biases at -1 with decay 0.03 engineers highly monosemantic models, over a wider lr range "
            "than LR1, without a loss penalty (abstract; Fig. 7)."),
    "B": ("4. Moderate negative bias is optimal across feature densities (B1-B5)",
          "The more monosemantic minima have moderately negative biases (abstract); the B1-B5 batches sweep the "
          "initial bias at several feature densities."),
    "K1": ("5. More neurons -> more monosemantic (K1)",
           "Wider layers give more monosemantic models, at a price in compute (abstract)."),
    "MECH": ("6. Mechanism of the residual polysemantic neurons (Sec. 5)",
             "The residual polysemantic neurons have positive bias and fire for (nearly) all features, so they act "
             "as a linear, rank ≤ m block (≈ c·EᵀE + d, a low-rank approximation of the identity); the mono neurons "
             "are negative-bias thresholded units that correct each feature's output above threshold. "
             "(Paper Sec. 5 as reconstructed in §1.6; §4 row 6.)"),
    "RG1": ("7. L1 activation penalty (RG1)",
            "An L1 penalty on activations increases monosemanticity (the authors, in the post's comments)."),
}

#: claim -> what other sources (re-runs, reviews, our own derivations; docs/papers.md §1.6) add; not the paper's words
OTHER_SOURCES: dict[str, str] = {
    "LR1": "Bloom's re-run [replication]: mono/feature ≈0 at lr ≤ 0.003 and ≈1 (above 1 mid-training) at 0.01-0.03, "
           "mean bias ≈ -0.3 .. -0.9 at the top rates, monosemanticity appearing after ~2^10-2^11 steps.",
    "LR2": "Bloom's re-run [replication]: a lower ceiling (≈0.5-0.7 mono/feature at the top lr), mean bias ≈ -1 at "
           "lr 0.03.",
    "LR3": "Wright's re-run [replication]: a few positive-bias neurons respond to every feature.",
    "B": "Not from the paper: very negative offsets kill neurons and positive ones leave them polysemantic "
         "[unverified reading of the B figures]; a later review says the optimal |bias| grows like √eps "
         "[secondary source], which fits an interference noise ≈ sqrt(N·eps/(3m)) [derived].",
    "K1": "A secondary summary [secondary]: close to one mono neuron per feature beyond k > N with a flat loss; "
          "mono/neuron should fall for k ≫ N [derived expectation].",
    "RG1": "A large penalty should cost loss [unverified expectation].",
}


def claim_verdict(claim: str, verdict: str, reason: str, numbers: str, table: pd.DataFrame | None = None,
                  checks: tuple[Check, ...] = (), **details: Any) -> Verdict:
    """The Verdict of EM claim ``claim``, with its title and the paper's statement from STATEMENTS."""
    title, paper = STATEMENTS[claim]
    return Verdict(claim=claim, title=title, verdict=verdict, reason=reason, numbers=numbers, paper=paper,
                   table=table, checks=checks, details=details)


def aggregate(res: Results, by: Sequence[str]) -> pd.DataFrame:
    """Per setting ``by``: mean, sample std (``<col>_std``) and count (``n``, ``instances``) of METRICS over seeds."""
    return seed_stats(res.instances, by, METRICS)


def lr_phase(step: int, schedule: str) -> str:
    """Where step ``step`` (the model after its update) sits on the paper's periodic lr: ``"peak"`` for t ≡ 1023,
    ``"trough"`` for t ≡ 511 (mod 1024), else ``""`` (also for every other schedule)."""
    if schedule != "paper_cosine":
        return ""
    return lr_phases(schedule, step + 1, [step]).get(step, "")


def measured_at(res: Results) -> str:
    """Which model the numbers of ``res`` describe: 'step S (lr peak)', from the ``checkpoint_step`` column of a
    checkpoint view or the final step; 'the final model' when the table does not say."""
    inst = res.instances
    if "checkpoint_step" in inst:
        step = int(inst["checkpoint_step"].iloc[0])
    elif "steps" in inst:
        step = int(inst["steps"].iloc[0]) - 1
    else:
        return "the final model"
    phase = lr_phase(step, str(inst["schedule"].iloc[0])) if "schedule" in inst else ""
    return f"step {step}" + (f" (an lr {phase})" if phase else "")


def below_floor(agg: pd.DataFrame) -> bool:
    """True when no setting reaches MIN_MONO_NEURONS mono neurons (mean over seeds); NaN counts as below."""
    counts = agg["mono_neurons"].to_numpy(dtype=float)
    return not np.isfinite(counts).any() or float(np.nanmax(counts)) < MIN_MONO_NEURONS


def floor_reason(aggs: pd.DataFrame | Sequence[pd.DataFrame], key: str) -> str:
    """The inconclusive reason of sweeps (one ``aggregate`` table or several) below the floor, with the largest
    count among them."""
    frames = [aggs] if isinstance(aggs, pd.DataFrame) else list(aggs)
    counts = np.concatenate([a["mono_neurons"].to_numpy(dtype=float) for a in frames])
    top = float(np.nanmax(counts)) if np.isfinite(counts).any() else 0.0
    return (f"below the detection floor: at most {top:.1f} mono neurons (mean over seeds) at any {key}, fewer than "
            f"{MIN_MONO_NEURONS}, so the runs cannot show the effect")


def settings_table(df: pd.DataFrame, key: str, cols: Sequence[str], digits: int = 3) -> pd.DataFrame:
    """The per-setting table of a verdict: ``key``, then 'mean ± sd' of ``cols``, then seeds that did not diverge."""
    rows = {key: df[key].map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))}
    for c in cols:
        rows[c] = [mean_std(m, s, digits) for m, s in zip(df[c], df[c + "_std"])]
    rows["seeds ok"] = [f"{int(n)}/{int(t)}" for n, t in zip(df["n"], df["instances"])]
    return pd.DataFrame(rows)


def judge_lr(res: Results, claim: str = "LR1", level: float = PAPER_LEVEL, paper_level: str = "≈1") -> Verdict:
    """Rows 1 and 2: mono/feature rises with lr at no loss cost.

    Rule. inconclusive: fewer than MIN_MONO_NEURONS mono neurons at every lr. "Rises": the count at the top lr
    exceeds the count at the lowest lr by >= MIN_MONO_NEURONS, the most monosemantic lr is in the upper half of the
    lrs and Spearman(lr, mono) >= 0 (flat at 0 and then up counts). disagrees: it does not rise. agrees: it rises,
    the loss at the most monosemantic lr is within LOSS_TOL of the sweep's lowest loss, and that lr reaches
    ``level`` mono/feature; partly: it rises but the loss or the level fails. The loss is the mean of the last 8
    logged losses up to the step the numbers describe (named in the reason).
    """
    agg = aggregate(res, ["lr"]).sort_values("lr").reset_index(drop=True)
    at = measured_at(res)
    per_lr = ", ".join(f"{lr:g}: {mean_std(m, s)}"
                       for lr, m, s in zip(agg["lr"], agg["mono_per_feature"], agg["mono_per_feature_std"]))
    numbers = f"mono/feature at {at}: {per_lr}"
    table = settings_table(agg, "lr", LR_COLUMNS)
    if below_floor(agg):
        return claim_verdict(claim, "inconclusive", floor_reason(agg, "lr") + f" at {at}", numbers, table)
    lrs, counts = agg["lr"].to_numpy(), agg["mono_neurons"].to_numpy(dtype=float)
    mono, loss, bias = (agg[c].to_numpy(dtype=float) for c in ("mono_per_feature", "final_loss", "mean_bias"))
    best = int(np.nanargmax(counts))  # the floor is reached, so this is a real maximum
    rho, rise = spearman(lrs, mono), float(counts[-1] - counts[0])
    loss_ratio = float(loss[best] / np.nanmin(loss))
    numbers += (f"; mean bias at lr {lrs[-1]:g}: {bias[-1]:.2f}; loss at the most monosemantic lr {lrs[best]:g}: "
                f"{loss[best]:.3f} vs lowest {np.nanmin(loss):.3f}")
    if rise < MIN_MONO_NEURONS or best < len(lrs) // 2 or rho < 0:
        reason = (f"at {at}, mono/feature does not rise with lr (Spearman {rho:.2f}; top minus lowest lr "
                  f"{rise:+.1f} neurons, the floor is {MIN_MONO_NEURONS}; most monosemantic lr {lrs[best]:g})")
        return claim_verdict(claim, "disagrees", reason, numbers, table)
    problems = []
    if loss_ratio > 1 + LOSS_TOL:
        problems.append(f"the most monosemantic lr ({lrs[best]:g}) has a {100 * (loss_ratio - 1):.0f}% higher loss "
                        f"at {at} than the lr with the lowest loss ({lrs[int(np.nanargmin(loss))]:g})")
    if mono[best] < level:
        problems.append(f"the level stays low: {mono[best]:.2f} mono/feature at best vs {paper_level} in the "
                        "paper's re-run")
    direction = (f"at {at}, mono/feature rises with lr (Spearman {rho:.2f}, {mono[0]:.3f} at lr {lrs[0]:g} -> "
                 f"{mono[-1]:.3f} at {lrs[-1]:g}) and the mean bias "
                 f"{'falls' if spearman(lrs, bias) < 0 else 'does not fall'} with lr")
    tail = "; but " + "; ".join(problems) if problems else (
        f"; no loss cost (loss within {100 * LOSS_TOL:.0f}% of the lowest)")
    return claim_verdict(claim, "partly" if problems else "agrees", direction + tail, numbers, table)


def judge_power_law(res: Results, lr1: Results | None = None) -> Verdict:
    """Row 2: judge_lr with level POWER_LAW_LEVEL, and a lower ceiling than uniform features.

    Rule. As :func:`judge_lr`; then, when LR1 is given and its verdict is agrees or partly: the ceiling is lower
    when LR1's largest count exceeds LR2's by >= MIN_MONO_NEURONS neurons; otherwise the verdict is at most partly.
    When LR1 describes another step than LR2 the ceilings are not compared (the reason says so).
    """
    out = judge_lr(res, "LR2", level=POWER_LAW_LEVEL, paper_level="≈0.5-0.7")
    if lr1 is None or out.verdict not in ("agrees", "partly"):
        return out
    if measured_at(lr1) != measured_at(res):
        return replace(out, reason=out.reason + f"; the ceiling is not compared with LR1 ({measured_at(lr1)}: "
                                                "another step)")
    top2 = float(aggregate(res, ["lr"])["mono_neurons"].max())
    top1 = float(aggregate(lr1, ["lr"])["mono_neurons"].max())
    lower = top1 - top2 >= MIN_MONO_NEURONS
    reason = out.reason + (f"; ceiling {top2:.1f} mono neurons vs {top1:.1f} with uniform features (LR1) "
                           + ("(lower, as in the paper)" if lower else
                              f"(not lower than uniform by the floor of {MIN_MONO_NEURONS}, unlike the paper)"))
    return replace(out, reason=reason, verdict=out.verdict if lower else "partly")


def judge_negative_bias(lr3: Results, lr1: Results | None) -> Verdict:
    """Row 3: bias -1 + decay gives more mono neurons than LR1 over a wider lr range, at no higher loss.

    Rule, per lr that both sweeps ran: LR3 "wins" when its mean count exceeds LR1's by >= MIN_MONO_NEURONS, "loses"
    when it is lower by as much; the loss is kept when LR3's loss is within LOSS_TOL of LR1's at every winning lr.
    inconclusive: LR1 missing or read at another step, or both sweeps below the detection floor at every lr. disagrees: LR3 wins nowhere.
    agrees: LR3 wins at >= half the lrs, loses at none, keeps the loss and reaches PAPER_LEVEL mono/feature;
    partly: it wins somewhere but one of those fails. The two sweeps are compared at the same step.
    """
    a = aggregate(lr3, ["lr"]).set_index("lr")
    decay = float(lr3.instances["bias_decay"].iloc[0])
    at = measured_at(lr3)
    base = aggregate(lr1, ["lr"]).set_index("lr") if lr1 is not None else None
    rows = []
    for lr, r in a.iterrows():
        row = {"lr": f"{lr:g}", "mono/feature": mean_std(r["mono_per_feature"], r["mono_per_feature_std"]),
               "loss": mean_std(r["final_loss"], r["final_loss_std"]),
               "mean bias": mean_std(r["mean_bias"], r["mean_bias_std"]),
               "dead": mean_std(r["dead_neurons"], r["dead_neurons_std"]),
               "positive-bias neurons": mean_std(r["positive_bias_neurons"], r["positive_bias_neurons_std"])}
        if base is not None and lr in base.index:
            row["LR1 mono/feature"] = mean_std(base.loc[lr, "mono_per_feature"], base.loc[lr, "mono_per_feature_std"])
            row["LR1 loss"] = mean_std(base.loc[lr, "final_loss"], base.loc[lr, "final_loss_std"])
        row["seeds ok"] = f"{int(r['n'])}/{int(r['instances'])}"
        rows.append(row)
    table = pd.DataFrame(rows)
    if base is None:
        return claim_verdict("LR3", "inconclusive", "LR1 was not run, so there is nothing to compare with", "", table)
    if measured_at(lr1) != at:
        return claim_verdict("LR3", "inconclusive", f"LR3 ({at}) and LR1 ({measured_at(lr1)}) describe different "
                             "steps, so they cannot be compared", "", table)
    common = [lr for lr in a.index if lr in base.index]
    dn = np.array([a.loc[lr, "mono_neurons"] - base.loc[lr, "mono_neurons"] for lr in common])
    dl = np.array([a.loc[lr, "final_loss"] / base.loc[lr, "final_loss"] for lr in common])
    wins, losses = int((dn >= MIN_MONO_NEURONS).sum()), int((dn <= -MIN_MONO_NEURONS).sum())
    loss_ok = bool(wins) and bool(np.all(dl[dn >= MIN_MONO_NEURONS] <= 1 + LOSS_TOL))
    top = float(a["mono_per_feature"].max())
    numbers = ("LR3 minus LR1 mono neurons per lr " + ", ".join(f"{lr:g}: {d:+.1f}" for lr, d in zip(common, dn))
               + "; LR3/LR1 loss ratio " + ", ".join(f"{x:.2f}" for x in dl))
    if below_floor(a) and below_floor(base):
        return claim_verdict("LR3", "inconclusive", floor_reason([a, base], "lr") + f" in LR3 and in LR1 at {at}",
                             numbers, table)
    count = (f"at {at}, LR3 (decay {decay:g}) has more mono neurons than LR1 (by >= {MIN_MONO_NEURONS}) at "
             f"{wins}/{len(common)} lrs and fewer at {losses}")
    if wins == 0:
        verdict, why = "disagrees", ["negative bias + decay gives no more mono neurons than LR1 at any lr"]
    elif wins >= len(common) / 2 and losses == 0 and loss_ok and top >= PAPER_LEVEL:
        verdict, why = "agrees", [f"at no loss cost (within {100 * LOSS_TOL:.0f}% of LR1's where it wins)"]
    else:
        verdict, why = "partly", []
        if wins < len(common) / 2:
            why.append("it wins at fewer than half the lrs")
        if losses:
            why.append("it loses somewhere")
        if not loss_ok:
            why.append(f"its loss is more than {100 * LOSS_TOL:.0f}% above LR1's at a winning lr")
        if top < PAPER_LEVEL:
            why.append(f"its peak is {top:.2f} mono/feature, below {PAPER_LEVEL} (the paper: ≈1)")
    return claim_verdict("LR3", verdict, f"{count}: {'; '.join(why)}. {numbers}", numbers, table)
