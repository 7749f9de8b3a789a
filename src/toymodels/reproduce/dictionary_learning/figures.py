"""The dictionary-learning study's figures (docs/dictionary_learning.md), pyplot-free: each ``plot_*`` takes the
study's table and a path, and returns the path (or None when there is nothing to draw)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from torch import Tensor

from toymodels.families.sae.figures import ARCH_COLOURS, draw_matched_cosines, mcc_vs_l0_figure
from toymodels.plotting.save import new_figure, save_figure


def plot_lr(table: pd.DataFrame, path: Path) -> Path | None:
    """SAE-LR: per setting, the fraction of features the neurons cover and the SAEs on h and x recover, vs lr."""
    if table.empty:
        return None
    settings = list(dict.fromkeys(table["setting"]))
    fig = new_figure(4.2 * len(settings), 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(settings), sharey=True))
    for ax, setting in zip(axes, settings):
        g = table[table["setting"] == setting].groupby("lr").mean(numeric_only=True).sort_index()
        ax.plot(g.index, g["features_covered"], "o-", color="k", label="neurons: features covered (mono)")
        ax.plot(g.index, g["recovered_h"], "s-", color="tab:blue", label="SAE on h: recovered (cos > 0.9)")
        ax.plot(g.index, g["recovered_x"], "^-", color="tab:orange", label="SAE on x: recovered (cos > 0.9)")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate of the toy model")
        ax.set_title(setting, fontsize=10)
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("fraction of the N features")
    axes[0].legend(fontsize=7)
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


def plot_absorption(df: pd.DataFrame, path: Path) -> Path | None:
    """SAE-ABS: MCC per firing structure and the absorption gap on hierarchical features, per architecture and
    sparsity setting."""
    d = df[df["status"] == "ok"] if len(df) else df
    if d.empty:
        return None
    d = d.assign(setting=[f"{a}\n{'k=' + str(k) if a != 'relu_l1' else f'l1={l1:g}'}"
                          for a, k, l1 in zip(d["sae_arch"], d["sae_k"], d["l1"])])
    settings = list(dict.fromkeys(d["setting"]))
    firings = list(dict.fromkeys(d["firing"]))
    fig = new_figure(9, 3.4)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    x = np.arange(len(settings))
    w = 0.8 / len(firings)
    for j, f in enumerate(firings):
        vals = [d[(d["setting"] == s) & (d["firing"] == f)]["mcc"].mean() for s in settings]
        ax1.bar(x + j * w, vals, w, label=f)
    ax1.set_xticks(x + w * (len(firings) - 1) / 2, settings, fontsize=7)
    ax1.set_ylabel("MCC")
    ax1.legend(fontsize=7, loc="lower right")
    h = d[d["firing"] == "hierarchical"]
    if "absorption_gap" in h:
        gaps = [h[h["setting"] == s]["absorption_gap"].mean() for s in settings]
        ax2.bar(x, gaps, color=[ARCH_COLOURS.get(s.split("\n")[0], "0.5") for s in settings])
        ax2.set_xticks(x, settings, fontsize=7)
    ax2.axhline(0, color="0.3", lw=0.8)
    ax2.set_ylabel("absorption gap (hierarchical)")
    return save_figure(fig, path)


def plot_tms(df: pd.DataFrame, path: Path) -> Path | None:
    """SAE-TMS: features recovered (of all, and of the represented ones) against the source's feature density."""
    d = df[df["status"] == "ok"] if len(df) else df
    if d.empty:
        return None
    fig = new_figure(5.5, 3.6)
    ax = fig.subplots()
    for (l1,), g in d.groupby(["l1"]):
        g = g.groupby("eps").mean(numeric_only=True).sort_index()
        ax.plot(g.index, g["features_recovered"], "o-", label=f"recovered of N, l1={l1:g}")
        ax.plot(g.index, g["recovered_of_represented"], "s--", label=f"recovered of represented, l1={l1:g}")
    rep = d.groupby("eps")["represented"].mean().sort_index()
    ax.plot(rep.index, rep / d["N"].iloc[0], "k:", label="TMS: represented features / N")
    ax.set_xscale("log")
    ax.set_xlabel("feature density 1 - S of the TMS model (superposition grows to the left)")
    ax.set_ylabel("fraction")
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
