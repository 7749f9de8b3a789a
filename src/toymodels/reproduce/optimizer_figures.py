"""The figures of the optimizer study (docs/figures/opt_*.png), from its instance table (``opt1_table``), its
parts' results and its judged cells (``judge_cells``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ..figures.save import save_figure
from ..store import Results
from .em_figures import EM_FIGURE_DPI, figure_row


def figure_effect(cells: dict[tuple[str, str, str], dict], path: Path) -> Path:
    """Per setting, a heatmap optimizer x schedule of the change in mono/feature from the low to the high lr, marked
    with each cell's effect."""
    opts = list(dict.fromkeys(k[1] for k in cells))
    scheds = list(dict.fromkeys(k[2] for k in cells))
    settings = list(dict.fromkeys(k[0] for k in cells))
    fig, ax = figure_row(len(settings), width=3.4, height=2.7)
    for a, setting in zip(ax, settings):
        grid = np.full((len(opts), len(scheds)), np.nan)
        for i, o in enumerate(opts):
            for j_, s in enumerate(scheds):
                c = cells.get((setting, o, s))
                if c is not None:
                    grid[i, j_] = c["d_mono"]
        lim = max(0.05, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.05)
        a.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim)
        for i, o in enumerate(opts):
            for j_, s in enumerate(scheds):
                c = cells.get((setting, o, s))
                if c is not None:
                    mark = {"yes": "✓", "mono up, loss up": "↑L", "no": "", "no mono": "0", "diverged": "x"}.get(
                        c["effect"], "")
                    a.text(j_, i, f"{c['d_mono']:+.2f}\n{mark}", ha="center", va="center", fontsize=6)
        a.set_xticks(range(len(scheds)), [s.replace("_", "\n") for s in scheds], fontsize=6)
        a.set_yticks(range(len(opts)), opts, fontsize=7)
        a.set_title(f"{setting}: Δ mono/feature (high - low lr)", fontsize=7)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)


def figure_matched(df: pd.DataFrame, band: float, path: Path) -> Path:
    """Per setting, mono/feature against final loss of every (optimizer, schedule, lr level), the matched-loss band
    (within ``band`` of the best loss) shaded."""
    settings = list(dict.fromkeys(df["setting"]))
    fig, ax = figure_row(len(settings), width=3.4, height=2.7)
    markers = {"paper_cosine": "o", "constant": "s", "cosine": "^", "warmup_cosine": "v"}
    colors = {"lamb": "tab:blue", "adam": "tab:orange", "adamw": "tab:green", "sgd": "tab:red"}
    ok = df[df["status"] == "ok"]
    for a, setting in zip(ax, settings):
        g = ok[ok["setting"] == setting].groupby(["optimizer", "schedule", "lr_level"])[
            ["final_loss", "mono_per_feature"]].mean().reset_index()
        for _, r in g.iterrows():
            a.scatter(r["final_loss"], r["mono_per_feature"], marker=markers.get(r["schedule"], "o"),
                      c=colors.get(r["optimizer"], "k"), s=28 if r["lr_level"] == "high" else 10,
                      edgecolors="none", alpha=0.8)
        best = g["final_loss"].min()
        a.axvspan(best, best * (1 + band), color="grey", alpha=0.15)
        a.set_xlabel("final loss")
        a.set_ylabel("mono / feature")
        a.set_title(f"{setting} (big = high lr; band = matched loss)", fontsize=7)
    handles = [Line2D([], [], color=c, marker="o", ls="", label=o) for o, c in colors.items()] + \
              [Line2D([], [], color="k", marker=m, ls="", label=s) for s, m in markers.items()]
    ax[-1].legend(handles=handles, fontsize=5, loc="best")
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)


def figure_curves(df: pd.DataFrame, results: dict[str, Results], path: Path) -> Path:
    """Per optimizer, mono/feature over training of its high-lr runs, one line per setting and schedule."""
    opts = list(dict.fromkeys(df["optimizer"]))
    fig, ax = figure_row(len(opts), width=2.6, height=2.4)
    styles = {"LR1": "-", "LR3": "--"}
    for a, opt in zip(ax, opts):
        for part, res in results.items():
            setting = part.split("-")[1]
            if res.sweep.base.optim.optimizer != opt:
                continue
            inst = res.instances
            hi = inst["lr"].max()
            m = res.metrics[res.metrics["name"] == "mono_per_feature"]
            for sched, g in inst[inst["lr"] == hi].groupby("schedule"):
                c = m[m["run_id"].isin(g["run_id"])].groupby("step")["value"].mean()
                a.plot(np.log2(c.index + 1), c.to_numpy(), styles.get(setting, "-"), marker=".", ms=2, lw=0.8,
                       label=f"{setting} {sched}")
        a.set_title(f"{opt}, high lr", fontsize=7)
        a.set_xlabel("log2 step")
    ax[0].set_ylabel("mono / feature")
    ax[-1].legend(fontsize=4)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)
