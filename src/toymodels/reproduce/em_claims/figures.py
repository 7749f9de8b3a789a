"""The figures of the EM claims: one small PNG per claim (docs/figures/em_<claim>.png), means ± sd over seeds.

Drawn with ``toymodels.plotting.save`` (pyplot-free, written atomically); the mechanism figure of row 6 is in
``mechanism``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from toymodels.plotting.save import new_figure, save_figure
from toymodels.engine.optim import PAPER_T_MAX
from toymodels.results.store import Results
from toymodels.reproduce.em_claims.judges import aggregate, lr_phase
from toymodels.reproduce.em_claims.oscillation import PhaseViews

#: PNG resolution of the EM claims' figures (small files for the docs)
EM_FIGURE_DPI = 80


def figure_row(ncols: int, width: float = 3.1, height: float = 2.5) -> tuple[Figure, list[Axes]]:
    """A figure of ``ncols`` panels side by side, each ``width`` x ``height`` inches."""
    fig = new_figure(width * ncols, height)
    return fig, list(fig.subplots(1, ncols, squeeze=False)[0])


def _errbar(ax, x, a: pd.DataFrame, col: str, label: str | None = None, **kw) -> None:
    ax.errorbar(x, a[col], yerr=a[col + "_std"], marker="o", ms=3, capsize=2, label=label, **kw)


def _mono_curves(ax, res: Results, by: str) -> None:
    """Mean mono/feature over seeds vs training step, one line per value of ``by``; checkpoints at a trough of the
    periodic lr are drawn as open circles (the others, at its peaks or powers of two, filled)."""
    m = res.metrics[res.metrics["name"] == "mono_per_feature"]
    inst = res.instances.set_index("run_id")
    schedule = str(res.instances["schedule"].iloc[0])
    m = m.assign(v=inst.loc[m["run_id"], by].to_numpy())
    for v, g in m.groupby("v"):
        c = g.groupby("step")["value"].mean()
        line, = ax.plot(np.log2(c.index + 1), c.to_numpy(), marker=".", ms=3, label=f"{by} {v:g}")
        trough = [s for s in c.index if lr_phase(int(s), schedule) == "trough"]
        ax.plot(np.log2(np.array(trough) + 1), c.loc[trough].to_numpy(), "o", ms=3, mfc="none",
                color=line.get_color())
    ax.set_xlabel("log2 training step (open: lr trough)")
    ax.set_ylabel("mono / feature")
    ax.legend(fontsize=6)


def figure_oscillation(views: PhaseViews, path: Path) -> Path:
    """The oscillation finding: mono/feature and the loss at every checkpoint from step 1023 on, against the step
    (linear), mean over seeds, one line per lr; filled markers at the lr's peaks, open ones at its troughs."""
    fig, ax = figure_row(2, width=4.2)
    traj = views.trajectory[views.trajectory["step"] >= 2 * PAPER_T_MAX - 1]  # from the first peak on
    for lr, g in traj.groupby("lr"):
        mean = g.groupby("step")[["mono_per_feature", "loss"]].mean()
        trough = [s for s in mean.index if lr_phase(int(s), "paper_cosine") == "trough"]
        peak = [s for s in mean.index if lr_phase(int(s), "paper_cosine") == "peak"]
        for a_, col in zip(ax, ["mono_per_feature", "loss"]):
            line, = a_.plot(mean.index, mean[col], lw=0.8, label=f"lr {lr:g}")
            a_.plot(peak, mean.loc[peak, col], "o", ms=3, color=line.get_color())
            a_.plot(trough, mean.loc[trough, col], "o", ms=3, mfc="none", color=line.get_color())
    for a_, yl in zip(ax, ["mono / feature", "loss (mean of the last 8 logs)"]):
        a_.set_xlabel("training step (filled: lr peak, open: lr trough)")
        a_.set_ylabel(yl)
    ax[0].set_title(views.label, fontsize=8)
    ax[0].legend(fontsize=6)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)


