"""The grokking family's figures (docs/papers.md §5.3-5.4): the loss and accuracy curves on a log step axis with the
three phases shaded, the embedding's Fourier spectrum, restricted and excluded loss over training (the paper's
Figure 7, with the final model's key frequencies) and the weight decay x training fraction phase diagram.

Builders return a matplotlib ``Figure`` (None when there is nothing to draw); savers write
``<out_dir>/<name>.png`` and return the paths. Imported only when a figure is drawn: training never needs matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from toymodels.families.base import FigureSpec
from toymodels.families.grokking import analysis
from toymodels.plotting.common import instance_panels, instance_title, write_figure
from toymodels.plotting.save import new_figure
from toymodels.results.store import Results

PHASE_COLOURS = {"memorisation": "tab:orange", "circuit formation": "tab:purple", "cleanup": "tab:green"}


def shade_phases(ax: Any, bounds: dict[str, int | None], last: int) -> None:
    """Shade memorisation (start to train accuracy 99%), circuit formation (until the test loss fell to half its
    peak) and cleanup (to test accuracy 99%) on a step axis (``analysis.phases``, steps + 1; where a boundary was
    never reached, the phase runs to the end or is not drawn); the labels are staggered so that narrow phases stay
    readable."""
    edges = [0, bounds["memorisation_end"], bounds["cleanup_start"], bounds["cleanup_end"]]
    for j, ((name, colour), lo, hi) in enumerate(zip(PHASE_COLOURS.items(), edges[:-1], edges[1:])):
        if lo is None:
            break
        x0, x1 = lo + 1, (hi + 1) if hi is not None else last
        ax.axvspan(x0, x1, color=colour, alpha=0.1, linewidth=0)
        ax.text(np.sqrt(x0 * max(x1, x0)), 0.98 - 0.07 * j, name, transform=ax.get_xaxis_transform(), ha="center",
                va="top", fontsize=7, color=colour)


def curves_figure(results: Results, run_ids: Sequence[str] | None = None) -> Figure | None:
    """Train loss (every 16 steps), test loss and both accuracies of chosen instances against log(step + 1), the
    phases shaded."""
    panels = instance_panels(results, run_ids, height=4.2)
    if panels is None:
        return None
    fig, axes, run_ids = panels
    for ax, rid in zip(axes, run_ids):
        loss = analysis.curve(results, rid, "loss")
        tr, te = analysis.curve(results, rid, "train_loss"), analysis.curve(results, rid, "test_loss")
        ax.plot(loss.index + 1, loss.to_numpy(), color="tab:blue", linewidth=0.8, label="train loss (every 16 steps)")
        ax.plot(te.index + 1, te.to_numpy(), color="tab:red", marker=".", markersize=3, label="test loss")
        ax.plot(tr.index + 1, tr.to_numpy(), color="tab:blue", linestyle="none", marker=".", markersize=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("step + 1 (log)")
        ax.set_ylabel("cross entropy (log)")
        acc = ax.twinx()
        for name, colour in (("train_acc", "tab:blue"), ("test_acc", "tab:red")):
            c = analysis.curve(results, rid, name)
            acc.plot(c.index + 1, c.to_numpy(), color=colour, linestyle=":", linewidth=1.2,
                     label=name.replace("_acc", " accuracy"))
        acc.set_ylim(-0.02, 1.02)
        acc.set_ylabel("accuracy (dotted)")
        last = int(max(loss.index.max(), te.index.max())) + 1
        shade_phases(ax, analysis.phases(results, rid), last)
        title, diverged = instance_title(results, rid)
        ax.set_title(title, fontsize=9, color="tab:red" if diverged else "black")
        lines = ax.get_legend_handles_labels()[0] + acc.get_legend_handles_labels()[0]
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="lower left")
    fig.suptitle(f"{results.sweep.name}: loss, accuracy, phases", fontsize=10)
    return fig


def spectrum_figure(results: Results, run_ids: Sequence[str] | None = None) -> Figure | None:
    """The norm of the embedding's Fourier components per frequency, at the first and the final checkpoint; the
    final model's key frequencies labelled."""
    panels = instance_panels(results, run_ids, height=3.8)
    if panels is None:
        return None
    fig, axes, run_ids = panels
    for ax, rid in zip(axes, run_ids):
        steps = results.checkpoint_steps(rid)
        first, final = analysis.spectrum(results, rid, steps[0]), analysis.spectrum(results, rid, steps[-1])
        ax.bar(first["frequency"], first["norm"], color="0.75", width=1.0, label=f"step {steps[0]}")
        colours = np.where(final["key"], "tab:red", "tab:blue")
        ax.bar(final["frequency"], final["norm"], color=colours, width=0.6, label=f"step {steps[-1]} (red: key)")
        for _, row in final[final["key"]].iterrows():
            ax.annotate(str(int(row["frequency"])), (row["frequency"], row["norm"]), ha="center", va="bottom",
                        fontsize=7)
        ax.set_xlabel("frequency k (w = 2 pi k / P)")
        ax.set_ylabel("norm of W_E's Fourier components")
        title, diverged = instance_title(results, rid)
        ax.set_title(title, fontsize=9, color="tab:red" if diverged else "black")
        ax.legend(fontsize=7)
    fig.suptitle(f"{results.sweep.name}: W_E in the Fourier basis", fontsize=10)
    return fig


