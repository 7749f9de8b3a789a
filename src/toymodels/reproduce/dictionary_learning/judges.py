"""The dictionary-learning judges: each question's verdict from its measured table (``measure``) under the rules
(``rules``: every threshold, and what decides, in its docstring). A judge is a pure function of (table, rules), so
:func:`judge` can ask it again with every threshold halved and doubled for the sensitivity line.

* ``SAE-LR`` (a question): per learning rate of LR1, the features an SAE on the hidden layer h covers minus those
  the neurons cover (one criterion, ``rules``), paired by source model: "more", "fewer" or "as many" when the
  interval is beyond +-``coverage_margin`` or inside it.
* ``SAE-L0`` (the SAE papers' claim: at the width equal to the number of true features, MCC peaks near the true
  L0): per architecture, log2(L0 of the best-MCC SAE / true L0) per seed; "near" when its interval lies inside
  +-log2(``l0_factor``), "far" when beyond. ``agrees`` (all near), ``disagrees`` (all far), ``partly`` (both).
* ``SAE-ABS`` (a question): per architecture and sparsity, the absorption gap on hierarchical features minus the
  null gap of the same SAE on independent features, paired by seed; absorption "appears" for an architecture when
  one of its sparsities has the interval at or above ``absorption_floor``, "does not" when every one is inside
  (or below) it.
* ``SAE-TMS`` (a question): Spearman's rho between the TMS model's sparsity S and the fraction of its represented
  features the SAE covers, over every (seed, density) point, with a seed-bootstrap interval against
  ``trend_floor``.

A question is ``answered`` only when every point is decided, else ``inconclusive`` naming the decided ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from toymodels.reproduce.dictionary_learning.rules import (
    RULES,
    DictionaryRules,
    coverage_column,
)
from toymodels.reproduce.dictionary_learning.sweeps import source_sweep  # noqa: F401  (its old home, for callers)
from toymodels.reproduce.intervals import (
    mean_interval,
    paired,
    threshold_sensitivity,
    trend,
)
from toymodels.reproduce.verdict import Verdict

DICTIONARY_LEARNING_CLAIMS = ("SAE-LR", "SAE-L0", "SAE-ABS", "SAE-TMS")
TITLES = {
    "SAE-LR": "Engineering route vs dictionary learning on the same models (LR1)",
    "SAE-L0": "MCC against L0 and width, four architectures",
    "SAE-ABS": "Correlated and hierarchical features: does absorption appear beyond chance?",
    "SAE-TMS": "An SAE on the TMS hidden layer across feature sparsity (represented features)",
}
PAPER = {"SAE-L0": "SAE papers (e.g. SynthSAEBench): at width = number of true features, MCC peaks near the true L0"}


def _undecided(points: dict[str, str], decided: Callable[[str], bool]) -> list[str]:
    return [p for p, word in points.items() if not decided(word)]


def _answer(claim: str, points: dict[str, str], decided: Callable[[str], bool], numbers: str, reason: str,
            table: pd.DataFrame, **details) -> Verdict:
    """``answered`` when every point is decided, else ``inconclusive`` naming the undecided ones."""
    left = _undecided(points, decided)
    if not points:
        return Verdict(claim, TITLES[claim], "inconclusive", "no point could be judged", table=table)
    if left:
        reason = f"undecided at {', '.join(left)}; " + reason
    return Verdict(claim, TITLES[claim], "inconclusive" if left else "answered", reason, numbers=numbers,
                   table=table, details=details)


# ---- SAE-LR ----------------------------------------------------------------------------------------------------
LR_WORDS = {"above": "more", "below": "fewer", "within": "as many"}


def judge_lr(table: pd.DataFrame, rules: DictionaryRules = RULES) -> Verdict:
    """SAE-LR (module docstring): per lr, ``paired(SAE on h, neurons)`` over seeds of the covered fraction at
    ``rules.selectivity``; a point is unclear when its interval straddles the margin or its SAEs on h have a mean
    MCC below ``mcc_floor``."""
    need = {coverage_column("cover_neurons", rules.selectivity), coverage_column("cover_h", rules.selectivity)}
    if table is None or table.empty or not need <= set(table.columns):
        return Verdict("SAE-LR", TITLES["SAE-LR"], "inconclusive", "no trained source with an SAE on h", table=table)
    neurons, sae = (coverage_column(p, rules.selectivity) for p in ("cover_neurons", "cover_h"))
    points, rows = {}, []
    for lr, g in table.sort_values(["lr", "seed"]).groupby("lr"):
        iv = paired(g[sae], g[neurons])
        word = LR_WORDS.get(iv.versus(rules.coverage_margin), "unclear")
        if g["mcc_h"].mean() < rules.mcc_floor:
            word = "unclear (the SAEs on h learned nothing)"
        points[f"lr {lr:g}"] = word
        rows.append({"lr": lr, "seeds": len(g), "neurons cover": g[neurons].mean(), "SAE on h covers": g[sae].mean(),
                     "SAE - neurons (95% CI)": iv.text(), "answer": word,
                     "SAE on h recovers (cos)": g["recovered_h"].mean(), "MCC h": g["mcc_h"].mean(),
                     "best cos h": g["best_cos_h"].mean(),
                     "SAE on x covers": g[coverage_column("cover_x", rules.selectivity)].mean()
                     if coverage_column("cover_x", rules.selectivity) in g else np.nan,
                     "SAE on x recovers (cos)": g["recovered_x"].mean() if "recovered_x" in g else np.nan})
    summary = pd.DataFrame(rows)
    numbers = "; ".join(f"{p}: {w}" for p, w in points.items())
    per_lr = "; ".join(f"lr {r['lr']:g}: {r['SAE - neurons (95% CI)']} ({r['answer']})" for r in rows)
    reason = (f"features covered (selectivity > {rules.selectivity:g}) by the SAE on h minus by the neurons, per lr, "
              f"paired by source model: {per_lr}; margin +-{rules.coverage_margin:g}.")
    return _answer("SAE-LR", points, lambda w: w in LR_WORDS.values(), numbers, reason, summary)


# ---- SAE-L0 ----------------------------------------------------------------------------------------------------
def judge_l0(table: pd.DataFrame, rules: DictionaryRules = RULES) -> Verdict:
    """SAE-L0 (module docstring): per architecture at width N, the per-seed best-MCC SAE's log2(L0 / true L0),
    a t interval over seeds against +-log2(``l0_factor``); unclear when it straddles the floor or the best MCC's
    mean is below ``mcc_floor``. ``agrees`` / ``disagrees`` / ``partly`` from the decided architectures when none
    is unclear, else ``inconclusive``."""
    title = TITLES["SAE-L0"]
    if table is None or table.empty:
        return Verdict("SAE-L0", title, "inconclusive", "no SAE trained", table=table)
    N = int(table["N"].iloc[0])
    at_n = table[table["sae_width"] == N]
    points, bits = {}, []
    for arch, g in at_n.groupby("sae_arch", sort=False):
        best = g.loc[g.groupby("seed")["mcc"].idxmax()]
        iv = mean_interval(np.log2(best["l0"].clip(lower=1e-9) / best["true_l0"]))
        word = {"within": "near", "above": "far (denser)", "below": "far (sparser)"}.get(
            iv.versus(rules.l0_log2_floor), "unclear")
        if best["mcc"].mean() < rules.mcc_floor:
            word = "unclear (best MCC below the floor)"
        points[arch] = word
        bits.append(f"{arch}: best MCC {best['mcc'].mean():.3f} at L0 {best['l0'].mean():.2f}, log2(L0 / true L0) "
                    f"{iv.text()} ({word})")
    widths = width_table(table)
    true_l0 = float(table["true_l0"].mean())
    reason = (f"true L0 {true_l0:.2f}; at width {N} (= the number of true features), per architecture over seeds: "
              + "; ".join(bits) + f"; 'near' within a factor {rules.l0_factor:g}.")
    left = [a for a, w in points.items() if w.startswith("unclear")]
    near = [a for a, w in points.items() if w == "near"]
    if not points or left:
        word = "inconclusive"
        reason = (f"undecided for {', '.join(left)}; " if left else "no SAE at width N; ") + reason
    else:
        word = "agrees" if len(near) == len(points) else "disagrees" if not near else "partly"
    return Verdict("SAE-L0", title, word, reason, numbers="; ".join(f"{a}: {w}" for a, w in points.items()),
                   paper=PAPER["SAE-L0"], table=widths)


def width_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per architecture and width: the best MCC (over min(latents, features) matched pairs) and the best mean over
    true features of the best |cos| (every feature counts: the comparison across widths), each a t interval over
    the per-seed best."""
    rows = []
    for (arch, width), g in table.groupby(["sae_arch", "sae_width"], sort=False):
        per_seed = g.groupby("seed")[["mcc", "best_cos"]].max()
        rows.append({"sae_arch": arch, "sae_width": int(width), "best MCC (95% CI)":
                     mean_interval(per_seed["mcc"]).text(signed=False),
                     "best mean best-|cos| (95% CI)": mean_interval(per_seed["best_cos"]).text(signed=False)})
    return pd.DataFrame(rows)


