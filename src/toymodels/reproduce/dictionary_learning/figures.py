"""The dictionary-learning study's figures (docs/dictionary_learning.md), pyplot-free: each ``plot_*`` takes the
study's table and a path, and returns the path (or None when there is nothing to draw)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from torch import Tensor

from toymodels.families.sae.figures import (
    ARCH_COLOURS,
    draw_matched_cosines,
    mcc_vs_l0_figure,
)
from toymodels.plotting.save import new_figure, save_figure


def plot_lr(table: pd.DataFrame, path: Path, selectivity: float) -> Path | None:
    """SAE-LR: the fraction of features the neurons, the SAE on h and the SAE on x cover (one criterion,
    selectivity > ``selectivity``), and the SAE on h's decoder-|cos| recovery, against the source's lr: the mean
    over seeds, each seed a faint point."""
    if table is None or table.empty:
        return None
    fig = new_figure(5.6, 3.6)
    ax = fig.subplots()
    series = [(f"cover_neurons@{selectivity:g}", "o-", "k", "neurons: covered"),
              (f"cover_h@{selectivity:g}", "s-", "tab:blue", "SAE on h: covered"),
              (f"cover_x@{selectivity:g}", "^-", "tab:orange", "SAE on x: covered"),
              ("recovered_h", "s:", "tab:blue", "SAE on h: decoder |cos| > 0.9")]
    for column, style, colour, label in series:
        if column not in table:
            continue
        g = table.groupby("lr")[column].mean().sort_index()
        ax.plot(g.index, g.values, style, color=colour, label=label)
        if not style.endswith(":"):
            ax.plot(table["lr"], table[column], style[0], color=colour, alpha=0.25, ms=3)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate of the LR1 model")
    ax.set_ylabel("fraction of the N features")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_mcc_l0(df: pd.DataFrame, path: Path) -> Path | None:
    """SAE-L0: MCC against L0, colour = architecture, marker = width (``families.sae.figures``)."""
    d = df[df["status"] == "ok"] if len(df) else df
    fig = mcc_vs_l0_figure(d, float(d["true_l0"].mean()) if len(d) else None)
    return save_figure(fig, path) if fig is not None else None


def plot_cosines(panels: Sequence[tuple[Tensor, Tensor, str]], path: Path) -> Path | None:
    """Matched decoder-vs-truth |cos| heatmaps, one panel per (decoder, truth, title)."""
    if not panels:
        return None
    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    fig = new_figure(4.2 * cols, 3.5 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (D, F, title) in zip(axes, panels):
        im = draw_matched_cosines(ax, D, F, title)
    fig.colorbar(im, ax=list(axes[: len(panels)]), label="|cos|")
    return save_figure(fig, path)


def plot_absorption(points: pd.DataFrame, path: Path) -> Path | None:
    """SAE-ABS: per architecture and sparsity, the gap on hierarchical features beside the null gap of the same
    SAEs on independent features (``judges.absorption_points``' table)."""
    if points is None or points.empty:
        return None
    labels = [f"{a}\n{s}" for a, s in zip(points["sae_arch"], points["sparsity"])]
    x = np.arange(len(points))
    fig = new_figure(max(6.0, 0.45 * len(points) + 1.5), 3.4)
    ax = fig.subplots()
    colours = [ARCH_COLOURS.get(a, "0.5") for a in points["sae_arch"]]
    ax.bar(x - 0.2, points["gap hierarchical"], 0.4, color=colours, label="hierarchical features")
    ax.bar(x + 0.2, points["gap null (independent)"], 0.4, color=colours, alpha=0.35,
           label="null: independent features, same pairs")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(x, labels, fontsize=6)
    ax.set_ylabel("absorption gap (mean over seeds)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_tms(df: pd.DataFrame, path: Path, column: str) -> Path | None:
    """SAE-TMS: the fraction of the represented features the latents cover (``column``) and the decoder-|cos|
    recovery among them, against the TMS model's feature density, one line per l1 (mean over seeds), with the
    represented fraction of N."""
    if df is None or df.empty or column not in df:
        return None
    fig = new_figure(5.5, 3.6)
    ax = fig.subplots()
    for (l1,), g in df.groupby(["l1"]):
        g = g.groupby("eps").mean(numeric_only=True).sort_index()
        ax.plot(g.index, g[column], "o-", label=f"covered of represented, l1={l1:g}")
        ax.plot(g.index, g["recovered_rep"], "s--", label=f"decoder |cos| > 0.9 of represented, l1={l1:g}")
    rep = df.groupby("eps")["represented"].mean().sort_index()
    ax.plot(rep.index, rep / df["N"].iloc[0], "k:", label="TMS: represented features / N")
    ax.set_xscale("log")
    ax.set_xlabel("feature density 1 - S of the TMS model (superposition grows to the left)")
    ax.set_ylabel("fraction")
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
