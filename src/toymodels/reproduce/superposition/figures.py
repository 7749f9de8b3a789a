"""Figures of the superposition claims (TMS, P&C), drawn from the table of trained instances with their final
weights (``data.final_weights``, or built by hand) into one PNG each, with ``toymodels.plotting.save``.

* :func:`plot_intro`: TMS intro figure: features as arrows in the 2-D hidden space, coloured by importance, one
  panel per sparsity (lowest-loss restart).
* :func:`plot_basic`: W^T W heatmaps beside the feature norms ||W_i|| coloured by superposition, per sparsity, for
  the ReLU output and the linear model.
* :func:`plot_dims`: dimensions per feature D* against 1/(1-S), and the per-feature dimensionalities D_i with the
  polytope fractions 1, 3/4, 2/3, 1/2, 2/5, 3/8.
* :func:`plot_phase`: the n=2, m=1 phase diagram (which solution has the lowest loss per cell) beside the
  analytic prediction of docs/papers.md §2.3.
* :func:`plot_capacity`: P&C capacity allocation C_i against importance v_i for K < 3 and K > 3, with the optimal
  allocation of the theory (``toymodels.families.quadratic.quadratic_capacity_theory``).

The metrics (capacity, superposition, D*) come from ``toymodels.metrics``; numpy only tabulates and plots them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Rectangle

from toymodels import metrics
from toymodels.families.tms import represented
from toymodels.plotting.save import new_figure, save_figure
from toymodels.reproduce.superposition.data import (
    PHASES,
    antipodal_boundary,
    lowest_loss,
    phase_table,
    stacked,
)
from toymodels.reproduce.superposition.rules import FRACTIONS

PHASE_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#BBBBBB")


def _density_label(eps: float) -> str:
    return f"1-S = {eps:.3g}"


def plot_intro(df: pd.DataFrame, path: str | Path) -> Path:
    """TMS intro: each feature's column W_i as an arrow in the 2-D hidden space, coloured by importance; one panel
    per feature density (lowest-loss restart per density), densest first."""
    best = lowest_loss(df, ["eps"]).sort_values("eps", ascending=False)
    n_panels = len(best)
    cols = min(5, n_panels)
    rows = int(np.ceil(n_panels / cols))
    fig = new_figure(2.4 * cols + 1.0, 2.55 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    cmap = colormaps["viridis"]
    all_imp = np.concatenate([np.asarray(i) for i in best["importance"]])
    lo, hi = float(all_imp.min()), float(all_imp.max())
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, row) in zip(axes.flat, best.iterrows()):
        W = np.asarray(row["W"])
        imp = np.asarray(row["importance"])
        ax.axis("on")
        ax.add_patch(Circle((0, 0), 1.0, fill=False, ls=":", color="0.6"))
        ax.axhline(0, color="0.85", lw=0.6, zorder=0)
        ax.axvline(0, color="0.85", lw=0.6, zorder=0)
        for i in np.argsort(-imp):  # most important drawn first, less important on top
            c = cmap((imp[i] - lo) / (hi - lo) if hi > lo else 0.5)
            ax.annotate("", xy=(W[0, i], W[1, i]), xytext=(0, 0),
                        arrowprops={"arrowstyle": "-|>", "color": c, "lw": 2, "mutation_scale": 12})
            ax.plot([W[0, i]], [W[1, i]], "o", color=c, ms=4)
        n_rep = int(represented(stacked([W])).sum())
        ax.set_title(f"{_density_label(row['eps'])}\n{n_rep} of {W.shape[1]} represented", fontsize=9)
        ax.set_xlim(-1.35, 1.35)
        ax.set_ylim(-1.35, 1.35)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    sm = ScalarMappable(cmap=cmap, norm=Normalize(lo, hi))
    fig.colorbar(sm, ax=axes.ravel().tolist(), shrink=0.7, aspect=25, label="importance $I_i$")
    fig.suptitle("TMS intro: columns $W_i$ of W in the 2-D hidden space (n=5, m=2), lowest-loss restart",
                 fontsize=11)
    return save_figure(fig, path)


def plot_basic(df: pd.DataFrame, path: str | Path) -> Path:
    """TMS basic results: for each variant (rows) and density (columns), the W^T W heatmap above the feature norms
    ||W_i|| coloured by superposition sum_{j != i} (W_i_hat . W_j)^2 (black = none, yellow = 1 or more).
    Lowest-loss seed per cell."""
    variants = [v for v in ("relu", "linear", "hidden_relu") if v in set(df["tms_variant"])]
    best = lowest_loss(df, ["tms_variant", "eps"])
    eps_levels = sorted(set(best["eps"]), reverse=True)
    cols = len(eps_levels)
    fig = new_figure(1.7 * cols + 1.6, 4.4 * len(variants))
    axes = fig.subplots(2 * len(variants), cols, squeeze=False,
                        gridspec_kw={"height_ratios": [1, 1.15] * len(variants)})
    cmap_sup = colormaps["inferno"]
    sups = metrics.superposition(stacked(best["W"])).numpy()  # per feature, one row per cell
    im = None
    for vi, variant in enumerate(variants):
        for ci, eps in enumerate(eps_levels):
            ax_h, ax_b = axes[2 * vi, ci], axes[2 * vi + 1, ci]
            sel = best[(best["tms_variant"] == variant) & (best["eps"] == eps)]
            if sel.empty:
                ax_h.axis("off")
                ax_b.axis("off")
                continue
            W = np.asarray(sel.iloc[0]["W"])
            sup = sups[sel.index[0]]
            n = W.shape[1]
            im = ax_h.imshow(W.T @ W, cmap="RdBu_r", vmin=-1, vmax=1)
            ax_h.set_xticks([])
            ax_h.set_yticks([])
            ax_h.set_title(_density_label(eps), fontsize=9)
            norms = np.linalg.norm(W, axis=0)
            ax_b.barh(np.arange(n), norms, color=cmap_sup(np.clip(sup, 0, 1)), edgecolor="0.3", lw=0.3)
            ax_b.set_ylim(n - 0.5, -0.5)
            ax_b.set_xlim(0, max(1.2, float(norms.max()) * 1.05))
            ax_b.set_yticks([])
            ax_b.tick_params(labelsize=7)
            ax_b.set_title(f"{int(represented(stacked([W])).sum())} of {n} represented", fontsize=8)
            if ci == 0:
                ax_h.set_ylabel(f"{variant} model\n$W^TW$", fontsize=10)
                ax_b.set_ylabel("$||W_i||$, feature 0 at top", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes[:, -1].tolist(), shrink=0.35, aspect=15, label="$W^TW$ entry", location="right")
    sm = ScalarMappable(cmap=cmap_sup, norm=Normalize(0, 1))
    fig.colorbar(sm, ax=axes[:, -1].tolist(), shrink=0.35, aspect=15, location="right",
                 label="bar colour: superposition\n" + r"$\sum_{j\neq i}(\hat W_i\cdot W_j)^2$")
    fig.suptitle(f"TMS basic results (n={n}): W$^T$W and feature norms\nper feature density (lowest-loss seed)",
                 fontsize=11)
    return save_figure(fig, path)


def plot_dims(df: pd.DataFrame, path: str | Path) -> Path:
    """Left: D* = m/||W||_F^2 against 1/(1-S) per seed (thin) and their mean (thick). Right: every feature's D_i
    against 1/(1-S) (all seeds, slightly jittered), with the polytope fractions as lines."""
    fig = new_figure(12, 4.6)
    ax1, ax2 = fig.subplots(1, 2)
    d = df[df["status"] == "ok"] if "status" in df else df
    x_of = 1.0 / d["eps"].to_numpy()
    W_all = stacked(d["W"])
    dstar = metrics.dims_per_feature(W_all).numpy()
    caps = metrics.capacity(W_all).numpy()
    tab = pd.DataFrame({"x": x_of, "dstar": dstar, "seed": d["seed"].to_numpy()})
    for _, g in tab.groupby("seed"):
        g = g.sort_values("x")
        ax1.plot(g["x"], g["dstar"], "-", color="0.6", lw=0.8, alpha=0.8)
    mean = tab.groupby("x")["dstar"].mean()
    ax1.plot(mean.index, mean.values, "o-", color="k", lw=1.8, ms=4, label="mean over seeds")
    for name, f in FRACTIONS.items():
        ax1.axhline(f, color="C3" if name == "1/2" else "0.8", lw=1 if name == "1/2" else 0.6, ls="--", zorder=0)
    ax1.set_xscale("log")
    ax1.set_xlabel("1/(1-S)  (1 / feature density)")
    ax1.set_ylabel("dimensions per feature  $D^* = m/||W||_F^2$")
    ax1.set_title("D* (red dashed: 1/2, antipodal pairs)", fontsize=10)
    ax1.legend(fontsize=8)
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for x, D in zip(x_of, caps):
        xs.append(x * np.exp(rng.uniform(-0.04, 0.04, size=D.size)))
        ys.append(D)
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    ax2.scatter(xs, ys, s=3, alpha=0.25, color="C0", lw=0)
    for name, f in FRACTIONS.items():
        ax2.axhline(f, color="C3", lw=0.6, ls="--", zorder=0)
        ax2.text(float(xs.max()) * 1.12, f, name, va="center", fontsize=8, color="C3")
    ax2.set_xscale("log")
    ax2.set_ylim(-0.03, 1.05)
    ax2.set_xlabel("1/(1-S)")
    ax2.set_ylabel("feature dimensionality $D_i$")
    near = np.abs(ys[:, None] - np.array(list(FRACTIONS.values()))[None]).min(1) <= 0.02
    ax2.set_title(f"$D_i$ of every feature ({100 * near.mean():.0f}% within 0.02 of a named fraction)", fontsize=10)
    n, m = np.asarray(d["W"].iloc[0]).shape[1], np.asarray(d["W"].iloc[0]).shape[0]
    fig.suptitle(f"TMS feature dimensionality (n={n}, m={m})", fontsize=11)
    return save_figure(fig, path)


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges (geometric midpoints) for log-spaced centres."""
    v = np.log(np.asarray(values, dtype=float))
    if v.size == 1:
        return np.exp(np.array([v[0] - 0.5, v[0] + 0.5]))
    mid = (v[1:] + v[:-1]) / 2
    return np.exp(np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]]))


