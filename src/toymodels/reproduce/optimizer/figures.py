"""The figures of the optimizer study (docs/figures/opt_*.png), from its judged cells (``judges``), its
checkpoint tables at the last lr peak and trough, and its parts' results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from toymodels.plotting.save import new_figure, save_figure
from toymodels.reproduce.em_claims.figures import EM_FIGURE_DPI, figure_row
from toymodels.results.store import Results

#: the one letter-or-symbol of each cell effect in the heatmap
EFFECT_MARKS = {"yes": "yes", "mono up, loss up": "up,L+", "mono up, loss unclear": "up,L?", "reversed": "rev",
                "no effect": "none", "unclear": "?", "no mono": "no mono", "too few seeds": "n<3", "diverged": "div"}
MARKERS = {"paper_cosine": "o", "constant": "s", "cosine": "^", "warmup_cosine": "v"}
COLORS = {"lamb": "tab:blue", "adam": "tab:orange", "adamw": "tab:green", "sgd": "tab:red"}


def figure_effect(cells: dict[tuple[str, str, str], dict], floor: float, path: Path) -> Path:
    """Per setting, a heatmap optimizer x schedule of the mean change in mono neurons from the low to the high lr
    (white within the detection floor ``floor``), each cell marked with mean ± sd and its effect."""
    opts = list(dict.fromkeys(k[1] for k in cells))
    scheds = list(dict.fromkeys(k[2] for k in cells))
    settings = list(dict.fromkeys(k[0] for k in cells))
    fig, ax = figure_row(len(settings), width=3.6, height=2.8)
    for a, setting in zip(ax, settings):
        grid = np.full((len(opts), len(scheds)), np.nan)
        for (s_, o, sc), c in cells.items():
            if s_ == setting:
                grid[opts.index(o), scheds.index(sc)] = c["d_neurons"]["mean"]
        lim = max(2.0 * floor, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.0)
        a.imshow(grid, cmap="RdBu", vmin=-lim, vmax=lim)
        for (s_, o, sc), c in cells.items():
            if s_ == setting:
                d = c["d_neurons"]
                text = f"{d['mean']:+.1f}±{d['sd']:.1f}" if np.isfinite(d["sd"]) else "-"
                a.text(scheds.index(sc), opts.index(o), f"{text}\n{EFFECT_MARKS.get(c['effect'], c['effect'])}",
                       ha="center", va="center", fontsize=5.5)
        a.set_xticks(range(len(scheds)), [s.replace("_", "\n") for s in scheds], fontsize=6)
        a.set_yticks(range(len(opts)), opts, fontsize=7)
        a.set_title(f"{setting}: Δ mono neurons, high - low lr (floor {floor:g})", fontsize=7)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)


def figure_peak_trough(pvt: dict[tuple[str, str, str, str], dict], path: Path) -> Path:
    """Per setting, mono/feature (top) and loss (bottom) at the last lr peak (filled) and trough (open) of every
    optimizer x schedule at the high lr, mean ± sd over seeds."""
    keys = [k for k in pvt if k[3] == "high"]
    settings = list(dict.fromkeys(k[0] for k in keys))
    fig = new_figure(3.6 * max(1, len(settings)), 4.6)
    axes = fig.subplots(2, max(1, len(settings)), squeeze=False)
    for col, setting in enumerate(settings):
        mine = [k for k in keys if k[0] == setting]
        labels = [f"{k[1]}\n{k[2].replace('_', ' ')}" for k in mine]
        x = np.arange(len(mine))
        for row, (metric, label) in enumerate([("mono", "mono / feature"), ("loss", "loss")]):
            a = axes[row][col]
            for where, fill, dx in (("peak", True, -0.12), ("trough", False, 0.12)):
                mean = [pvt[k][f"{metric}_{where}"]["mean"] for k in mine]
                sd = [np.nan_to_num(pvt[k][f"{metric}_{where}"]["sd"]) for k in mine]
                a.errorbar(x + dx, mean, yerr=sd, ls="", marker="o", ms=3.5, capsize=1.5, label=f"last {where}",
                           mfc=None if fill else "white", color="k" if fill else "tab:purple")
            a.set_ylabel(label, fontsize=7)
            a.set_xticks(x, labels if row == 1 else [""] * len(x), fontsize=5, rotation=90)
        axes[0][col].set_title(f"{setting}, high lr: last lr peak vs trough", fontsize=7)
    if settings:
        axes[0][0].legend(fontsize=6)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)


def figure_matched(df: pd.DataFrame, band: float, path: Path) -> Path:
    """Per setting, mono/feature against the final loss of every (optimizer, schedule, lr level), the matched-loss
    band (within ``band`` of the best loss) shaded; ``df`` is the checkpoint table at the final step."""
    settings = list(dict.fromkeys(df["setting"]))
    fig, ax = figure_row(len(settings), width=3.4, height=2.7)
    ok = df[df["status"] == "ok"]
    for a, setting in zip(ax, settings):
        g = ok[ok["setting"] == setting].groupby(["optimizer", "schedule", "lr_level"])[
            ["loss", "mono_per_feature"]].mean().reset_index()
        for _, r in g.iterrows():
            a.scatter(r["loss"], r["mono_per_feature"], marker=MARKERS.get(r["schedule"], "o"),
                      c=COLORS.get(r["optimizer"], "k"), s=28 if r["lr_level"] == "high" else 10,
                      edgecolors="none", alpha=0.8)
        if len(g):
            best = g["loss"].min()
            a.axvspan(best, best * (1 + band), color="grey", alpha=0.15)
        a.set_xlabel("final loss")
        a.set_ylabel("mono / feature")
        a.set_title(f"{setting} (big = high lr; band = matched loss)", fontsize=7)
    handles = [Line2D([], [], color=c, marker="o", ls="", label=o) for o, c in COLORS.items()] + \
              [Line2D([], [], color="k", marker=m, ls="", label=s) for s, m in MARKERS.items()]
    ax[-1].legend(handles=handles, fontsize=5, loc="best")
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)


def figure_curves(results: dict[str, Results], path: Path) -> Path:
    """Per optimizer, mono/feature over training (linear steps, so paper_cosine's peaks and troughs show) of its
    high-lr runs, mean over seeds, one line per setting and schedule."""
    opts = list(dict.fromkeys(res.sweep.base.optim.optimizer for res in results.values()))
    fig, ax = figure_row(len(opts), width=2.8, height=2.4)
    styles = {"LR1": "-", "LR3": "--"}
    for a, opt in zip(ax, opts):
        for part, res in results.items():
            if res.sweep.base.optim.optimizer != opt:
                continue
            setting, inst = part.split("-")[1], res.instances
            m = res.metrics[res.metrics["name"] == "mono_per_feature"]
            for sched, g in inst[inst["lr"] == inst["lr"].max()].groupby("schedule"):
                c = m[m["run_id"].isin(g["run_id"])].groupby("step")["value"].mean()
                a.plot(c.index + 1, c.to_numpy(), styles.get(setting, "-"), marker=MARKERS.get(sched, "."), ms=1.5,
                       lw=0.7, label=f"{setting} {sched}")
        a.set_title(f"{opt}, high lr", fontsize=7)
        a.set_xlabel("step")
    ax[0].set_ylabel("mono / feature")
    ax[-1].legend(fontsize=4)
    return save_figure(fig, path, dpi=EM_FIGURE_DPI)
