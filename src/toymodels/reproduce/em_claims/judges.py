"""How EM claims 1-3 (docs/papers.md §4 rows 1-3: the learning-rate sweeps) are judged, and what every EM judge shares.

Every ``judge_*`` function takes loaded ``Results`` and the rules (``rules.RULES`` unless scaled for the
sensitivity line) and returns a :class:`~toymodels.reproduce.verdict.Verdict`; its docstring states the whole rule.
The thresholds and what decides are in ``rules`` (its docstring): effects are 95% intervals over seeds, a verdict
needs the interval on the right side of its floor, only the paper's criterion makes a verdict word. The same judge
is applied to a claim's primary sweep (its verdict) and to each sensitivity run (shown beside it, never replacing
it). Tables show means ± sd over the seeds that did not diverge (``toymodels.results.tables.seed_stats``), read
from the model the results hold: the final one, or one checkpoint of it (``oscillation.at_checkpoint``).

**The detection floor.** Monosemanticity is counted in neurons (``mono_neurons`` = mono/feature x N). A sweep whose
largest mean count is below ``floor_neurons`` is ``inconclusive``: a handful of neurons cannot show an effect.
Claims 4, 5 and 7 are in ``grid_judges``, row 6 in ``mechanism``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from toymodels.engine.optim import lr_phases
from toymodels.results.store import Results
from toymodels.results.tables import mean_std, seed_stats
from toymodels.reproduce.em_claims.rules import RULES, EMRules
from toymodels.reproduce.intervals import Interval, mean_interval, paired, ratio, trend, unpaired
from toymodels.reproduce.verdict import Check, Verdict

METRICS = ["final_loss", "mono_per_feature", "mono_neurons", "mono_per_neuron", "features_covered", "mean_bias",
           "dead_neurons", "positive_bias_neurons", "false_mono"]
LR_COLUMNS = ["mono_per_feature", "final_loss", "mean_bias", "dead_neurons"]

# The default thresholds under their old names (figures and the oscillation reading use them; rules.py holds them).
MIN_MONO_NEURONS = RULES.floor_neurons
LOSS_TOL = RULES.loss_tol
PAPER_LEVEL = RULES.paper_level
POWER_LAW_LEVEL = RULES.power_law_level

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


def below_floor(agg: pd.DataFrame, rules: EMRules = RULES) -> bool:
    """True when no setting reaches the floor in mono neurons (mean over seeds); NaN counts as below."""
    counts = agg["mono_neurons"].to_numpy(dtype=float)
    return not np.isfinite(counts).any() or float(np.nanmax(counts)) < rules.floor_neurons


def floor_reason(aggs: pd.DataFrame | Sequence[pd.DataFrame], key: str, rules: EMRules = RULES) -> str:
    """The inconclusive reason of sweeps (one ``aggregate`` table or several) below the floor, with the largest
    count among them."""
    frames = [aggs] if isinstance(aggs, pd.DataFrame) else list(aggs)
    counts = np.concatenate([a["mono_neurons"].to_numpy(dtype=float) for a in frames])
    top = float(np.nanmax(counts)) if np.isfinite(counts).any() else 0.0
    return (f"below the detection floor: at most {top:.1f} mono neurons (mean over seeds) at any {key}, fewer than "
            f"{rules.floor_neurons:g}, so the runs cannot show the effect")


def by_seed(res: Results, key: str, col: str) -> pd.DataFrame:
    """``col`` per seed (rows) and setting ``key`` (columns, sorted); diverged runs are NaN."""
    inst = res.instances
    values = inst[col].where(inst["status"] == "ok") if "status" in inst else inst[col]
    return (inst.assign(_v=values.astype(float)).pivot_table(index="seed", columns=key, values="_v", dropna=False)
            .sort_index(axis=1))


def points(res: Results, key: str, col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(setting, value, seed) per run that did not diverge: the points of ``intervals.trend``."""
    inst = res.instances
    ok = inst[inst["status"] == "ok"] if "status" in inst else inst
    return (ok[key].to_numpy(dtype=float), ok[col].to_numpy(dtype=float), ok["seed"].to_numpy())