def progress_figure(results: Results, run_ids: Sequence[str] | None = None) -> Figure | None:
    """Restricted and excluded loss over training with the final model's key frequencies, with train and test
    loss (top); the Gini coefficients and the sum of squared weights (bottom); log step axis, phases shaded."""
    run_ids = list(run_ids) if run_ids is not None else analysis_instances(results)
    if not run_ids:
        return None
    fig = new_figure(4.6 * len(run_ids), 6.4)
    axes = fig.subplots(2, len(run_ids), squeeze=False)
    for j, rid in enumerate(run_ids):
        pm = analysis.progress_measures(results, rid)
        x = pm["step"].to_numpy() + 1
        top, bottom = axes[0, j], axes[1, j]
        for name, colour in (("train_loss", "tab:blue"), ("test_loss", "tab:red"),
                             ("restricted_loss", "tab:green"), ("excluded_loss", "tab:purple")):
            top.plot(x, pm[name].to_numpy(), color=colour, marker=".", markersize=3, label=name.replace("_", " "))
        top.set_xscale("log")
        top.set_yscale("log")
        top.set_ylabel("cross entropy (log)")
        keys = pm.attrs["key_frequencies"]
        title, diverged = instance_title(results, rid)
        top.set_title(f"{title}\nkey frequencies of the final model: {keys}", fontsize=9,
                      color="tab:red" if diverged else "black")
        top.legend(fontsize=7, loc="lower left")
        for name, colour in (("embed_gini", "tab:orange"), ("logit_gini", "tab:brown")):
            bottom.plot(x, pm[name].to_numpy(), color=colour, label=name.replace("_", " "))
        bottom.set_ylim(0, 1)
        bottom.set_ylabel("Gini of Fourier norms")
        bottom.set_xscale("log")
        bottom.set_xlabel("step + 1 (log)")
        norm = bottom.twinx()
        norm.plot(x, pm["weight_norm"].to_numpy(), color="black", linestyle="--", label="sum of squared weights")
        norm.set_ylabel("sum of squared weights (dashed)")
        lines = bottom.get_legend_handles_labels()[0] + norm.get_legend_handles_labels()[0]
        bottom.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="center left")
        for ax in (top, bottom):
            shade_phases(ax, analysis.phases(results, rid), int(x[-1]))
    fig.suptitle(f"{results.sweep.name}: progress measures", fontsize=10)
    return fig