def figure_lr(res: Results, path: Path, title: str, extra: dict[str, Results] | None = None,
              trough: Results | None = None) -> Path:
    """Rows 1-3: mono/feature and loss against lr at the final step (one line per sweep: ``res`` and ``extra``;
    dashed: ``res`` at its last lr trough, an ``oscillation.at_checkpoint`` view, when given), and mono/feature
    over training per lr of ``res``."""
    fig, ax = figure_row(3)
    series = {title: res, **(extra or {})}
    for label, r in series.items():
        a = aggregate(r, ["lr"])
        _errbar(ax[0], a["lr"], a, "mono_per_feature", label)
        _errbar(ax[1], a["lr"], a, "final_loss", label)
    if trough is not None:
        a = aggregate(trough, ["lr"])
        label = f"{title} at step {int(trough.instances['checkpoint_step'].iloc[0])} (lr trough)"
        _errbar(ax[0], a["lr"], a, "mono_per_feature", label, ls="--", color="grey")
        _errbar(ax[1], a["lr"], a, "final_loss", label, ls="--", color="grey")
    for a_ in ax[:2]:
        a_.set_xscale("log")
        a_.set_xlabel("learning rate")
    ax[0].set_ylabel("mono / feature (final step)")
    ax[1].set_ylabel("loss (final step)")
    ax[0].legend(fontsize=6)
    _mono_curves(ax[2], res, "lr")
    ax[2].set_title(title, fontsize=8)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)


def figure_bias(results: dict[str, Results], path: Path) -> Path:
    """Row 4: mono/feature, dead neurons and final loss against the initial bias offset, one line per eps."""
    fig, ax = figure_row(3)
    for label, res in results.items():
        a = aggregate(res, ["bias_offset"])
        eps = float(res.instances["eps"].iloc[0])
        lab = f"eps 1/{round(1 / eps)}"
        _errbar(ax[0], a["bias_offset"], a, "mono_per_feature", lab)
        _errbar(ax[1], a["bias_offset"], a, "dead_neurons", lab)
        _errbar(ax[2], a["bias_offset"], a, "final_loss", lab)
    for a_, yl in zip(ax, ["mono / feature", "dead neurons", "final loss"]):
        a_.set_xlabel("initial bias offset")
        a_.set_ylabel(yl)
    ax[0].legend(fontsize=6)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)


def figure_k(res: Results, path: Path) -> Path:
    """Row 5: mono/feature, mono/neuron and final loss against the number of neurons k."""
    fig, ax = figure_row(3)
    a = aggregate(res, ["k"])
    N = int(res.instances["N"].iloc[0])
    for a_, col in zip(ax, ["mono_per_feature", "mono_per_neuron", "final_loss"]):
        _errbar(a_, a["k"], a, col)
        a_.axvline(N, color="grey", ls=":", lw=1)
        a_.set_xscale("log", base=2)
        a_.set_xlabel("neurons k (dotted: k = N)")
        a_.set_ylabel(col.replace("_", " "))
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)


def figure_l1(a_res: Results, path: Path, reference: pd.DataFrame | None = None) -> Path:
    """Row 7: mono/feature and final loss against the L1 penalty, with the l1 = 0 reference row
    (``grid_judges.l1_reference``) as a dotted line when given."""
    fig, ax = figure_row(2)
    a = aggregate(a_res, ["l1"])
    for a_, col in zip(ax, ["mono_per_feature", "final_loss"]):
        _errbar(a_, a["l1"], a, col)
        a_.set_xscale("log")
        a_.set_xlabel("L1 penalty")
        a_.set_ylabel(col.replace("_", " "))
        if reference is not None:
            a_.axhline(float(reference[col].iloc[0]), color="grey", ls=":", lw=1, label="l1 = 0 (LR3)")
            a_.legend(fontsize=6)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)
