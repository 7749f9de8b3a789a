"""The rules of the optimizer study (OPT1), fixed before its runs: what counts as the paper's effect in one cell, read
at paper_cosine's final lr peak and at its last trough (``optim.last_trough_step``).

A *cell* is one (setting, optimizer, schedule); its *effect* is the change from the lowest to the highest lr of
the optimizer, measured per seed (the two lrs share their seeds, so the differences are paired) in monosemantic
neurons and in mono/feature (= neurons / N). :func:`judge_opt_cell` states the rule; :func:`checkpoint_tables`
gives the per-instance numbers at one checkpoint (the final step, i.e. paper_cosine's last lr *peak*, or its last
*trough*), so that the same rule judges the model at both.

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

from toymodels.engine.optim import last_trough_step  # the trough of paper_cosine; the peak is the final step
from toymodels.running.runner import FINAL_LOSS_LOGS
from toymodels.results.store import Results
from toymodels.engine.train import LOG_EVERY
from toymodels.reproduce.em_claims.judges import LOSS_TOL, MIN_MONO_NEURONS  # the EM claims' detection floor, in neurons (mono/feature x N)
from toymodels.reproduce.em_claims.oscillation import trajectory

#: A cell is judged only with at least this many seeds finished (and not diverged) at both of its lrs.
MIN_SEEDS = 3
#: The loss at a checkpoint is ``oscillation.trajectory``'s: the mean task loss logged (every 16 steps, on the
#: training batch) in the LOSS_WINDOW steps up to it, the same 8 logs as ``final_loss`` at the final step.
LOSS_WINDOW = FINAL_LOSS_LOGS * LOG_EVERY
#: The cell verdicts, in the order the rule tries them.
EFFECTS = ("too few seeds", "diverged", "no mono", "yes", "mono up, loss up", "reversed", "below floor",
           "mixed seeds")

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
    return dict(n=n, mean=mean, sd=sd, lo95=mean - half, hi95=mean + half,
                min=float(values.min()) if n else float("nan"), max=float(values.max()) if n else float("nan"))


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


def judge_opt_cell(cell: pd.DataFrame) -> dict[str, Any]:
    """The paper's effect in one (setting, optimizer, schedule) cell, by this rule (fixed before the runs):

    The highest lr is compared with the lowest, seed by seed (the seeds present at both; ``d`` = mono neurons at
    the high lr - at the low lr). With F = MIN_MONO_NEURONS (the detection floor) the effect is, first match:

    1. ``too few seeds``: fewer than MIN_SEEDS seeds ran at both lrs;
    2. ``diverged``: fewer than MIN_SEEDS of them finished (no divergence) at both lrs;
    3. ``no mono``: neither lr has F mono neurons on average: the model is outside the regime the claim is about;
    4. ``yes``: d >= F in *every* seed and the mean loss at the high lr is within LOSS_TOL of the low lr's (the
       paper's claim: more monosemantic at no loss cost); ``mono up, loss up``: the same gain at a higher loss;
    5. ``reversed``: d <= -F in every seed;
    6. ``below floor``: |mean d| < F (a change of a few neurons, noise at this scale: not counted either way);
    7. ``mixed seeds``: the mean passes the floor but the seeds disagree.

    Returns ``effect``, the lrs ``lo`` and ``hi``, ``n`` (seeds judged), ``n_div`` (diverged instances), ``N``,
    ``d_neurons`` and ``d_mono`` (:func:`spread` of d and of d / N), ``loss_ratio`` (mean loss high / low),
    ``level`` (per lr level: :func:`spread` of mono_per_feature and of loss).
    """
    lrs = sorted(cell["lr"].unique())
    lo, hi = lrs[0], lrs[-1]
    N = int(cell["N"].iloc[0]) if "N" in cell.columns else 0
    out: dict[str, Any] = dict(lo=lo, hi=hi, N=N, n=0, n_div=int((cell["status"] != "ok").sum()),
                               d_neurons=spread(np.array([])), d_mono=spread(np.array([])),
                               loss_ratio=float("nan"), level={})
    both = cell[cell["lr"].isin([lo, hi])]
    seeds_run = both.groupby("seed")["lr"].nunique()
    ok = both[both["status"] == "ok"].pivot_table(index="seed", columns="lr",
                                                  values=["mono_neurons", "mono_per_feature", "loss"])
    ok = ok.dropna() if len(ok) else ok
    paired = len(ok) if len(ok) and {lo, hi} <= set(ok.columns.get_level_values(1)) else 0
    if paired:
        d = (ok["mono_neurons"][hi] - ok["mono_neurons"][lo]).to_numpy()
        out.update(n=paired, d_neurons=spread(d), d_mono=spread(d / N) if N else spread(np.array([])),
                   loss_ratio=float(ok["loss"][hi].mean() / ok["loss"][lo].mean()),
                   level={lv: dict(mono=spread(ok["mono_per_feature"][lr].to_numpy()),
                                   loss=spread(ok["loss"][lr].to_numpy())) for lv, lr in (("low", lo), ("high", hi))})
    if int((seeds_run == 2).sum()) < MIN_SEEDS:
        return {**out, "effect": "too few seeds"}
    if paired < MIN_SEEDS:
        return {**out, "effect": "diverged"}
    means = [ok["mono_neurons"][lr].mean() for lr in (lo, hi)]
    dn = out["d_neurons"]
    if max(means) < MIN_MONO_NEURONS:
        effect = "no mono"
    elif dn["min"] >= MIN_MONO_NEURONS:
        effect = "yes" if out["loss_ratio"] <= 1 + LOSS_TOL else "mono up, loss up"
    elif dn["max"] <= -MIN_MONO_NEURONS:
        effect = "reversed"
    elif abs(dn["mean"]) < MIN_MONO_NEURONS:
        effect = "below floor"
    else:
        effect = "mixed seeds"
    return {**out, "effect": effect}


def judge_cells(df: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    """:func:`judge_opt_cell` of every (setting, optimizer, schedule) cell of a :func:`checkpoint_tables`."""
    return {key: judge_opt_cell(cell) for key, cell in df.groupby(["setting", "optimizer", "schedule"], sort=False)}


def peak_vs_trough(peak: pd.DataFrame, trough: pd.DataFrame) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Per (setting, optimizer, schedule, lr level): the seeds' mono/feature and loss at the last peak and the last
    trough (:func:`spread` of each; also of the mono neurons), and the paired change peak - trough in mono neurons
    (``d_neurons``)."""
    keys = ["setting", "optimizer", "schedule", "lr_level", "seed"]
    cols = ["mono_neurons", "mono_per_feature", "loss"]
    if peak.empty or trough.empty:
        return {}
    both = peak[peak["status"] == "ok"][keys + cols].merge(
        trough[trough["status"] == "ok"][keys + cols], on=keys, suffixes=("_peak", "_trough"))
    out = {}
    for key, g in both.groupby(keys[:-1], sort=False):
        out[key] = dict(n=len(g), neurons_peak=spread(g["mono_neurons_peak"]),
                        neurons_trough=spread(g["mono_neurons_trough"]), mono_peak=spread(g["mono_per_feature_peak"]),
                        mono_trough=spread(g["mono_per_feature_trough"]), loss_peak=spread(g["loss_peak"]),
                        loss_trough=spread(g["loss_trough"]),
                        d_neurons=spread(g["mono_neurons_peak"] - g["mono_neurons_trough"]))
    return out


def count_effects(cells: dict[tuple[str, str, str], dict[str, Any]], optimizer: str | None = None,
                  schedule: str | None = None) -> dict[str, int]:
    """How many cells (of one optimizer / schedule, or all) got each effect, in EFFECTS order, zeros left out."""
    chosen = [j["effect"] for k, j in cells.items()
              if (optimizer is None or k[1] == optimizer) and (schedule is None or k[2] == schedule)]
    return {e: chosen.count(e) for e in EFFECTS if chosen.count(e)}
