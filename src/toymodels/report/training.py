"""The training figure of a results folder: the family's training curves against log2(step + 1).

Which curves: the family's ``presentation.training_metrics`` that were logged (``loss`` plus metrics recorded at
checkpoints), titled with ``presentation.label``. When the sweep keeps extra checkpoints (``checkpoint_every``) and
some of them sit at peaks and others at troughs of the lr schedule (``optim.lr_phases``), those are marked: the
periodic paper_cosine schedule makes the model oscillate between them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

from toymodels.engine.optim import lr_phases
from toymodels.config.registry import get_family
from toymodels.results.store import Results
from toymodels.results.tables import format_value, setting_fields, setting_label, settings
from toymodels.plotting.common import (
    DIVERGED_COLOUR,
    DIVERGED_STYLE,
    LINESTYLES,
    ColourScale,
    clip_to_axes,
    fit_to_trained,
    sort_key,
    status_split,
    write_figure,
)
from toymodels.plotting.save import new_figure

# Loss is logged every 16 steps; for the training plot it is averaged in bins of 1/8 of a doubling of the step
# count, so the late, dense, noisy part of the curve becomes readable (about 8 points per octave).
LOSS_BINS_PER_OCTAVE = 8
# The task loss every family logs: drawn binned, on a log y axis.
LOSS = "loss"


def metric_curves(results: Results, name: str) -> pd.DataFrame:
    """A logged metric's values: index step, one column per run_id (empty when it was not logged)."""
    m = results.metrics
    m = m[m["name"] == name]
    if m.empty:
        return pd.DataFrame()
    return m.pivot_table(index="step", columns="run_id", values="value", aggfunc="mean").sort_index()


def bin_loss(wide: pd.DataFrame) -> pd.DataFrame:
    """Average each run's loss in bins of 1/LOSS_BINS_PER_OCTAVE in log2(step + 1); index = bin centre in log2."""
    if wide.empty:
        return wide
    x = np.log2(wide.index.to_numpy() + 1.0)
    bins = np.floor(x * LOSS_BINS_PER_OCTAVE)
    binned = wide.groupby(bins).mean()
    # the x of a bin: mean log2(step + 1) of the steps in it
    binned.index = pd.Series(x).groupby(bins).mean().to_numpy()
    return binned


#: markers of checkpoints at a peak and at a trough of the lr schedule
PHASE_MARKERS = {"peak": dict(marker="^", fillstyle="full"), "trough": dict(marker="v", fillstyle="none")}


def phase_steps(results: Results, steps: np.ndarray) -> dict[int, str]:
    """The checkpoints to mark: those past the first ``checkpoint_every`` steps at an lr peak or trough, when the
    sweep has both kinds (else none: then the schedule does not oscillate between them)."""
    o, every = results.sweep.base.optim, results.sweep.base.run.checkpoint_every
    if every <= 0:
        return {}
    extra = [int(t) for t in steps if t >= every - 1 and (int(t) + 1) % every == 0]  # the checkpoint_every ones
    phases = lr_phases(o.schedule, o.steps, extra, o.warmup_frac)
    return phases if len(set(phases.values())) == 2 else {}