def loss_side(cost: Interval, rules: EMRules) -> str:
    """``none`` (interval at or below 1 + loss_tol), ``cost`` (above it) or ``unclear``."""
    if cost.n and cost.high <= 1 + rules.loss_tol:
        return "none"
    return "cost" if cost.n and cost.low > 1 + rules.loss_tol else "unclear"


def level_side(level: Interval, target: float) -> str:
    """``reached`` (interval at or above ``target``), ``short`` (below it) or ``unclear``."""
    if level.n >= 2 and level.low >= target:
        return "reached"
    return "short" if level.n >= 2 and level.high < target else "unclear"


def collapsed(agg: pd.DataFrame, key: str, k: int, rules: EMRules = RULES) -> str:
    """The settings whose mean dead-neuron fraction reaches ``collapse_dead_fraction``, with their loss and mean
    bias (a model that stopped using its neurons), or ''."""
    rows = agg[agg["dead_neurons"] >= rules.collapse_dead_fraction * k]
    return "; ".join(f"at {key} {r[key]:g} the model collapsed: {r['dead_neurons']:.0f}/{k} neurons dead, loss "
                     f"{r['final_loss']:.3f}, mean bias {r['mean_bias']:.2f}" for _, r in rows.iterrows())


def settings_table(df: pd.DataFrame, key: str, cols: Sequence[str], digits: int = 3) -> pd.DataFrame:
    """The per-setting table of a verdict: ``key``, then 'mean ± sd' of ``cols``, then seeds that did not diverge."""
    rows = {key: df[key].map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))}
    for c in cols:
        rows[c] = [mean_std(m, s, digits) for m, s in zip(df[c], df[c + "_std"])]
    rows["seeds ok"] = [f"{int(n)}/{int(t)}" for n, t in zip(df["n"], df["instances"])]
    return pd.DataFrame(rows)




def judge_lr(res: Results, claim: str = "LR1", rules: EMRules = RULES, power_law: bool = False) -> Verdict:
    """Rows 1 and 2: mono/feature rises with lr at equal or lower loss (the paper's Fig. 3 / Fig. 6).

    Rule. inconclusive: fewer than ``floor_neurons`` mono neurons (mean) at every lr. The rise is the per-seed
    difference in mono neurons between the top and the lowest lr (paired interval) and the trend is Spearman's rho
    over every seed's (lr, count); "rises": the rise's interval at or above the floor and the trend's interval above
    0; "does not rise": the rise's interval inside (-floor, floor) or below -floor. disagrees: it does not rise.
    Then, at the lr with the most mono neurons (mean), two parts of the paper's claim: the loss ratio to the lr with
    the lowest mean loss (paired bootstrap) at or below 1 + ``loss_tol`` (no loss cost), and mono/feature's
    interval at or above ``paper_level`` (``power_law_level`` for power-law features: the level of the paper's
    figures). agrees: it rises and both parts hold; partly: it rises and a part fails (its interval on the wrong
    side); inconclusive: anything else (an interval straddling its threshold). A setting with >= 90% dead neurons
    is named as collapsed (not a verdict criterion).
    """
    level, paper_level = (rules.power_law_level, "≈0.5-0.7") if power_law else (rules.paper_level, "≈1")
    agg = aggregate(res, ["lr"]).sort_values("lr").reset_index(drop=True)
    at = measured_at(res)
    per_lr = ", ".join(f"{lr:g}: {mean_std(m, s)}"
                       for lr, m, s in zip(agg["lr"], agg["mono_per_feature"], agg["mono_per_feature_std"]))
    numbers = f"mono/feature at {at}: {per_lr}"
    table = settings_table(agg, "lr", LR_COLUMNS)
    fell = collapsed(agg, "lr", int(res.instances["k"].iloc[0]), rules)
    if below_floor(agg, rules):
        return claim_verdict(claim, "inconclusive", floor_reason(agg, "lr", rules) + f" at {at}"
                             + (f"; {fell}" if fell else ""), numbers, table)
    counts, losses = by_seed(res, "lr", "mono_neurons"), by_seed(res, "lr", "final_loss")
    lrs = counts.columns.to_numpy(dtype=float)
    rise = paired(counts[lrs[-1]], counts[lrs[0]])
    tr = trend(*points(res, "lr", "mono_neurons"))
    best = lrs[int(np.nanargmax(counts.mean().to_numpy()))]
    cheapest = lrs[int(np.nanargmin(losses.mean().to_numpy()))]
    cost = ratio(losses[best], losses[cheapest])
    lev = mean_interval(by_seed(res, "lr", "mono_per_feature")[best])
    side = rise.versus(rules.floor_neurons)
    facts = (f"at {at}: top minus lowest lr {rise.text()} mono neurons (floor {rules.floor_neurons:g}, "
             f"{rise.method}); {tr.text()}; at the most monosemantic lr {best:g}: loss ratio to lr {cheapest:g} "
             f"{cost.text(signed=False)}, mono/feature {lev.text(signed=False)} (level {level:g})")
    numbers += f"; {facts}" + (f"; {fell}" if fell else "")
    if side in ("within", "below"):
        return claim_verdict(claim, "disagrees", f"mono/feature does not rise with lr: {facts}", numbers, table)
    if side != "above" or tr.direction() != "rises":
        return claim_verdict(claim, "inconclusive", f"the rise is not clear at the floor: {facts}", numbers, table)
    loss, reached = loss_side(cost, rules), level_side(lev, level)
    failed = ([f"a loss cost ({cost.text(signed=False)} of the lowest loss)"] if loss == "cost" else []) + (
        [f"the level stays below {level:g} ({paper_level} in the paper's figures)"] if reached == "short" else [])
    if loss == "none" and reached == "reached":
        verdict, tail = "agrees", f"no loss cost (within {100 * rules.loss_tol:.0f}%) and the paper's level"
    elif failed:
        verdict, tail = "partly", "but " + " and ".join(failed)
    else:
        verdict, tail = "inconclusive", "but the loss or the level is not clear at its threshold"
    return claim_verdict(claim, verdict, f"mono/feature rises with lr, {tail}: {facts}"
                         + (f"; {fell}" if fell else ""), numbers, table)


