"""The polytope judges: each prediction's verdict from the study's table (``measure.study_table``: one row per model,
every family) under the rules (``rules``: every threshold and what decides, in its docstring). A judge is a pure
function of (table, rules), so :func:`judge` asks it again with every threshold halved and doubled for the
sensitivity line every verdict carries.

Each judge decides family by family (EM, TMS, SAE: a row of its table per setting, then the family's pooled row) and
puts the families together with :func:`overall`: agrees / disagrees when every family does, partly when the decided
families differ, inconclusive when one is undecided or missing.

Example:
    >>> overall({"EM": "agrees", "TMS": "disagrees", "SAE": "agrees"})
    'partly'
    >>> overall({"EM": "agrees", "TMS": "inconclusive", "SAE": "agrees"})
    'inconclusive'
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from toymodels.reproduce.intervals import (
    Interval,
    Trend,
    mean_interval,
    paired,
    threshold_sensitivity,
    trend,
)
from toymodels.reproduce.polytope.rules import (
    AXES,
    FAMILIES,
    MIN_REPRESENTED,
    MONO,
    PREDICTIONS,
    RULES,
    SETTINGS,
    PolytopeRules,
)
from toymodels.reproduce.verdict import Verdict

TITLES = {
    "POLY-1": "Polytopes pick out monosemantic regions better than neurons",
    "POLY-2": "Polytope boundaries are dense at semantic boundaries",
    "POLY-3": "A feature direction is valid only within a region",
}
PAPER = {
    "POLY-1": "polytopes, or clusters of spline codes, identify monosemantic regions better than neurons or "
              "directions do",
    "POLY-2": "the density of polytope boundaries is high at semantic boundaries, where the input's meaning changes",
    "POLY-3": "a feature direction is meaningful only within a validity region: scaled far along it, an activation "
              "crosses polytope boundaries and its meaning changes",
}
#: a family's word -> the prediction's word for it
ADVANTAGE = {"above": ("codes better", "agrees"), "below": ("neurons better", "disagrees"),
             "within": ("as good", "disagrees")}
GROWTH = {"above": "grows", "below": "shrinks", "within": "shows no trend"}
DENSITY = {"above": ("denser between features", "agrees"), "below": ("denser along one feature", "disagrees"),
           "within": ("as dense", "disagrees")}


def overall(words: dict[str, str]) -> str:
    """The prediction's word from its families' (every family of ``FAMILIES`` must be there and decided)."""
    decided = [words.get(f, "inconclusive") for f in FAMILIES]
    if "inconclusive" in decided:
        return "inconclusive"
    return decided[0] if len(set(decided)) == 1 else "partly"


def _family(table: pd.DataFrame, family: str) -> pd.DataFrame:
    return table[table["family"] == family] if len(table) and "family" in table else pd.DataFrame()


def _too_few(g: pd.DataFrame, rules: PolytopeRules) -> str:
    """Why family rows ``g`` cannot be judged ('' when they can)."""
    if g.empty:
        return "not run"
    seeds = g["seed"].nunique()
    return f"{seeds} seed{'s' * (seeds != 1)}, fewer than {rules.min_seeds}" if seeds < rules.min_seeds else ""


def _ratio_text(iv: Interval) -> str:
    """An interval of log(ratio) as the ratio's."""
    def fmt(v: float) -> str:
        return f"{math.exp(v):.3g}" if math.isfinite(v) else "n/a"

    return f"{fmt(iv.estimate)} [95% CI {fmt(iv.low)}, {fmt(iv.high)}]"


def _verdict(claim: str, words: dict[str, str], bits: dict[str, str], rows: list[dict], reason: str,
             **details) -> Verdict:
    word = overall(words)
    per_family = "; ".join(f"{f}: {bits.get(f, 'not run')}" for f in FAMILIES)
    left = [f for f in FAMILIES if words.get(f, "inconclusive") == "inconclusive"]
    lead = f"undecided for {', '.join(left)}; " if left else ""
    return Verdict(claim, TITLES[claim], word, f"{lead}{reason} {per_family}.", numbers=per_family,
                   paper=PAPER[claim], table=pd.DataFrame(rows), details={"families": words, **details})


