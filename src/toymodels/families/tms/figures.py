"""The TMS family's own figures: the feature geometry of any TMS results folder (the report adds them after the
generic training and swept figures; the dashboard's panel shows the same views of one instance).

* :func:`plane_figure` (``tms_plane``, only when m = 2): each feature's column W_i as an arrow in the hidden plane,
  coloured by importance: orthogonal pairs when features are dense, the pentagon when they are sparse.
* :func:`geometry_figure` (``tms_geometry``): W^T W above the feature norms ||W_i|| coloured by superposition.
* :func:`dimensionality_figure` (``tms_dims``): every feature's dimensionality D_i against the swept value, on the
  polytope fractions TMS names (1, 3/4, 2/3, 1/2, 2/5, 3/8), with D* per instance.

Each setting is shown by its lowest-loss seed (``families.common.lowest_loss_per_setting``), as the paper keeps
the lowest-loss restart. Builders return a matplotlib ``Figure`` (None when there is nothing to draw); savers write
``<out_dir>/<name>.png``. Imported only when a figure is drawn (``TMSFamily.figures``): training never needs
matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from toymodels import metrics
from toymodels.families.base import FigureSpec
from toymodels.families.common import lowest_loss_per_setting
from toymodels.families.tms.geometry import POLYTOPE_FRACTIONS, feature_geometry
from toymodels.plotting.common import instance_title, write_figure
from toymodels.plotting.save import new_figure
from toymodels.plotting.ticks import readable_xticks
from toymodels.results.store import Results
from toymodels.results.tables import format_value, is_number, py_value, setting_fields

#: at most this many settings get a panel of their own (evenly spread over the sweep)
MAX_PANELS = 6


def shown_instances(results: Results, run_ids: Sequence[str] | None, limit: int = MAX_PANELS) -> list[str]:
    """The instances a geometry figure shows: ``run_ids``, or each setting's lowest-loss seed (at most ``limit``)."""
    if run_ids is not None:
        return list(run_ids)
    return [rid for _, rid in lowest_loss_per_setting(results, limit=limit)]


def _panel_title(results: Results, run_id: str) -> str:
    title, _ = instance_title(results, run_id)
    return title.replace(", seed", "\nseed")


# ------------------------------------------------------------------------------------------------- the plane
def plane_figure(results: Results, run_ids: Sequence[str] | None = None) -> Figure | None:
    """m = 2 only: the columns W_i as arrows in the hidden plane, coloured by importance I_i, one panel per setting
    (its lowest-loss seed); the dotted circle is norm 1. None for another hidden size."""
    run_ids = shown_instances(results, run_ids)
    views = [feature_geometry(results.params(rid)) for rid in run_ids]
    if not views or views[0]["W"].shape[0] != 2:
        return None
    fig = new_figure(2.7 * len(views) + 1.0, 3.3)
    axes = fig.subplots(1, len(views), squeeze=False)[0]
    cmap = colormaps["viridis"]
    imp = np.concatenate([v["importance"] for v in views])
    norm = Normalize(float(imp.min()), float(imp.max()) if imp.max() > imp.min() else float(imp.min()) + 1)
    for ax, rid, v in zip(axes, run_ids, views):
        W = v["W"]
        lim = max(1.3, 1.1 * float(v["norms"].max()))
        ax.add_patch(Circle((0, 0), 1.0, fill=False, ls=":", color="0.6"))
        ax.axhline(0, color="0.88", lw=0.6, zorder=0)
        ax.axvline(0, color="0.88", lw=0.6, zorder=0)
        for i in np.argsort(-v["importance"]):  # the most important first, the others drawn over it
            colour = cmap(norm(v["importance"][i]))
            ax.annotate("", xy=(W[0, i], W[1, i]), xytext=(0, 0),
                        arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.8, mutation_scale=11))
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{_panel_title(results, rid)}\n{v['represented']} of {W.shape[1]} represented", fontsize=8)
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), shrink=0.8, label="importance $I_i$")
    fig.suptitle(f"{results.sweep.name}: the columns $W_i$ in the 2-D hidden space (lowest-loss seed per setting)",
                 fontsize=10)
    return fig


