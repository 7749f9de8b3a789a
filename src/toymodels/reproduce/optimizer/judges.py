"""How one OPT1 cell is judged (``rules``: the rule, its thresholds and the checkpoints read), and the tables the
judges read: :func:`checkpoint_tables` gives the per-instance numbers at the final step (paper_cosine's last lr
*peak*) and at its last *trough*, so that the same rule judges the model at both; :func:`judge_opt_cell` applies
the rule to one (setting, optimizer, schedule) cell, with 95% intervals over seeds (``intervals``).

Example:
    >>> round(t_quantile(2), 3)  # 3 seeds: the interval is mean ± 4.3 sd / sqrt(3)
    4.303
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from toymodels.engine.optim import (
    last_trough_step,  # the trough of paper_cosine; the peak is the final step
)
from toymodels.reproduce.em_claims.oscillation import trajectory
from toymodels.reproduce.intervals import Interval, mean_interval, paired, ratio
from toymodels.reproduce.optimizer.rules import (
    EFFECTS,
    LOSS_WINDOW,
    MIN_SEEDS,
    THRESHOLDS,
    Thresholds,
)
from toymodels.results.store import Results

__all__ = ["EFFECTS", "LOSS_WINDOW", "MIN_SEEDS", "becomes_mono", "checkpoint_tables", "count_effects",
           "judge_cells", "judge_opt_cell", "last_trough_step", "peak_vs_trough", "spread", "t_quantile"]


def t_quantile(dof: int) -> float:
    """The two-sided 95% quantile of Student's t with ``dof`` degrees of freedom (NaN for dof < 1)."""
    if dof < 1:
        return float("nan")
    return float(stats.t.ppf(0.975, dof))


def spread(values: np.ndarray) -> dict[str, float]:
    """mean, sd (ddof 1), the 95% t interval of the mean (mean ± t sd / sqrt(n)), min and max of ``values``."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    sd = float(values.std(ddof=1)) if n > 1 else float("nan")
    half = t_quantile(n - 1) * sd / math.sqrt(n) if n > 1 else float("nan")
    return {"n": n, "mean": mean, "sd": sd, "lo95": mean - half, "hi95": mean + half,
                "min": float(values.min()) if n else float("nan"), "max": float(values.max()) if n else float("nan")}


def checkpoint_tables(results: dict[str, Results]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(peak, trough): one row per instance of every OPT1 part at its final step (the lr *peak* of paper_cosine) and
    at its last lr trough, each with setting (LR1 / LR3), optimizer, schedule, lr, lr_level (low / high / midI),
    bias_decay, seed, N, step, status (``ok``, or ``diverged`` when no checkpoint metrics exist at that step),
    mono_neurons, mono_per_feature, mean_bias, dead_neurons and loss (``oscillation.trajectory``, read once per
    part for both). The trough table is empty when a part has no trough step."""
    frames: dict[str, list[pd.DataFrame]] = {"peak": [], "trough": []}
    for part, res in results.items():
        steps = res.sweep.base.optim.steps
        inst = res.instances
        traj = trajectory(res)
        lrs = sorted(inst["lr"].unique())
        level = {lr: "low" if i == 0 else "high" if i == len(lrs) - 1 else f"mid{i}" for i, lr in enumerate(lrs)}
        for where, step in (("peak", steps - 1), ("trough", last_trough_step(steps))):
            if step is None:
                continue
            m = traj[traj["step"] == step].set_index("run_id")
            df = inst[["run_id", "optimizer", "schedule", "lr", "bias_decay", "seed", "N"]].copy()
            df.insert(0, "setting", part.split("-")[1])
            df["lr_level"] = df["lr"].map(level)
            df["step"] = step
            for col in ("mono_neurons", "mono_per_feature", "mean_bias", "dead_neurons"):
                df[col] = df["run_id"].map(m[col]) if col in m.columns else float("nan")
            df["loss"] = df["run_id"].map(m["loss"])
            df["status"] = np.where(df["mono_neurons"].notna() & df["loss"].notna(), "ok", "diverged")
            frames[where].append(df)
    peak, trough = (pd.concat(f, ignore_index=True) if f else pd.DataFrame() for f in frames.values())
    return peak, (trough if len(frames["trough"]) == len(results) else pd.DataFrame())


def becomes_mono(iv: Interval, floor: float) -> str:
    """Does the model become monosemantic? ``yes`` when the 95% interval of its mean mono neurons lies at or above
    ``floor``, ``no`` when wholly below, ``unclear`` otherwise (also with one seed)."""
    if not (math.isfinite(iv.low) and math.isfinite(iv.high)):
        return "unclear"
    return "yes" if iv.low >= floor else "no" if iv.high < floor else "unclear"


def _nan_interval() -> Interval:
    return Interval(float("nan"), float("nan"), float("nan"), 0, "none")