# ---- POLY-1 ------------------------------------------------------------------------------------------------------
def judge_purity(table: pd.DataFrame, rules: PolytopeRules = RULES) -> Verdict:
    """POLY-1 (``rules``): per family, F-score of spline codes minus that of the neuron partition, per seed the mean
    over settings, a paired t interval over seeds against +-``advantage_margin``; beside it, the trend of the
    per-model difference along the monosemantic axis (not deciding)."""
    words, bits, rows, growth = {}, {}, [], {}
    for family in FAMILIES:
        g = _family(table, family)
        g = g[np.isfinite(g["code_match"]) & np.isfinite(g["neuron_match"])] if len(g) else g
        for setting, h in g.groupby("setting", sort=True) if len(g) else ():
            h = h.sort_values("seed")
            rows.append(_purity_row(family, f"{SETTINGS[family]} {setting:g}", h, paired(h["code_match"],
                                                                                     h["neuron_match"])))
        why = _too_few(g, rules)
        if why:
            words[family], bits[family] = "inconclusive", why
            continue
        seeds = g.groupby("seed")[["code_match", "neuron_match"]].mean()
        iv = paired(seeds["code_match"], seeds["neuron_match"])
        found, words[family] = ADVANTAGE.get(iv.versus(rules.advantage_margin), ("unclear", "inconclusive"))
        diff = g["code_match"] - g["neuron_match"]
        mono_col, sign = MONO[family]
        tr, by_mono = (_trend(tuple(x), tuple(diff), tuple(g["seed"])) for x in (g["axis"], sign * g["mono"]))
        growth[family] = GROWTH.get(tr.interval.versus(rules.trend_floor), "is unclear")
        rows.append(_purity_row(family, "all (per-seed mean)", g, iv))
        measured = "" if mono_col == AXES[family] else \
            f"; against {'-' if sign < 0 else ''}{mono_col}: {by_mono.text()}"
        bits[family] = (f"{found}, F(codes) - F(neurons) {iv.text()}; the difference {growth[family]} as the "
                        f"model becomes monosemantic ({tr.text()} against {AXES[family]}{measured})")
    reason = (f"F-score (harmonic mean of purity and completeness) of the spline codes minus that of the neuron "
              f"partition on lone-feature inputs, per seed the mean over a family's settings, paired by model; "
              f"margin +-{rules.advantage_margin:g}; the trend (beside, not deciding) against +-"
              f"{rules.trend_floor:g}.")
    return _verdict("POLY-1", words, bits, rows, reason, growth=growth)


@functools.lru_cache(maxsize=64)
def _trend(x: tuple, y: tuple, seeds: tuple) -> Trend:
    """``intervals.trend``, once per data (its seed bootstrap does not depend on the thresholds the sensitivity line
    scales, and takes about a second)."""
    return trend(x, y, seeds)


def _purity_row(family: str, setting: str, h: pd.DataFrame, iv: Interval) -> dict:
    return {"family": family, "setting": setting, "seeds": h["seed"].nunique(), MONO[family][0]: h["mono"].mean(),
            "code purity": h["code_purity"].mean(), "code completeness": h["code_completeness"].mean(),
            "code F": h["code_match"].mean(), "neuron purity": h["neuron_purity"].mean(),
            "neuron completeness": h["neuron_completeness"].mean(), "neuron F": h["neuron_match"].mean(),
            "F codes - neurons (95% CI)": iv.text(), "origin share": h["origin_share"].mean()}


# ---- POLY-2 ------------------------------------------------------------------------------------------------------
def _log_ratio(between: pd.Series, within: pd.Series) -> pd.Series:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(between.astype(float) / within.astype(float))


