"""The models at the peaks and troughs of the paper's periodic learning rate, and whether the difference matters.

The paper's schedule (CosineAnnealingLR with T_max = 512 stepped past T_max, ``optim.paper_cosine``) is periodic:
the model after step t has just been trained at the peak lr when t ≡ 1023 (mod 1024) and near lr 0 when
t ≡ 511. A run of a multiple of 1024 steps therefore ends at a peak, as the paper's did. The learning-rate sweeps keep a
checkpoint every 512 steps (``sweeps``), so both can be read. Here:

* :func:`trajectory`: per instance and checkpoint, the checkpoint's metrics and its loss, computed once per sweep;
* :func:`at_checkpoint`: the sweep's results as if training had stopped at one checkpoint, so that every judge
  applies unchanged (the same rule at the last trough as at the final peak);
* :func:`oscillation`: the last peak against the last trough, per lr, with the rule of :func:`oscillation`.

The loss at a checkpoint is not stored (only the task loss of every 16th batch is): it is the mean of the last
FINAL_LOSS_LOGS (8) logged losses at or before the checkpoint's step, i.e. the batches of its last 128 steps. At the
final step this is exactly the results' ``final_loss``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from toymodels.engine.optim import PAPER_T_MAX
from toymodels.running.runner import FINAL_LOSS_LOGS
from toymodels.results.store import Results
from toymodels.results.tables import mean_std
from toymodels.engine.train import LOG_EVERY
from toymodels.reproduce.em_claims.judges import MIN_MONO_NEURONS, lr_phase

#: the columns of a trajectory besides the checkpoint metrics
TRAJECTORY_KEYS = ["run_id", "step", "loss"]


def trajectory(res: Results) -> pd.DataFrame:
    """Per instance (``run_id``) and checkpoint ``step``: every checkpoint metric (one column each), ``loss`` (the
    module docstring's window mean; NaN when the window is not complete, e.g. after a divergence) and the instance's
    ``lr``, ``seed``, ``N`` and ``status``."""
    m = res.metrics
    ckpt = (m[m["name"] != "loss"].pivot_table(index=["run_id", "step"], columns="name", values="value")
            .reset_index())
    ckpt.columns.name = None
    logs = m[m["name"] == "loss"].pivot_table(index="step", columns="run_id", values="value").sort_index()
    # every logged step, so that a gap (a diverged instance) leaves NaN instead of a shorter window
    logs = logs.reindex(range(0, int(logs.index.max()) + 1, LOG_EVERY)) if len(logs) else logs
    window = logs.rolling(FINAL_LOSS_LOGS, min_periods=FINAL_LOSS_LOGS).mean()
    last_log = (ckpt["step"] // LOG_EVERY) * LOG_EVERY
    ckpt["loss"] = [float(window.at[s, r]) if s in window.index and r in window.columns else float("nan")
                    for s, r in zip(last_log, ckpt["run_id"])]
    keep = [c for c in ("run_id", "lr", "seed", "N", "status") if c in res.instances]
    return ckpt.merge(res.instances[keep], on="run_id", how="left").sort_values(["run_id", "step"],
                                                                                ignore_index=True)


def last_peak_and_trough(res: Results, steps_kept: pd.Series) -> tuple[int, int] | None:
    """(last peak step, last trough step) of a paper_cosine sweep whose checkpoints include both within the final
    period (1024 steps) of training; None otherwise (another schedule, or no trough checkpoint near the end)."""
    inst = res.instances
    if str(inst["schedule"].iloc[0]) != "paper_cosine":
        return None
    steps = sorted(set(int(s) for s in steps_kept))
    peaks = [s for s in steps if lr_phase(s, "paper_cosine") == "peak"]
    troughs = [s for s in steps if lr_phase(s, "paper_cosine") == "trough"]
    if not peaks or not troughs or troughs[-1] < int(inst["steps"].iloc[0]) - 2 * PAPER_T_MAX:
        return None
    return peaks[-1], troughs[-1]


def at_checkpoint(res: Results, traj: pd.DataFrame, step: int) -> Results:
    """``res`` with its instances' metrics (and ``final_loss``) replaced by those of checkpoint ``step`` and a
    ``checkpoint_step`` column; an instance without that checkpoint (it diverged earlier) gets status 'diverged'."""
    at = traj[traj["step"] == step].set_index("run_id")
    inst = res.instances.copy()
    metric_cols = [c for c in at.columns if c in inst.columns and c not in ("lr", "seed", "N", "status", "step")]
    rows = inst["run_id"].map(lambda r: r in at.index)
    for c in metric_cols:
        inst[c] = inst["run_id"].map(at[c])
    inst["final_loss"] = inst["run_id"].map(at["loss"])
    inst.loc[~rows, "status"] = "diverged"
    inst["checkpoint_step"] = step
    return replace(res, instances=inst)


@dataclass(frozen=True)
class PhaseViews:
    """A learning-rate sweep read at its last peak and at its last trough, from one trajectory."""

    label: str
    peak_step: int
    trough_step: int
    trajectory: pd.DataFrame
    peak: Results
    trough: Results


def phase_views(res: Results, label: str) -> PhaseViews | None:
    """The PhaseViews of sweep ``label``, or None when it has no peak and trough checkpoints near its end."""
    traj = trajectory(res)
    steps = last_peak_and_trough(res, traj["step"])
    if steps is None:
        return None
    return PhaseViews(label, steps[0], steps[1], traj, at_checkpoint(res, traj, steps[0]),
                      at_checkpoint(res, traj, steps[1]))


@dataclass(frozen=True)
class Oscillation:
    """The last peak against the last trough of one sweep: a display ``table`` (one row per lr), the lrs where
    the oscillation matters and where it is a trade-off (:func:`oscillation`), and the sweep's top lr."""

    label: str
    peak_step: int
    trough_step: int
    table: pd.DataFrame
    matters_at: tuple[float, ...]
    tradeoff_at: tuple[float, ...]
    top_lr: float

    @property
    def matters_at_top(self) -> bool:
        return self.top_lr in self.matters_at


def oscillation(views: PhaseViews) -> Oscillation:
    """Peak vs trough, per lr, from the two checkpoint views.

    Rule, fixed before the runs. Per lr and seed (instances ok at both checkpoints), d = mono neurons at the last
    peak minus at the last trough. The oscillation *matters* at an lr when |d| >= MIN_MONO_NEURONS in every seed,
    with the same sign in every seed; it is a *trade-off* when the loss difference (peak minus trough) has the
    same sign as d in every seed (more mono neurons come with a higher loss). The finding for the sweep is whether
    it matters at its top lr.
    """
    both = views.trajectory[views.trajectory["step"].isin([views.peak_step, views.trough_step])]
    rows, matters, tradeoff = [], [], []
    for lr, g in both.groupby("lr"):
        p, t = views.peak_step, views.trough_step
        cols = ["mono_neurons", "mono_per_feature", "loss"]
        # seeds with both checkpoints (an instance that diverged in between has none at the peak)
        w = (g.pivot_table(index="run_id", columns="step", values=cols)
             .reindex(columns=pd.MultiIndex.from_product([cols, [p, t]])).dropna())
        d = (w[("mono_neurons", p)] - w[("mono_neurons", t)]).to_numpy()
        dl = (w[("loss", p)] - w[("loss", t)]).to_numpy()
        sign = np.sign(d)
        ok = len(d) > 0 and bool(np.all(np.abs(d) >= MIN_MONO_NEURONS)) and len(set(sign)) == 1
        trade = len(d) > 0 and bool(np.all(np.sign(dl) == sign)) and bool(np.all(sign != 0))
        matters += [float(lr)] if ok else []
        tradeoff += [float(lr)] if trade else []
        col = {c: (w[(c, p)], w[(c, t)]) for c in ("mono_per_feature", "loss")}
        rows.append({"sweep": views.label, "lr": f"{lr:g}",
                     f"mono/feature, peak (step {p})": mean_std(col["mono_per_feature"][0].mean(),
                                                               col["mono_per_feature"][0].std(ddof=1)),
                     f"mono/feature, trough (step {t})": mean_std(col["mono_per_feature"][1].mean(),
                                                                 col["mono_per_feature"][1].std(ddof=1)),
                     "loss, peak": mean_std(col["loss"][0].mean(), col["loss"][0].std(ddof=1)),
                     "loss, trough": mean_std(col["loss"][1].mean(), col["loss"][1].std(ddof=1)),
                     "peak minus trough, mono neurons per seed": ", ".join(f"{x:+.0f}" for x in d),
                     "matters": "yes" if ok else "no",
                     "more mono at a higher loss": "yes" if trade else "no",
                     "seeds": len(d)})
    top = float(both["lr"].max())
    return Oscillation(views.label, views.peak_step, views.trough_step, pd.DataFrame(rows), tuple(matters),
                       tuple(tradeoff), top)


def oscillation_sentence(osc: Oscillation) -> str:
    """One computed sentence: where the oscillation matters, in which direction, and what the loss does."""
    row = osc.table[osc.table["lr"] == f"{osc.top_lr:g}"].iloc[0]
    lrs = ", ".join(f"{x:g}" for x in osc.matters_at) or "no lr"
    return (f"{osc.label} (last trough step {osc.trough_step}, last peak step {osc.peak_step}): the oscillation "
            f"matters at {lrs}; at the top lr {osc.top_lr:g}, mono/feature {row.iloc[2]} at the peak and "
            f"{row.iloc[3]} at the trough (mono neurons, peak minus trough, per seed: "
            f"{row['peak minus trough, mono neurons per seed']}), loss {row['loss, peak']} at the peak and "
            f"{row['loss, trough']} at the trough; "
            + ("in every seed the model with more mono neurons has the higher loss (a trade-off)"
               if osc.top_lr in osc.tradeoff_at else "not in every seed does more mono come with a higher loss"))