def judge_opt_cell(cell: pd.DataFrame, thresholds: Thresholds = THRESHOLDS) -> dict[str, Any]:
    """The paper's effect in one (setting, optimizer, schedule) cell by the rule of ``rules`` (first match of
    ``rules.EFFECTS``), with the marks of ``thresholds``.

    Returns ``effect``; the lrs ``lo`` and ``hi``; ``n`` (seeds judged); ``n_div`` (diverged instances); ``N``;
    ``d`` (the paired 95% interval of d = mono neurons high - low, in neurons) with ``d_neurons`` and ``d_mono``
    (:func:`spread` of d and of d / N, for mean ± sd and the seeds' range); ``ratio`` (the paired bootstrap interval
    of mean loss high / low) and ``loss_ratio`` (its estimate); ``mono`` (per lr level: (``becomes_mono`` answer,
    the interval of its mean mono neurons)); ``level`` (per lr level: :func:`spread` of mono_per_feature and loss).
    """
    F = thresholds.mono_floor
    lrs = sorted(cell["lr"].unique())
    lo, hi = lrs[0], lrs[-1]
    N = int(cell["N"].iloc[0]) if "N" in cell.columns else 0
    out: dict[str, Any] = {"lo": lo, "hi": hi, "N": N, "n": 0, "n_div": int((cell["status"] != "ok").sum()),
                               "d": _nan_interval(), "d_neurons": spread(np.array([])), "d_mono": spread(np.array([])),
                               "ratio": _nan_interval(), "loss_ratio": float("nan"), "level": {}, "mono": {}}
    both = cell[cell["lr"].isin([lo, hi])]
    seeds_run = both.groupby("seed")["lr"].nunique()
    ok = both[both["status"] == "ok"].pivot_table(index="seed", columns="lr",
                                                  values=["mono_neurons", "mono_per_feature", "loss"])
    ok = ok.dropna() if len(ok) else ok
    n_paired = len(ok) if len(ok) and {lo, hi} <= set(ok.columns.get_level_values(1)) else 0
    if n_paired:
        high, low = ok["mono_neurons"][hi].to_numpy(), ok["mono_neurons"][lo].to_numpy()
        d = high - low
        r = ratio(ok["loss"][hi].to_numpy(), ok["loss"][lo].to_numpy())
        out.update(n=n_paired, d=paired(high, low), d_neurons=spread(d),
                   d_mono=spread(d / N) if N else spread(np.array([])), ratio=r, loss_ratio=r.estimate,
                   mono={lv: (becomes_mono(iv, F), iv) for lv, iv in (("low", mean_interval(low)),
                                                                      ("high", mean_interval(high)))},
                   level={lv: {"mono": spread(ok["mono_per_feature"][lr].to_numpy()),
                                   "loss": spread(ok["loss"][lr].to_numpy())}
                          for lv, lr in (("low", lo), ("high", hi))})
    if int((seeds_run == 2).sum()) < MIN_SEEDS:
        return {**out, "effect": "too few seeds"}
    if n_paired < MIN_SEEDS:
        return {**out, "effect": "diverged"}
    side = out["d"].versus(F)
    r = out["ratio"]
    if all(answer == "no" for answer, _ in out["mono"].values()):
        effect = "no mono"
    elif side == "above":
        effect = ("yes" if r.high <= 1 + thresholds.loss_tol else "mono up, loss up" if r.low > 1 + thresholds.loss_tol
                  else "mono up, loss unclear")
    else:
        effect = {"below": "reversed", "within": "no effect"}.get(side, "unclear")
    return {**out, "effect": effect}


def judge_cells(df: pd.DataFrame, thresholds: Thresholds = THRESHOLDS) -> dict[tuple[str, str, str], dict[str, Any]]:
    """:func:`judge_opt_cell` of every (setting, optimizer, schedule) cell of a :func:`checkpoint_tables`."""
    return {key: judge_opt_cell(cell, thresholds)
            for key, cell in df.groupby(["setting", "optimizer", "schedule"], sort=False)}


def peak_vs_trough(peak: pd.DataFrame, trough: pd.DataFrame) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Per (setting, optimizer, schedule, lr level): the seeds' mono/feature and loss at the last peak and the last
    trough (:func:`spread` of each; also of the mono neurons), and the paired change peak - trough in mono neurons
    (``d_neurons``: its spread; ``d``: its paired 95% interval) and in loss (``d_loss``: its paired interval)."""
    keys = ["setting", "optimizer", "schedule", "lr_level", "seed"]
    cols = ["mono_neurons", "mono_per_feature", "loss"]
    if peak.empty or trough.empty:
        return {}
    both = peak[peak["status"] == "ok"][keys + cols].merge(
        trough[trough["status"] == "ok"][keys + cols], on=keys, suffixes=("_peak", "_trough"))
    out = {}
    for key, g in both.groupby(keys[:-1], sort=False):
        out[key] = {"n": len(g), "neurons_peak": spread(g["mono_neurons_peak"]),
                        "neurons_trough": spread(g["mono_neurons_trough"]),
                        "mono_peak": spread(g["mono_per_feature_peak"]),
                        "mono_trough": spread(g["mono_per_feature_trough"]), "loss_peak": spread(g["loss_peak"]),
                        "loss_trough": spread(g["loss_trough"]),
                        "d_neurons": spread(g["mono_neurons_peak"] - g["mono_neurons_trough"]),
                        "d": paired(g["mono_neurons_peak"].to_numpy(), g["mono_neurons_trough"].to_numpy()),
                        "d_loss": paired(g["loss_peak"].to_numpy(), g["loss_trough"].to_numpy())}
    return out


def count_effects(cells: dict[tuple[str, str, str], dict[str, Any]], optimizer: str | None = None,
                  schedule: str | None = None) -> dict[str, int]:
    """How many cells (of one optimizer / schedule, or all) got each effect, in EFFECTS order, zeros left out."""
    chosen = [j["effect"] for k, j in cells.items()
              if (optimizer is None or k[1] == optimizer) and (schedule is None or k[2] == schedule)]
    return {e: chosen.count(e) for e in EFFECTS if chosen.count(e)}