def analysis_instances(results: Results, n: int = 2) -> list[str]:
    """The instances the progress figure reads every checkpoint of: the first ``n`` that did not diverge."""
    ok = results.instances[results.instances["status"] == "ok"]
    return [str(r) for r in ok["run_id"].iloc[:n]]


def phase_figure(results: Results) -> Figure | None:
    """Final test accuracy (colour) and the median step at which it passed 99% (numbers) per weight decay and
    training fraction; None unless both vary in the sweep."""
    inst = results.instances
    if inst.empty or any(inst[f].nunique() < 2 for f in ("train_frac", "weight_decay")):
        return None
    table = analysis.phase_diagram(results)
    xs, ys = sorted(table["train_frac"].unique()), sorted(table["weight_decay"].unique())
    acc = np.full((len(ys), len(xs)), np.nan)
    for _, row in table.iterrows():
        acc[ys.index(row["weight_decay"]), xs.index(row["train_frac"])] = row["test_acc"]
    fig = new_figure(2.0 + 0.9 * len(xs), 1.2 + 0.7 * len(ys))
    ax = fig.subplots()
    im = ax.imshow(acc, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for _, row in table.iterrows():
        step = row["grok_step"]
        text = f"{row['grokked']:.0%}" + (f"\n@{int(step)}" if np.isfinite(step) else "")
        ax.text(xs.index(row["train_frac"]), ys.index(row["weight_decay"]), text, ha="center", va="center",
                fontsize=7, color="white" if row["test_acc"] < 0.6 else "black")
    ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
    ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
    ax.set_xlabel("training fraction")
    ax.set_ylabel("weight decay")
    fig.colorbar(im, ax=ax).set_label("final test accuracy (mean over seeds)")
    ax.set_title(f"{results.sweep.name}: share grokked (@ median step of test acc > 99%)", fontsize=9)
    return fig


def curves_plot(results: Results, run_ids: Sequence[str] | None = None, out_dir: str | Path | None = None
                ) -> list[Path]:
    return write_figure(results, curves_figure(results, run_ids), "grokking_curves", out_dir)


def spectrum_plot(results: Results, run_ids: Sequence[str] | None = None, out_dir: str | Path | None = None
                  ) -> list[Path]:
    return write_figure(results, spectrum_figure(results, run_ids), "grokking_spectrum", out_dir)


def progress_plot(results: Results, run_ids: Sequence[str] | None = None, out_dir: str | Path | None = None
                  ) -> list[Path]:
    return write_figure(results, progress_figure(results, run_ids), "grokking_progress", out_dir)


def phase_plot(results: Results, out_dir: str | Path | None = None) -> list[Path]:
    return write_figure(results, phase_figure(results), "grokking_phase", out_dir)


FIGURES = [
    FigureSpec("grokking_curves", curves_plot,
               "Train loss (line), test loss (dots) and accuracies (dotted) vs log(step + 1); shaded: memorisation "
               "(until train accuracy 99%), circuit formation (until the test loss fell to half its peak), cleanup "
               "(until test accuracy 99%). Look for train accuracy saturating long before test accuracy (grokking)."),
    FigureSpec("grokking_spectrum", spectrum_plot,
               "Norm of the embedding's Fourier components per frequency at the first (grey) and final checkpoint "
               "(red: key frequencies, >= 1/4 of the largest). A grokked model concentrates on a few frequencies."),
    FigureSpec("grokking_progress", progress_plot,
               "The paper's progress measures with the final model's key frequencies (title): restricted loss (only "
               "those (a+b) waves and the constant, every pair) falls before test loss; excluded loss (those waves "
               "removed, training pairs) rises during circuit formation; the Gini coefficients of W_E's and W_L's "
               "Fourier norms rise and the sum of squared weights falls during cleanup."),
    FigureSpec("grokking_phase", phase_plot,
               "Final test accuracy per weight decay and training fraction (text: share of seeds grokked, median "
               "step of test accuracy > 99%). Drawn when both vary."),
]
