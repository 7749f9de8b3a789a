"""The polytope study's figures (docs/polytope_lens.md), pyplot-free: each ``plot_*`` takes the study's table (one
row per model, ``measure.study_table``) and a path, and returns the path (None when there is nothing to draw). One
panel per family against its swept setting (log scale), the mean over seeds as a line and each seed a faint point.
The 2D slice is the report's own figure (``report.polytope.slice_figure``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.ticker import NullFormatter

from toymodels.plotting.save import new_figure, save_figure
from toymodels.report.polytope import slice_figure
from toymodels.reproduce.polytope.rules import FAMILIES, SETTINGS
from toymodels.results.store import Results

#: what each family's setting is, for the axes
SETTING_LABELS = {"EM": "learning rate (LR1)", "TMS": "feature density eps (TMS ReLU, n=20, m=5)",
                  "SAE": "L1 coefficient (ReLU SAE, width = N)"}


def _families(table: pd.DataFrame) -> list[str]:
    return [f for f in FAMILIES if len(table) and (table["family"] == f).any()]


def _panels(table: pd.DataFrame):
    """(figure, [(axis, family, its rows)]): one panel per family present, side by side; None without any."""
    families = _families(table)
    if not families:
        return None
    fig = new_figure(4.3 * len(families), 3.6)
    axes = fig.subplots(1, len(families), squeeze=False)[0]
    return fig, [(ax, f, table[table["family"] == f]) for ax, f in zip(axes, families)]


def _series(ax, g: pd.DataFrame, column: str, style: str, colour: str, label: str) -> None:
    means = g.groupby("setting")[column].mean().sort_index()
    ax.plot(means.index, means.values, style, color=colour, label=label)
    if not style.startswith(":"):
        ax.plot(g["setting"], g[column], "o", color=colour, alpha=0.25, ms=3)


def _axis(ax, family: str, values: pd.Series) -> None:
    """Log scale with a labelled tick at each setting (matplotlib's minor labels collide on a short range)."""
    ax.set_xscale("log")
    ticks = sorted(float(v) for v in values.unique())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks], fontsize=7)
    ax.set_xlabel(SETTING_LABELS.get(family, SETTINGS[family]), fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_purity(table: pd.DataFrame, path: Path) -> Path | None:
    """POLY-1: F-score (and purity, dotted) of spline codes and of the neuron partition against each family's
    setting."""
    panels = _panels(table)
    if panels is None:
        return None
    fig, rows = panels
    for ax, family, g in rows:
        _series(ax, g, "code_match", "-", "C0", "codes: F")
        _series(ax, g, "neuron_match", "-", "C1", "neurons: F")
        _series(ax, g, "code_purity", ":", "C0", "codes: purity")
        _series(ax, g, "neuron_purity", ":", "C1", "neurons: purity")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{family}: lone-feature inputs", fontsize=9)
        ax.set_ylabel("F-score (purity, completeness)")
        _axis(ax, family, g["setting"])
    return save_figure(fig, path)


def plot_density(table: pd.DataFrame, path: Path) -> Path | None:
    """POLY-2: boundary density between two features and along one against the setting (top), and where the
    boundaries sit along the between-feature paths, one line per setting (bottom)."""
    families = _families(table)
    if not families:
        return None
    fig = new_figure(4.3 * len(families), 6.6)
    axes = fig.subplots(2, len(families), squeeze=False)
    for k, family in enumerate(families):
        g = table[table["family"] == family]
        top, bottom = axes[0][k], axes[1][k]
        _series(top, g, "between_density", "-", "C2", "between two features")
        _series(top, g, "within_density", "-", "C4", "along one feature")
        top.set_title(f"{family}: boundaries per unit length", fontsize=9)
        _axis(top, family, g["setting"])
        cols = sorted((c for c in g.columns if c.startswith("between_profile_")),
                      key=lambda c: int(c.rsplit("_", 1)[1]))
        within = [c.replace("between", "within") for c in cols]
        centres = (np.arange(len(cols)) + 0.5) / max(len(cols), 1)
        values = sorted(g["setting"].unique())
        cmap = colormaps["viridis"]
        for i, value in enumerate(values):
            rows = g[g["setting"] == value]
            colour = cmap(i / max(len(values) - 1, 1))
            bottom.plot(centres, rows[cols].to_numpy(dtype=float).mean(0), "-", color=colour,
                        label=f"{SETTINGS[family]} {value:g}")
            bottom.plot(centres, rows[within].to_numpy(dtype=float).mean(0), ":", color=colour)
        bottom.set_title("solid: feature i -> j; dotted: along one feature", fontsize=8)
        bottom.set_xlabel("position along the path")
        bottom.set_ylabel("boundaries per path per tenth")
        bottom.grid(alpha=0.3)
        bottom.legend(fontsize=6)
    return save_figure(fig, path)


def plot_validity(table: pd.DataFrame, path: Path, bound: float) -> Path | None:
    """POLY-3: how far up (and down) its ray the median feature stays within 1% of affine, in units of its top
    training magnitude, against the setting; the rules' bound dashed."""
    panels = _panels(table)
    if panels is None:
        return None
    fig, rows = panels
    for ax, family, g in rows:
        _series(ax, g, "validity_upper", "-", "C3", "valid up to")
        _series(ax, g, "validity_lower", "-", "C5", "valid from")
        ax.axhline(1.0, color="0.5", linewidth=0.8, linestyle=":")
        ax.axhline(bound, color="k", linewidth=0.9, linestyle="--", label=f"bound {bound:g} x top")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{family}: validity range of the median feature", fontsize=9)
        ax.set_ylabel("x its top training magnitude")
        _axis(ax, family, g["setting"])
    return save_figure(fig, path)


def plot_slice(results: Results | None, path: Path) -> Path | None:
    """The report's 2D slice (three instances spread over the sweep: dense to sparse) of ``results``."""
    fig = slice_figure(results, n=3) if results is not None else None
    return save_figure(fig, path) if fig is not None else None