def judge_power_law(res: Results, lr1: Results | None = None, rules: EMRules = RULES) -> Verdict:
    """Row 2: :func:`judge_lr` with the power-law level. The lower ceiling than uniform features (LR1) is a re-run's
    finding, not the paper's: reported beside the verdict (the difference of the two sweeps' top counts, a
    bootstrap over seeds), never changing its word."""
    out = judge_lr(res, "LR2", rules, power_law=True)
    if lr1 is None or not len(lr1.instances) or measured_at(lr1) != measured_at(res):
        return out
    top = {name: by_seed(r, "lr", "mono_neurons") for name, r in (("LR1", lr1), ("LR2", res))}
    best = {name: t[t.columns[int(np.nanargmax(t.mean().to_numpy()))]] for name, t in top.items()}
    gap = unpaired(best["LR1"], best["LR2"])
    lower = {"above": "lower, as the re-run found", "within": "not lower", "below": "higher"}.get(
        gap.versus(rules.floor_neurons), "not clearly different")
    return replace(out, reason=out.reason + f". Beside the verdict (a re-run's finding, not the paper's): LR1's "
                   f"top count minus LR2's {gap.text()} mono neurons: the power-law ceiling is {lower}")


def judge_negative_bias(lr3: Results, lr1: Results | None, rules: EMRules = RULES) -> Verdict:
    """Row 3: bias -1 + decay gives more mono neurons than LR1 over a wider lr range, at no higher loss.

    Rule, per lr that both sweeps ran, the per-seed difference LR3 - LR1 in mono neurons (paired interval): LR3
    "wins" when the interval is at or above the floor, "loses" when at or below minus the floor, "ties" when it is
    inside, and is unclear otherwise; at each winning lr the loss ratio LR3/LR1 (paired bootstrap) is kept when its
    interval is at or below 1 + ``loss_tol``. inconclusive: LR1 missing or read at another step, both sweeps below
    the floor, or no lr decided either way. disagrees: LR3 wins nowhere and ties or loses at every lr. agrees: it
    wins at >= half the lrs, loses nowhere, keeps the loss wherever it wins, and its most monosemantic lr reaches
    ``paper_level`` (interval). partly: it wins somewhere and one of those fails with its interval on the wrong side;
    inconclusive otherwise.
    """
    a = aggregate(lr3, ["lr"]).set_index("lr")
    decay = float(lr3.instances["bias_decay"].iloc[0])
    at = measured_at(lr3)
    base = aggregate(lr1, ["lr"]).set_index("lr") if lr1 is not None else None
    table = lr3_table(a, base)
    if base is None:
        return claim_verdict("LR3", "inconclusive", "LR1 was not run, so there is nothing to compare with", "", table)
    if measured_at(lr1) != at:
        return claim_verdict("LR3", "inconclusive", f"LR3 ({at}) and LR1 ({measured_at(lr1)}) describe different "
                             "steps, so they cannot be compared", "", table)
    c3, c1 = by_seed(lr3, "lr", "mono_neurons"), by_seed(lr1, "lr", "mono_neurons")
    l3, l1 = by_seed(lr3, "lr", "final_loss"), by_seed(lr1, "lr", "final_loss")
    common = [lr for lr in c3.columns if lr in c1.columns]
    seeds = c3.index.intersection(c1.index)
    diffs = {lr: paired(c3.loc[seeds, lr], c1.loc[seeds, lr]) for lr in common}
    costs = {lr: ratio(l3.loc[seeds, lr], l1.loc[seeds, lr]) for lr in common}
    sides = {lr: d.versus(rules.floor_neurons) for lr, d in diffs.items()}
    wins = [lr for lr in common if sides[lr] == "above"]
    losses = [lr for lr in common if sides[lr] == "below"]
    ties = [lr for lr in common if sides[lr] == "within"]
    loss_kept = {lr: loss_side(costs[lr], rules) for lr in wins}
    best = c3.columns[int(np.nanargmax(c3.mean().to_numpy()))]
    lev = mean_interval(by_seed(lr3, "lr", "mono_per_feature")[best])
    numbers = ("LR3 minus LR1 mono neurons per lr (paired by seed): "
               + ", ".join(f"{lr:g}: {diffs[lr].text()}" for lr in common)
               + "; LR3/LR1 loss ratio " + ", ".join(f"{lr:g}: {costs[lr].text(signed=False)}" for lr in common))
    if below_floor(a, rules) and below_floor(base, rules):
        return claim_verdict("LR3", "inconclusive", floor_reason([a, base], "lr", rules) + f" in LR3 and in LR1 at "
                             f"{at}", numbers, table)
    count = (f"at {at}, LR3 (decay {decay:g}) wins (interval at or above +{rules.floor_neurons:g} neurons) at "
             f"{len(wins)}/{len(common)} lrs, ties at {len(ties)}, loses at {len(losses)}")
    problems = ([f"it loses at lr {', '.join(f'{x:g}' for x in losses)}"] if losses else []) + (
        [f"a loss cost where it wins (lr {', '.join(f'{x:g}' for x, s in loss_kept.items() if s == 'cost')})"]
        if "cost" in loss_kept.values() else []) + (
        [f"its peak mono/feature {lev.text(signed=False)} stays below {rules.paper_level:g}"]
        if level_side(lev, rules.paper_level) == "short" else [])
    if not wins:
        decided = len(ties) + len(losses) == len(common)
        verdict = "disagrees" if decided else "inconclusive"
        why = "no more mono neurons than LR1 at any lr" if decided else "no lr where the difference is clear"
    elif (len(wins) >= len(common) / 2 and not losses and set(loss_kept.values()) == {"none"}
          and level_side(lev, rules.paper_level) == "reached"):
        verdict, why = "agrees", f"at no loss cost (within {100 * rules.loss_tol:.0f}% of LR1's where it wins)"
    elif problems or len(wins) < len(common) / 2 and len(wins) + len(ties) + len(losses) == len(common):
        verdict = "partly"
        why = "; ".join(problems + (["it wins at fewer than half the lrs"] if len(wins) < len(common) / 2 else []))
    else:
        verdict, why = "inconclusive", "a part of the claim is not clear at its threshold"
    return claim_verdict("LR3", verdict, f"{count}: {why}. {numbers}", numbers, table)


def lr3_table(a: pd.DataFrame, base: pd.DataFrame | None) -> pd.DataFrame:
    """LR3's per-lr table, with LR1's mono/feature and loss beside it when LR1 ran."""
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
    return pd.DataFrame(rows)