def _peak(h: pd.DataFrame) -> float:
    """Where along the between-feature paths the mean boundary profile peaks (0: at feature i, 1: at feature j)."""
    cols = sorted((c for c in h.columns if c.startswith("between_profile_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    if not cols:
        return float("nan")
    profile = h[cols].to_numpy(dtype=float).mean(0)
    return (int(np.argmax(profile)) + 0.5) / len(cols)


def judge_density(table: pd.DataFrame, rules: PolytopeRules = RULES) -> Verdict:
    """POLY-2 (``rules``): per family, per seed log(sum of between-feature densities / sum of along-feature ones)
    over its settings, a t interval over seeds against +-log(1 + ``density_margin``)."""
    words, bits, rows = {}, {}, []
    for family in FAMILIES:
        g = _family(table, family)
        for setting, h in g.groupby("setting", sort=True) if len(g) else ():
            iv = mean_interval(_log_ratio(h["between_density"], h["within_density"]))
            rows.append(_density_row(family, f"{SETTINGS[family]} {setting:g}", h, iv))
        why = _too_few(g, rules)
        if why:
            words[family], bits[family] = "inconclusive", why
            continue
        sums = g.groupby("seed")[["between_density", "within_density"]].sum()
        logr = _log_ratio(sums["between_density"], sums["within_density"])
        iv = mean_interval(logr)
        found, words[family] = DENSITY.get(iv.versus(rules.log_density_floor), ("unclear", "inconclusive"))
        rows.append(_density_row(family, "all (per-seed sums)", g, iv))
        lost = int((~np.isfinite(logr)).sum())
        bits[family] = (f"{found}, between / along {_ratio_text(iv)}; the between-paths' boundaries peak at "
                        f"{_peak(g):.2f} of the way" + (f" ({lost} seed(s) without a boundary along any feature "
                                                        f"left out)" if lost else ""))
    reason = (f"boundary crossings per unit length on straight paths between two features' typical points against "
              f"paths along one feature (10% to 90% of its magnitudes), per seed the ratio of the sums over a "
              f"family's settings; denser between when the ratio's interval is at or above "
              f"{1 + rules.density_margin:g}, as dense when it lies inside 1 +-{rules.density_margin:g} (log scale).")
    return _verdict("POLY-2", words, bits, rows, reason)


def _density_row(family: str, setting: str, h: pd.DataFrame, iv: Interval) -> dict:
    return {"family": family, "setting": setting, "seeds": h["seed"].nunique(), MONO[family][0]: h["mono"].mean(),
            "between (per unit length)": h["between_density"].mean(),
            "along (per unit length)": h["within_density"].mean(), "between / along (95% CI)": _ratio_text(iv),
            "peak of between-paths (0-1)": _peak(h)}


# ---- POLY-3 ------------------------------------------------------------------------------------------------------
def counts_for_validity(h: pd.DataFrame) -> pd.Series:
    """Rows whose median probe is a feature the model represents (``rules.MIN_REPRESENTED``; all but TMS)."""
    return h["represented_share"].astype(float).fillna(1.0) >= MIN_REPRESENTED


def judge_validity(table: pd.DataFrame, rules: PolytopeRules = RULES) -> Verdict:
    """POLY-3 (``rules``): per family, per seed the mean over its counted settings of the median probe's validity
    range (x top training magnitude), a t interval over seeds: wholly below ``validity_bound`` agrees, wholly above
    disagrees."""
    words, bits, rows = {}, {}, []
    bound = rules.validity_bound
    for family in FAMILIES:
        g = _family(table, family)
        for setting, h in g.groupby("setting", sort=True) if len(g) else ():
            rows.append(_validity_row(family, f"{SETTINGS[family]} {setting:g}", h,
                                      mean_interval(h["validity_upper"]), counts_for_validity(h)))
        counted = g[counts_for_validity(g)] if len(g) else g
        why = _too_few(counted, rules)
        if why:
            words[family] = "inconclusive"
            bits[family] = why if counted.empty == g.empty else (
                f"no setting where it represents at least {MIN_REPRESENTED:.0%} of its features")
            continue
        g = counted
        iv = mean_interval(g.groupby("seed")["validity_upper"].mean())
        side = Interval(iv.estimate - bound, iv.low - bound, iv.high - bound, iv.n, iv.method).versus(0.0)
        found, words[family] = {"below": (f"valid only up to < {bound:g} x top", "agrees"),
                                "above": (f"valid beyond {bound:g} x top", "disagrees")}.get(
            side, ("unclear", "inconclusive"))
        rows.append(_validity_row(family, "all (per-seed mean)", g, iv, counts_for_validity(g)))
        bits[family] = (f"{found}: the median feature stays within 1% of affine up to {iv.text(signed=False)} x "
                        f"its top training magnitude; {1 - g['valid_to_horizon'].mean():.0%} of the feature "
                        f"directions leave it before 8 x; from {g['validity_lower'].mean():.2f} x below")
    reason = (f"along each feature's ray the output stays within 1% of the affine map it has at the top of the "
              f"feature's training magnitudes (99% quantile) up to a multiple of that top; the median over the "
              f"features, per seed the mean over a family's settings (TMS: those where it represents at least "
              f"{MIN_REPRESENTED:.0%} of its features); agrees when the interval lies below {bound:g} (at least half "
              f"the directions leave 1% of affine within {bound:g} x their training range).")
    return _verdict("POLY-3", words, bits, rows, reason)


def _validity_row(family: str, setting: str, h: pd.DataFrame, iv: Interval, counted: pd.Series) -> dict:
    counts = "yes" if counted.all() else "no (most features unrepresented)" if not counted.any() else \
        f"{int(counted.sum())} of {len(counted)} models"
    return {"family": family, "setting": setting, "seeds": h["seed"].nunique(), MONO[family][0]: h["mono"].mean(),
            "counts": counts,
            "valid up to (x top, 95% CI)": iv.text(signed=False), "valid from (x top)": h["validity_lower"].mean(),
            "directions affine to 8 x top": h["valid_to_horizon"].mean(), "codes per ray": h["ray_codes"].mean()}


JUDGES: dict[str, Callable[[pd.DataFrame, PolytopeRules], Verdict]] = {
    "POLY-1": judge_purity, "POLY-2": judge_density, "POLY-3": judge_validity}


def judge(claim: str, table: pd.DataFrame) -> Verdict:
    """The verdict of prediction ``claim`` under ``RULES``, with how it moves when every threshold is halved or
    doubled (``details["thresholds"]``, and the reason's last sentence)."""
    v = JUDGES[claim](table, RULES)
    moved = threshold_sensitivity(lambda f: JUDGES[claim](table, RULES.scaled(f)).verdict, v.verdict)
    reason = v.reason if v.reason.endswith(".") else v.reason + "."
    return Verdict(v.claim, v.title, v.verdict, f"{reason} Thresholds: {moved}.", numbers=v.numbers,
                   paper=v.paper, table=v.table, details={**v.details, "thresholds": moved})


def judge_all(table: pd.DataFrame) -> list[Verdict]:
    """Every prediction's verdict, in ``PREDICTIONS`` order."""
    return [judge(claim, table) for claim in PREDICTIONS]
