"""The figures of the EM claims: one small PNG per claim (docs/figures/em_<claim>.png), means ± sd over seeds.

Drawn with ``toymodels.figures.save`` (pyplot-free, written atomically); the mechanism figure of row 6 is in
``em_mechanism``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..figures.save import new_figure, save_figure
from ..store import Results
from .em_judges import aggregate

#: PNG resolution of the EM claims' figures (small files for the docs)
EM_FIGURE_DPI = 80


def figure_row(ncols: int, width: float = 3.1, height: float = 2.5) -> tuple[Figure, list[Axes]]:
    """A figure of ``ncols`` panels side by side, each ``width`` x ``height`` inches."""
    fig = new_figure(width * ncols, height)
    return fig, list(fig.subplots(1, ncols, squeeze=False)[0])


def _errbar(ax, x, a: pd.DataFrame, col: str, label: str | None = None, **kw) -> None:
    ax.errorbar(x, a[col], yerr=a[col + "_std"], marker="o", ms=3, capsize=2, label=label, **kw)


def _mono_curves(ax, res: Results, by: str) -> None:
    """Mean mono/feature over seeds vs training step, one line per value of ``by``."""
    m = res.metrics[res.metrics["name"] == "mono_per_feature"]
    inst = res.instances.set_index("run_id")
    m = m.assign(v=inst.loc[m["run_id"], by].to_numpy())
    for v, g in m.groupby("v"):
        c = g.groupby("step")["value"].mean()
        ax.plot(np.log2(c.index + 1), c.to_numpy(), marker=".", ms=3, label=f"{by} {v:g}")
    ax.set_xlabel("log2 training step")
    ax.set_ylabel("mono / feature")
    ax.legend(fontsize=6)


def figure_lr(res: Results, path: Path, title: str, extra: dict[str, Results] | None = None) -> Path:
    """Rows 1-3: final mono/feature and loss against lr (one line per sweep: ``res`` and ``extra``), and
    mono/feature over training per lr of ``res``."""
    fig, ax = figure_row(3)
    series = {title: res, **(extra or {})}
    for label, r in series.items():
        a = aggregate(r, ["lr"])
        _errbar(ax[0], a["lr"], a, "mono_per_feature", label)
        _errbar(ax[1], a["lr"], a, "final_loss", label)
    for a_ in ax[:2]:
        a_.set_xscale("log")
        a_.set_xlabel("learning rate")
    ax[0].set_ylabel("mono / feature (final)")
    ax[1].set_ylabel("final loss")
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


def figure_l1(a_res: Results, path: Path, lr3: Results | None = None) -> Path:
    """Row 7: mono/feature and final loss against the L1 penalty, with LR3 at the same lr and steps as the l1 = 0
    reference when given."""
    fig, ax = figure_row(2)
    a = aggregate(a_res, ["l1"])
    for a_, col in zip(ax, ["mono_per_feature", "final_loss"]):
        _errbar(a_, a["l1"], a, col)
        a_.set_xscale("log")
        a_.set_xlabel("L1 penalty")
        a_.set_ylabel(col.replace("_", " "))
        if lr3 is not None and lr3.sweep.base.optim.steps == a_res.sweep.base.optim.steps:
            ref = aggregate(lr3, ["lr"])
            ref = ref[np.isclose(ref["lr"], float(a_res.instances["lr"].iloc[0]))]
            if len(ref):
                a_.axhline(float(ref[col].iloc[0]), color="grey", ls=":", lw=1, label="l1 = 0 (LR3)")
                a_.legend(fontsize=6)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)