def plot_phase(df: pd.DataFrame, path: str | Path) -> Path:
    """n=2, m=1 phase diagram: which solution the lowest-loss restart found per cell (left), beside the analytic
    prediction of docs/papers.md §2.3 (right); the analytic boundary is drawn on both."""
    tab = phase_table(df)
    rs = np.sort(tab["importance_ratio"].unique())
    es = np.sort(tab["eps"].unique())
    code = {p: i for i, p in enumerate(PHASES)}
    emp = np.full((es.size, rs.size), np.nan)
    ana = np.full((es.size, rs.size), np.nan)
    for _, row in tab.iterrows():
        i, j = int(np.searchsorted(es, row["eps"])), int(np.searchsorted(rs, row["importance_ratio"]))
        emp[i, j] = code[row["phase"]]
        ana[i, j] = code[row["analytic"]]
    cmap = ListedColormap(PHASE_COLORS)
    norm = BoundaryNorm(np.arange(len(PHASES) + 1) - 0.5, cmap.N)
    fig = new_figure(11, 4.9)
    axes = fig.subplots(1, 2, sharey=True)
    r_line = np.geomspace(rs.min() / 1.3, rs.max() * 1.3, 300)
    agree = float((tab["phase"] == tab["analytic"]).mean())
    titles = [f"trained (lowest loss of {int(tab['restarts'].min())}+ restarts)",
              f"analytic (docs/papers.md §2.3); {100 * agree:.0f}% of cells agree"]
    for ax, data, title in zip(axes, (emp, ana), titles):
        ax.pcolormesh(_edges(rs), _edges(es), data, cmap=cmap, norm=norm, edgecolors="w", linewidth=0.3)
        ax.plot(r_line, antipodal_boundary(r_line), "k--", lw=1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(_edges(rs)[0], _edges(rs)[-1])
        ax.set_ylim(_edges(es)[0], _edges(es)[-1])
        ax.set_xlabel("relative importance of feature 2,  $r = I_2/I_1$")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("feature density 1-S")
    handles = [Rectangle((0, 0), 1, 1, color=c) for c in PHASE_COLORS]
    labels = ["only feature 1: W=[1,0]", "only feature 2: W=[0,1]", "antipodal: W=[w,-w]", "other"]
    handles.append(Line2D([], [], color="k", ls="--"))
    labels.append("analytic boundary")
    fig.legend(handles, labels, loc="outside lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle("TMS phase change, n=2 features in m=1 dimension", fontsize=11)
    return save_figure(fig, path)


def plot_capacity(df: pd.DataFrame, theory: dict[float, np.ndarray], path: str | Path) -> Path:
    """P&C: capacity C_i against importance v_i; per K the lowest-loss restart (filled markers; ranked by the
    closed-form ``expected_loss`` when present, else ``final_loss``; marked "local minimum" when its loss is > 1%
    above ``optimal_loss``) and the other restarts (open markers), with the theory's optimal allocation (dashed).
    Left K <= 3, right K > 3. ``theory`` maps K to the optimal C."""
    d = df[df["status"] == "ok"] if "status" in df else df
    rank = "expected_loss" if "expected_loss" in d else "final_loss"
    Ks = sorted(set(d["kurtosis"]))
    fig = new_figure(11, 4.3)
    axes = fig.subplots(1, 2, sharey=True)
    cmap = colormaps["viridis"]
    caps = dict(zip(d["run_id"], metrics.capacity(stacked(d["W"])).numpy()))
    panel_count = {True: 0, False: 0}
    n_panel = {True: sum(K <= 3 for K in Ks), False: sum(K > 3 for K in Ks)}
    for idx, K in enumerate(Ks):
        left = K <= 3
        ax = axes[0] if left else axes[1]
        sel = d[d["kurtosis"] == K]
        best = sel.loc[sel[rank].idxmin()]
        v = np.asarray(best["importance"])
        # small horizontal offsets so that series sitting on the same 0 / 1 values stay visible
        dx = 0.012 * (panel_count[left] - (n_panel[left] - 1) / 2)
        panel_count[left] += 1
        color = cmap(0.9 * idx / max(1, len(Ks) - 1))
        for _, r in sel.iterrows():
            if r["run_id"] != best["run_id"]:
                ax.plot(v + dx, caps[r["run_id"]], "o", mfc="none", color=color, alpha=0.45, ms=4)
        C = caps[best["run_id"]]
        local = ("optimal_loss" in best and "expected_loss" in best
                 and float(best["expected_loss"]) > 1.01 * float(best["optimal_loss"]))
        ax.plot(v + dx, C, "o", ls="none", color=color, ms=6,
                label=f"K={K:g}: sum C={C.sum():.2f}" + (" (local minimum)" if local else ""))
        if K in theory:
            ax.plot(v, theory[K], "--", color=color, lw=1.2, alpha=0.8)
    for ax, title in zip(axes, ["K <= 3 (platykurtic; K=3 Gaussian)", "K > 3 (heavy-tailed, sparse)"]):
        ax.set_xlabel("importance $v_i$")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(-0.05, 1.08)
        ax.axhline(1, color="0.85", lw=0.6, zorder=0)
        ax.axhline(0, color="0.85", lw=0.6, zorder=0)
        ax.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel("capacity $C_i$")
    n, D = np.asarray(d["W"].iloc[0]).shape[1], np.asarray(d["W"].iloc[0]).shape[0]
    fig.suptitle(f"P&C quadratic model (n={n}, D={D}): capacity of the lowest-loss restart (filled), other restarts "
                 "(open), optimal allocation (dashed)", fontsize=10)
    return save_figure(fig, path)
