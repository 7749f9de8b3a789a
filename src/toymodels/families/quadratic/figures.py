"""The quadratic family's own figure: its capacity view (the report adds it after the generic training and swept
figures): each feature's capacity C_i against its importance v_i for the lowest-loss seed of each setting, beside
the optimal allocation of the capacity theory (docs/papers.md §3), and W^T W of those instances.

Builders return a matplotlib ``Figure`` (None when there is nothing to draw); savers write ``<out_dir>/<name>.png``.
Imported only when a figure is drawn (``QuadraticFamily.figures``): training never needs matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from toymodels.families.base import FigureSpec
from toymodels.families.common import lowest_loss_per_setting
from toymodels.families.quadratic.capacity import capacity_view
from toymodels.plotting.common import ColourScale, write_figure
from toymodels.plotting.save import new_figure
from toymodels.results.store import Results
from toymodels.results.tables import setting_fields, setting_label

#: settings drawn at most (evenly spread over the sweep)
MAX_SETTINGS = 8


def capacity_figure(results: Results, run_ids: Sequence[str] | None = None) -> Figure | None:
    """Left: C_i against v_i per setting (its lowest expected-loss seed; filled markers, "above optimum" in the
    legend when its loss is > 1% above the optimum) with the theory's optimal allocation (dashed). Right: W^T W of
    each of those instances, side by side."""
    fields = setting_fields(results)
    picks = ([(tuple(results.row(r)[f] for f in fields), r) for r in run_ids] if run_ids is not None
             else lowest_loss_per_setting(results, by="expected_loss", limit=MAX_SETTINGS))
    if not picks:
        return None
    views = [capacity_view(results, rid) for _, rid in picks]
    scale = ColourScale.of(results)
    fig = new_figure(12, 4.4)
    ax, ax_g = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    n = len(picks)
    for i, ((key, rid), v) in enumerate(zip(picks, views)):
        colour = scale.colour(key[0]) if key else "C0"
        dx = 0.008 * (i - (n - 1) / 2)  # settings sitting on the same 0 / 1 values stay visible
        label = (setting_label(fields, key) + f": ΣC={v['capacity'].sum():.2f}"
                 + (" (above optimum)" if v["off_optimum"] else ""))
        ax.plot(v["importance"] + dx, v["capacity"], "o", color=colour, ms=6, label=label)
        order = np.argsort(v["importance"])
        ax.plot(v["importance"][order], v["theory"][order], "--", color=colour, lw=1.1, alpha=0.8)
    ax.set_xlabel("importance $v_i$")
    ax.set_ylabel("capacity $C_i$")
    ax.set_ylim(-0.05, 1.1)
    ax.axhline(1, color="0.85", lw=0.6, zorder=0)
    ax.axhline(0, color="0.85", lw=0.6, zorder=0)
    ax.plot([], [], "--", color="0.4", label="optimal allocation (theory)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    ax.set_title("capacity against importance (lowest-loss seed per setting)", fontsize=9)
    # W^T W of each instance, side by side on one image (features x features blocks, separated by a gap)
    size = views[0]["gram"].shape[0]
    vmax = max(float(np.abs(v["gram"]).max()) for v in views) or 1.0
    strip = np.full((size, n * (size + 1) - 1), np.nan)
    for i, v in enumerate(views):
        strip[:, i * (size + 1): i * (size + 1) + size] = v["gram"]
    image = ax_g.imshow(strip, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax_g.set_xticks([i * (size + 1) + (size - 1) / 2 for i in range(n)])
    ax_g.set_xticklabels([setting_label(fields, key) for key, _ in picks], rotation=30, ha="right", fontsize=7)
    ax_g.set_yticks([])
    ax_g.set_title("$W^TW$ per setting (feature 0 first; off-diagonal: shared dimensions)", fontsize=9)
    fig.colorbar(image, ax=ax_g, shrink=0.8, label="$W^TW$ entry")
    fig.suptitle(f"{results.sweep.name}: capacity allocation (n={size}, D={views[0]['D']})", fontsize=10)
    return fig


def capacity_plot(results: Results, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/pc_capacity.png (see ``capacity_figure``)."""
    return write_figure(results, capacity_figure(results), "pc_capacity", out_dir)


FIGURES: list[FigureSpec] = [
    FigureSpec("pc_capacity", lambda results, out_dir=None: capacity_plot(results, out_dir),
               "Left: each feature's capacity C_i (the share of a dimension it gets; 1: its own, 0: ignored) against "
               "its importance v_i, lowest-loss seed per setting, with the optimal allocation of the capacity theory "
               "dashed. Look for mono-or-nothing allocations at low kurtosis and fractional (polysemantic) ones at "
               "high kurtosis, and for a seed that did not reach the optimum (a local minimum, or too little "
               "training). Right: W^T W of the same instances."),
]