# ------------------------------------------------------------------------------------- W^T W and the norms
def geometry_figure(results: Results, run_ids: Sequence[str] | None = None) -> Figure | None:
    """Per setting (its lowest-loss seed, columns): the W^T W heatmap (features x features) above the feature norms
    ||W_i|| (feature 0 at the top), each bar coloured by its superposition sum_{j != i} (W_i_hat . W_j)^2."""
    run_ids = shown_instances(results, run_ids)
    if not run_ids:
        return None
    views = [feature_geometry(results.params(rid)) for rid in run_ids]
    n = views[0]["W"].shape[1]
    fig = new_figure(2.3 * len(views) + 1.6, 5.2)
    axes = fig.subplots(2, len(views), squeeze=False, gridspec_kw={"height_ratios": [1, 1.1]})
    sup_cmap = colormaps["inferno"]
    vmax = max(1.0, max(float(np.abs(v["gram"]).max()) for v in views))
    image = None
    for j, (rid, v) in enumerate(zip(run_ids, views)):
        ax_g, ax_n = axes[0, j], axes[1, j]
        image = ax_g.imshow(v["gram"], cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax_g.set_xticks([])
        ax_g.set_yticks([])
        ax_g.set_title(_panel_title(results, rid), fontsize=8)
        ax_n.barh(np.arange(n), v["norms"], color=sup_cmap(np.clip(v["superposition"], 0, 1)), edgecolor="0.3",
                  lw=0.3, height=0.85)
        ax_n.set_ylim(n - 0.5, -0.5)
        ax_n.set_xlim(0, max(1.2, 1.05 * float(v["norms"].max())))
        ax_n.axvline(v["threshold"], color="0.5", lw=0.8, ls=":")
        ax_n.set_yticks([])
        ax_n.tick_params(labelsize=7)
        ax_n.set_xlabel(f"$||W_i||$ ({v['represented']} of {n} > {v['threshold']:g})", fontsize=8)
        if j == 0:
            ax_g.set_ylabel("$W^TW$", fontsize=10)
            ax_n.set_ylabel("feature (0 at the top)", fontsize=8)
    fig.colorbar(image, ax=axes[0, :].tolist(), shrink=0.9, label="$W^TW$ entry")
    fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=sup_cmap), ax=axes[1, :].tolist(), shrink=0.9,
                 label="bar colour: superposition\n" + r"$\sum_{j\neq i}(\hat W_i\cdot W_j)^2$")
    fig.suptitle(f"{results.sweep.name}: $W^TW$ and the feature norms (lowest-loss seed per setting)", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------ feature dimensionality
def x_field(results: Results) -> str | None:
    """The swept field on the x axis of ``tms_dims``: the first numeric one, else the first."""
    fields = setting_fields(results)
    numeric = [f for f in fields if all(is_number(v) for v in results.instances[f])]
    return (numeric or fields or [None])[0]


def dimensionality_figure(results: Results) -> Figure | None:
    """Against the swept value (other swept fields by colour; seeds that did not diverge): left, each instance's
    D* = m / ||W||_F^2 with the mean over seeds; right, every feature's dimensionality D_i, with the polytope
    fractions dashed."""
    inst = results.instances
    ok = inst[inst["status"] == "ok"]
    if ok.empty:
        return None
    xf = x_field(results)
    others = [f for f in setting_fields(results) if f != xf]
    xs_all = [py_value(v) for v in ok[xf]] if xf else [0] * len(ok)
    numeric = bool(xf) and all(is_number(v) for v in xs_all)
    values = sorted(set(xs_all), key=lambda v: (not is_number(v), v if is_number(v) else str(v)))
    positions = [float(v) if numeric else float(values.index(v)) for v in xs_all]
    log = numeric and min(positions) > 0 and max(positions) / min(positions) >= 10
    groups = sorted({tuple(format_value(row[f]) for f in others) for _, row in ok.iterrows()})
    colours = {g: colormaps["tab10"](i % 10) if len(groups) > 1 else "C0" for i, g in enumerate(groups)}
    fig = new_figure(11.5, 4.3)
    ax_d, ax_i = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
    rng = np.random.default_rng(0)
    dstar: dict[tuple, dict[float, list[float]]] = {g: {} for g in groups}
    for (_, row), x in zip(ok.iterrows(), positions):
        W = results.params(str(row["run_id"]))["W"].double()
        dims = metrics.capacity(W[None])[0].numpy()
        group = tuple(format_value(row[f]) for f in others)
        jitter = np.exp(rng.uniform(-0.03, 0.03, dims.size)) if log else rng.uniform(-0.08, 0.08, dims.size)
        ax_i.scatter(x * jitter if log else x + jitter, dims, s=6, alpha=0.45, lw=0, color=colours[group])
        dstar[group].setdefault(x, []).append(float(metrics.dims_per_feature(W[None])[0]))
    for group, by_x in dstar.items():
        xs = sorted(by_x)
        label = ", ".join(f"{f}={v}" for f, v in zip(others, group)) or "mean over seeds"
        for x in xs:
            ax_d.scatter([x] * len(by_x[x]), by_x[x], s=12, alpha=0.5, color=colours[group], lw=0)
        ax_d.plot(xs, [float(np.mean(by_x[x])) for x in xs], "o-", color=colours[group], ms=4, lw=1.4, label=label)
    for f in POLYTOPE_FRACTIONS.values():
        ax_i.axhline(f, color="C3", lw=0.6, ls="--", zorder=0)
    previous = None
    for name, f in POLYTOPE_FRACTIONS.items():  # from 1 down: a label close below another one goes under its line
        below = previous is not None and previous - f < 0.05
        ax_i.annotate(name, (1.0, f), xycoords=("axes fraction", "data"), xytext=(3, -2 if below else 1),
                      textcoords="offset points", va="top" if below else "bottom", fontsize=7, color="C3")
        previous = f
    ax_d.axhline(0.5, color="C3", lw=0.8, ls="--", zorder=0, label="1/2: antipodal pairs")
    ax_i.set_ylim(-0.03, 1.05)
    ax_d.set_ylim(0, max(1.05, 1.05 * max(v for by_x in dstar.values() for vs in by_x.values() for v in vs)))
    ax_d.set_ylabel("dimensions per feature $D^* = m/||W||_F^2$")
    ax_i.set_ylabel("feature dimensionality $D_i$")
    ax_d.legend(fontsize=7, loc="best")
    for ax in (ax_d, ax_i):
        if log:
            ax.set_xscale("log")
        ax.set_xlabel((xf or "all instances") + (" (log scale)" if log else ""))
        ax.grid(alpha=0.3)
        if len(values) <= 12:
            ticks = [float(v) if numeric else float(i) for i, v in enumerate(values)]
            readable_xticks(ax, ticks, [format_value(v) for v in values], font_size=8)
    ax_d.set_title("D* of each instance (line: mean over seeds)", fontsize=9)
    ax_i.set_title("every feature's $D_i$ (dashed: the polytope fractions TMS names)", fontsize=9)
    fig.suptitle(f"{results.sweep.name}: feature dimensionality", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------------- savers
def plane_plot(results: Results, run_ids: Sequence[str] | None = None, out_dir: str | Path | None = None
               ) -> list[Path]:
    """Write figures/tms_plane.png (see ``plane_figure``; nothing for a hidden size other than 2)."""
    return write_figure(results, plane_figure(results, run_ids), "tms_plane", out_dir)


def geometry_plot(results: Results, run_ids: Sequence[str] | None = None, out_dir: str | Path | None = None
                  ) -> list[Path]:
    """Write figures/tms_geometry.png (see ``geometry_figure``)."""
    return write_figure(results, geometry_figure(results, run_ids), "tms_geometry", out_dir)


def dimensionality_plot(results: Results, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/tms_dims.png (see ``dimensionality_figure``)."""
    return write_figure(results, dimensionality_figure(results), "tms_dims", out_dir)


def _plot(fn: Any) -> Any:
    """A saver as the report calls it: ``plot(results, out_dir=...)``, the default instances."""
    return lambda results, out_dir=None: fn(results, out_dir=out_dir)


FIGURES: list[FigureSpec] = [
    FigureSpec("tms_plane", _plot(plane_plot),
               "Hidden size 2 only: each feature's column W_i as an arrow in the hidden plane (colour: importance; "
               "dotted: norm 1), lowest-loss seed per setting. Look for orthogonal pairs when features are dense and "
               "the pentagon (and other polygons) as they get sparser."),
    FigureSpec("tms_geometry", _plot(geometry_plot),
               "Top: W^T W (red: positive, blue: negative); a diagonal is one dimension per feature, off-diagonal "
               "entries are features sharing directions. Bottom: the feature norms ||W_i|| (dotted: the "
               "'represented' threshold), each bar coloured by its superposition (black: a direction of its own)."),
    FigureSpec("tms_dims", lambda results, out_dir=None: dimensionality_plot(results, out_dir),
               "Every feature's dimensionality D_i (dots, all seeds) and each instance's D* (crosses) against the "
               "swept value. Look for D_i sticking to the polytope fractions (1/2: antipodal pairs, 2/5: "
               "pentagons) and D* plateauing at 1/2 as features get sparser."),
]


__all__ = ["FIGURES", "dimensionality_figure", "geometry_figure", "plane_figure"]