# ---- SAE-ABS ---------------------------------------------------------------------------------------------------
def absorption_points(table: pd.DataFrame, rules: DictionaryRules) -> pd.DataFrame:
    """One row per (architecture, sparsity): hierarchical and null gaps, their paired difference and its word."""
    rows = []
    for (arch, sparsity), g in table.groupby(["sae_arch", "sparsity"], sort=False):
        hier = g[g["firing"] == "hierarchical"].set_index("seed")
        null = g[g["firing"] == "independent"].set_index("seed")
        seeds = sorted(set(hier.index) & set(null.index))
        iv = paired(hier.loc[seeds, "gap"], null.loc[seeds, "gap"])
        word = {"above": "absorption", "within": "none beyond chance", "below": "below chance"}.get(
            iv.versus(rules.absorption_floor), "unclear")
        if len(hier) and hier["mcc"].mean() < rules.mcc_floor:
            word = "unclear (MCC below the floor)"
        rows.append({"sae_arch": arch, "sparsity": sparsity, "seeds": len(seeds), "gap hierarchical":
                     hier["gap"].mean(), "gap null (independent)": null["gap"].mean(),
                     "hierarchical - null (95% CI)": iv.text(), "answer": word, "MCC hierarchical": hier["mcc"].mean(),
                     "MCC independent": null["mcc"].mean(),
                     "MCC correlated": g[g["firing"] == "correlated"]["mcc"].mean()})
    return pd.DataFrame(rows)