def training_figure(results: Results) -> Figure | None:
    """The paper's training plot: the family's training curves against log2(step + 1).

    One line per setting (mean over its non-diverged seeds, band = min-max), coloured by the swept value (further
    swept fields by line style); diverged instances as grey dashed lines ending with a cross at the divergence
    step. The loss is averaged in bins of 1/8 octave of the step count. Curves that were not logged are left out.
    Checkpoints at lr peaks (filled triangle up) and troughs (open triangle down) are marked (``phase_steps``).
    """
    if results.instances.empty:
        return None
    presentation = get_family(results.sweep.base.model.model).presentation
    logged = set(results.metrics["name"])
    panels = [n for n in presentation.training_metrics if n in logged]
    if not panels:
        return None
    fields = setting_fields(results)
    sets = settings(results)
    scale = ColourScale.of(results)
    styles: dict[tuple, Any] = {}
    other = fields[1:]
    if other:
        subs = sorted({tuple(k[1:]) for k, _ in sets}, key=lambda t: [sort_key(v) for v in t])
        styles = {sub: LINESTYLES[i % len(LINESTYLES)] for i, sub in enumerate(subs)}

    fig = new_figure(5.0 * len(panels) + 1.2, 4.3)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    any_div, multi_seed, marked = False, False, False
    for ax, name in zip(axes, panels):
        label = presentation.label(name)
        wide = metric_curves(results, name)
        if name == LOSS:
            wide = bin_loss(wide)
            x_of = wide.index.to_numpy()
        else:
            x_of = np.log2(wide.index.to_numpy() + 1.0)
        ok_vals = []
        for key, rows in sets:
            ok, _ = status_split(rows)
            colour = scale.colour(key[0]) if key else scale.colour(None)
            cols = [r for r in ok["run_id"] if r in wide.columns]
            if cols:
                block = wide[cols].to_numpy()
                with np.errstate(all="ignore"):
                    mean = np.nanmean(block, axis=1)
                keep = np.isfinite(mean)
                ax.plot(x_of[keep], mean[keep], color=colour, linestyle=styles.get(tuple(key[1:]), "-"),
                        linewidth=1.8)
                phases = {} if name == LOSS else phase_steps(results, wide.index.to_numpy())
                for phase, style in PHASE_MARKERS.items():
                    at = np.isin(wide.index.to_numpy(), [t for t, p in phases.items() if p == phase]) & keep
                    if at.any():
                        marked = True
                        ax.plot(x_of[at], mean[at], linestyle="none", color=colour, markersize=4, **style)
                if len(cols) > 1:
                    multi_seed = True
                    ax.fill_between(x_of[keep], np.nanmin(block, 1)[keep], np.nanmax(block, 1)[keep],
                                    color=colour, alpha=0.2, linewidth=0)
                ok_vals.append(block.ravel())
        fit_to_trained(ax, ok_vals, log=name == LOSS)
        if name == LOSS:
            ax.set_yscale("log")
            plain_log_ticks(ax)
        # diverged instances after the limits are set, so they cannot stretch the axes
        for _, rows in sets:
            for _, r in status_split(rows)[1].iterrows():
                any_div = True
                _draw_diverged(ax, wide, x_of, r, binned=name == LOSS)
        ax.set_xlabel("log2(training step + 1)")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        values = np.concatenate(ok_vals) if ok_vals else np.array([])
        if name != LOSS and (values[np.isfinite(values)] < 0).any():
            ax.axhline(0, color="0.3", linewidth=0.8)  # a signed metric (mean bias): its sign matters

    handles = []
    if multi_seed:
        handles.append(Patch(facecolor="0.6", alpha=0.35, label="mean of seeds; band: min-max"))
    if marked:
        handles += [Line2D([], [], color="0.2", linestyle="none", label=f"checkpoint at lr {phase}", **style)
                    for phase, style in PHASE_MARKERS.items()]
    for sub, ls in styles.items():
        handles.append(Line2D([], [], color="0.2", linestyle=ls, label=setting_label(other, sub)))
    if any_div:
        handles.append(Line2D([], [], marker="x", markeredgewidth=2, label="diverged (cross: divergence step)",
                              **DIVERGED_STYLE))
    if handles:
        axes[0].legend(handles=handles, loc="best", fontsize=8)
    scale.colourbar(fig, list(axes))
    fig.suptitle(f"{results.sweep.name}: training" + (f" (colour: {scale.field})" if scale.field else ""))
    return fig


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks of a log axis over [lo, hi]: 1-2-5 of each decade (1 alone beyond two decades; 1..9 when fewer
    than two 1-2-5 values fall inside)."""
    if not (0 < lo < hi and math.isfinite(hi)):
        return []
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for subs in ((1, 2, 5) if last - first <= 2 else (1,), tuple(range(1, 10))):
        ticks = [m * 10.0**e for e in range(first, last + 1) for m in subs if lo <= m * 10.0**e <= hi]
        if len(ticks) >= 2:
            return ticks
    return ticks


def plain_log_ticks(ax: Any) -> None:
    """The log y axis labelled with plain numbers (0.05, 0.1, 0.2) instead of 5x10^-2 and unlabelled minor ticks."""
    ticks = log_ticks(*ax.get_ylim())
    if len(ticks) >= 2:  # else matplotlib's own ticks (a range within one step of 1..9)
        ax.set_yticks(ticks, [format_value(t) for t in ticks])
        ax.yaxis.set_minor_formatter(NullFormatter())


def _draw_diverged(ax: Any, wide: pd.DataFrame, x_of: np.ndarray, row: pd.Series, binned: bool) -> None:
    """A diverged instance's curve up to its divergence step (grey dashed) and a cross at that step."""
    at = int(row["diverged_at"])
    if row["run_id"] not in wide.columns or at < 0:  # at < 0: failed, not diverged; nothing to mark
        return
    series = wide[row["run_id"]]
    steps = (2.0 ** series.index.to_numpy() - 1) if binned else series.index.to_numpy()
    keep = (steps <= at) & np.isfinite(series.to_numpy())
    xs, ys = x_of[keep], series.to_numpy()[keep]
    if xs.size:  # the y limits are already fixed: the line may leave the panel, it is not rescaled
        ax.plot(xs, ys, **DIVERGED_STYLE)
    # the cross stays inside the panel (on its edge when the value is off-scale)
    ax.plot([math.log2(at + 1)], [clip_to_axes(float(ys[-1]) if ys.size else float("nan"), ax)], marker="x",
            color=DIVERGED_COLOUR, markersize=8, markeredgewidth=2, linestyle="none", clip_on=False)


def training_plot(results: Results, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/training.png (see ``training_figure``)."""
    return write_figure(results, training_figure(results), "training", out_dir)
