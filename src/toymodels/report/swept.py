"""Final values against the swept field: the family's ``presentation.swept_metrics``, one panel each, with the
family's own extra lines (``presentation.swept_overlays``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from toymodels.config.registry import get_family
from toymodels.results.store import Results
from toymodels.results.tables import format_value, is_number, py_value, setting_fields, setting_label, settings
from toymodels.plotting.common import DIVERGED_COLOUR, SINGLE_COLOUR, is_log_spaced, sort_key, status_split, write_figure
from toymodels.plotting.save import new_figure
from toymodels.plotting.ticks import readable_xticks


def swept_figure(results: Results) -> Figure | None:
    """The family's final metrics against the first swept field (one line per value of the other swept fields):
    mean over non-diverged seeds, error bars min-max, dots = single seeds. Diverged instances are grey crosses on
    the bottom edge of each panel. Each of the family's ``presentation.swept_overlays`` whose columns the instance
    table has adds a dotted line to its panel (EM's: (mono - false_mono) / N, neurons still monosemantic under the
    multi-feature probe)."""
    inst = results.instances
    if inst.empty:
        return None
    presentation = get_family(results.sweep.base.model.model).presentation
    panels = [n for n in presentation.swept_metrics if n in inst.columns]
    if not panels:
        return None
    overlays = [o for o in presentation.swept_overlays if set(o.columns) <= set(inst.columns)]
    fields = setting_fields(results)
    xfield = fields[0] if fields else None
    xvals = sorted({py_value(v) for v in inst[xfield]}, key=sort_key) if xfield else ["all"]
    numeric_x = bool(xfield) and all(is_number(v) for v in xvals)
    log_x = numeric_x and is_log_spaced(xvals)

    def xpos(v: Any) -> float:
        return float(py_value(v)) if numeric_x else float(xvals.index(py_value(v)) if xfield else 0)

    sets = settings(results)
    sub_keys = sorted({tuple(k[1:]) for k, _ in sets}, key=lambda t: [sort_key(v) for v in t])
    sub_colours = {s: colormaps["tab10"](i % 10) for i, s in enumerate(sub_keys)}
    if len(sub_keys) == 1:
        sub_colours = {sub_keys[0]: SINGLE_COLOUR}

    multi_seed = any((rows["status"] == "ok").sum() > 1 for _, rows in sets)
    fig = new_figure(4.6 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, name in zip(axes, panels):
        label = presentation.label(name)
        if log_x:
            ax.set_xscale("log")
        for sub in sub_keys:
            rows_of = [(xpos(key[0]) if key else 0.0, status_split(rows)[0]) for key, rows in sets
                       if tuple(key[1:]) == sub]
            xs, means, lo, hi = [], [], [], []
            for x, ok in rows_of:
                vals = ok[name].to_numpy(dtype=float)
                vals = vals[np.isfinite(vals)]
                if vals.size:
                    xs.append(x)
                    means.append(vals.mean())
                    lo.append(vals.mean() - vals.min())
                    hi.append(vals.max() - vals.mean())
                    if vals.size > 1:
                        ax.scatter([x] * vals.size, vals, s=10, color=sub_colours[sub], alpha=0.45, zorder=3)
            if xs:
                lab = setting_label(fields[1:], sub) if fields[1:] else (
                    "mean over seeds (bars: min-max)" if multi_seed else "final value")
                ax.errorbar(xs, means, yerr=[lo, hi], color=sub_colours[sub], marker="o", capsize=3,
                            linewidth=1.6, label=lab)
            for overlay in (o for o in overlays if o.panel == name):
                pts = []
                for x, ok in rows_of:
                    v = np.asarray(overlay.value(ok), dtype=float)
                    if v.size:
                        pts.append((x, float(np.mean(v))))
                if pts:
                    ax.plot(*zip(*pts), color=sub_colours[sub], linestyle=":", marker=".",
                            label=overlay.label if sub == sub_keys[0] else None)
        # diverged: crosses on the bottom edge (x in data, y in axes coordinates)
        trans = blended_transform_factory(ax.transData, ax.transAxes)
        div = inst[inst["status"] != "ok"]
        if len(div):
            xs = [xpos(v) for v in div[xfield]] if xfield else [0.0] * len(div)
            ax.scatter(xs, [0.03] * len(xs), transform=trans, marker="x", s=60, linewidths=2,
                       color=DIVERGED_COLOUR, label=f"diverged ({len(div)})", zorder=4, clip_on=False)
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.set_xlabel((xfield + (" (log scale)" if log_x else "")) if xfield else "")
        if xfield and (not numeric_x or len(xvals) <= 12):
            # every value gets a tick; labels that would overlap (0.005, 0.007, 0.01 on a log axis) are dropped, and
            # names (which cannot be dropped) are turned instead when they do not fit side by side
            labels = [format_value(v) for v in xvals]
            turn = not numeric_x and sum(map(len, labels)) * 6 > 4.6 * 72 * 0.85
            readable_xticks(ax, [xpos(v) for v in xvals], labels, font_size=9, rotation=30 if turn else 0)
            if not numeric_x:
                ax.set_xticklabels(labels, rotation=30 if turn else 0, ha="right" if turn else "center", fontsize=9)
        elif not xfield:
            ax.set_xticks([0.0])
            ax.set_xticklabels(["all instances"])
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    extra = {o.label for o in overlays}
    order = sorted(range(len(labels)), key=lambda i: (labels[i] in extra, "diverged" in labels[i]))
    axes[0].legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7, loc="best")
    for ax in axes[1:]:  # an overlay on another panel is named on that panel
        own = [(h, lab) for h, lab in zip(*ax.get_legend_handles_labels()) if lab in extra]
        if own:
            ax.legend(*zip(*own), fontsize=7, loc="best")
    fig.suptitle(f"{results.sweep.name}: final values" + (f" vs {xfield}" if xfield else ""))
    return fig


def swept_plot(results: Results, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/swept.png (see ``swept_figure``)."""
    return write_figure(results, swept_figure(results), "swept", out_dir)