def judge_absorption(table: pd.DataFrame, rules: DictionaryRules = RULES) -> Verdict:
    """SAE-ABS (module docstring): per architecture, "appears" when some sparsity's paired interval of
    (hierarchical gap - null gap) is at or above ``absorption_floor``, "does not appear" when every sparsity's lies
    inside (or below) it, else unclear."""
    if table is None or table.empty or "gap" not in table or not (table["firing"] == "hierarchical").any():
        return Verdict("SAE-ABS", TITLES["SAE-ABS"], "inconclusive", "no hierarchical SAE trained", table=table)
    pts = absorption_points(table, rules)
    points = {}
    for arch, g in pts.groupby("sae_arch", sort=False):
        words = list(g["answer"])
        points[arch] = ("appears" if "absorption" in words else "does not appear"
                        if all(w in ("none beyond chance", "below chance") for w in words) else "unclear")
    numbers = "; ".join(f"{a}: {w}" for a, w in points.items())
    reason = ("absorption gap on hierarchical features minus the null gap of the same SAEs on independent "
              f"features (same parent-child index pairs), paired by seed, floor {rules.absorption_floor:g}: "
              + "; ".join(f"{r['sae_arch']} {r['sparsity']}: {r['hierarchical - null (95% CI)']} ({r['answer']})"
                         for r in pts.to_dict("records")) + ".")
    return _answer("SAE-ABS", points, lambda w: w != "unclear", numbers, reason, pts)


# ---- SAE-TMS ---------------------------------------------------------------------------------------------------
def tms_points(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """One point per (source seed, density): ``column`` averaged over the SAEs' l1 settings."""
    return table.groupby(["source_seed", "eps"], as_index=False)[[column, "S", "represented"]].mean()


def judge_tms(table: pd.DataFrame, rules: DictionaryRules = RULES) -> Verdict:
    """SAE-TMS (module docstring): ``trend(S, covered fraction of the represented features, seeds)`` over every
    (seed, density) point; rises / falls when rho's interval is at or beyond +-``trend_floor``, "no trend" when
    inside, else inconclusive (also with fewer than three densities or two seeds)."""
    title = TITLES["SAE-TMS"]
    column = coverage_column("cover_rep", rules.selectivity)
    if table is None or table.empty or column not in table:
        return Verdict("SAE-TMS", title, "inconclusive", "no SAE on a TMS model trained", table=table)
    pts = tms_points(table, column)
    if pts["eps"].nunique() < 3 or pts["source_seed"].nunique() < 2:
        return Verdict("SAE-TMS", title, "inconclusive", "fewer than three densities or two seeds trained",
                       table=table)
    tr = trend(pts["S"], pts[column], pts["source_seed"])
    word = {"above": "rises", "below": "falls", "within": "shows no trend"}.get(tr.interval.versus(rules.trend_floor))
    dense = pts[pts["eps"] < pts["eps"].max()]
    no_dense = trend(dense["S"], dense[column], dense["source_seed"])
    by = table.groupby("eps")[["represented", column, "recovered_rep", "features_recovered"]].mean()
    per_eps = ", ".join(f"1-S={e:g}: {r[column]:.2f} of {r['represented']:.1f} represented covered"
                        for e, r in by.sort_index(ascending=False).iterrows())
    recovered = tms_points(table, "recovered_rep")
    cos_trend = trend(recovered["S"], recovered["recovered_rep"], recovered["source_seed"])
    reason = (f"over {len(pts)} (seed, density) points, the fraction of represented features (||W_i|| > "
              f"{rules.represented_norm:g}) the SAE's latents cover: {tr.text()}; floor +-{rules.trend_floor:g}. "
              f"Without the densest level: {no_dense.text()}. Decoder |cos| > {rules.recovered_cos:g} among the "
              f"represented features instead: {cos_trend.text()}. {per_eps}.")
    if word is None:
        return Verdict("SAE-TMS", title, "inconclusive", "rho's interval straddles the floor; " + reason,
                       numbers=tr.text(), table=table)
    return Verdict("SAE-TMS", title, "answered", f"coverage of the represented features {word} as superposition "
                   f"grows; " + reason, numbers=f"{word}: {tr.text()}", table=table)


JUDGES: dict[str, Callable[[pd.DataFrame, DictionaryRules], Verdict]] = {
    "SAE-LR": judge_lr, "SAE-L0": judge_l0, "SAE-ABS": judge_absorption, "SAE-TMS": judge_tms}


def judge(name: str, table: pd.DataFrame) -> Verdict:
    """The verdict of question ``name`` under ``RULES``, with how it moves when every threshold is halved or
    doubled (``details["thresholds"]``, and the reason's last sentence)."""
    v = JUDGES[name](table, RULES)
    moved = threshold_sensitivity(lambda f: JUDGES[name](table, RULES.scaled(f)).verdict, v.verdict)
    reason = v.reason if v.reason.endswith(".") else v.reason + "."
    return Verdict(v.claim, v.title, v.verdict, f"{reason} Thresholds: {moved}.", numbers=v.numbers,
                   paper=v.paper, table=v.table, checks=v.checks, figure=v.figure,
                   details={**v.details, "thresholds": moved}, by_rules=v.by_rules)
