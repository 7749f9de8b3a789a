"""The EM family's own figures: single-feature activations, biases, the multi-feature probe and the mechanism of
chosen instances (the report adds them after the generic training and swept figures).

Neurons and features are always shown in ``metrics.neuron_order`` (mono neurons first, grouped by their feature;
then by monosemanticity ratio; dead last), the order the dashboard uses too. Builders return a matplotlib
``Figure`` (None when there are no instances); savers write ``<out_dir>/<name>.png`` and return the paths.
Imported only when a figure is drawn (``EMFamily.figures``): training never needs matplotlib.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from jaxtyping import Float
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
from matplotlib.figure import Figure
from torch import Tensor

from toymodels import metrics
from toymodels.families.em.analysis import instance_config, instance_summary, most_monosemantic, neuron_kinds
from toymodels.plotting.common import instance_panels, instance_title, write_figure
from toymodels.plotting.save import new_figure
from toymodels.families.base import FigureSpec
from toymodels.families.em.evaluate import em_probe
from toymodels.results.store import Results

KIND_COLOURS = {"mono": "tab:blue", "false mono": "tab:red", "narrow": "tab:purple", "broad": "tab:orange",
                "dead": "0.6"}


def em_tensors(results: Results, run_id: str, step: int | None = None) -> tuple[dict[str, Tensor], str]:
    """One instance's tensors in float64 (exact numbers for single instances) and its nonlinearity."""
    p = results.params(run_id, step)
    return {k: v.double() for k, v in p.items()}, str(results.row(run_id)["nonlinearity"])


def sorted_sfa(W1: Float[Tensor, "neurons hidden"], b1: Float[Tensor, " neurons"],
               E: Float[Tensor, "hidden features"], nonlinearity: str) -> dict[str, Any]:
    """Single-feature activations (positive part) of one instance in display order (``metrics.neuron_order``).

    Returns ``sfa`` (neurons, features) ordered, the orders ``neurons`` and ``features``, ``mono`` and ``ratio`` per
    ordered neuron, and ``n_mono``.
    """
    sfa = metrics.single_feature_activations(W1[None], b1[None], E[None], nonlinearity)
    neurons, features = (order[0] for order in metrics.neuron_order(sfa))
    mono = metrics.is_mono(sfa)[0]
    ordered = sfa[0].clamp(min=0)[neurons][:, features]
    ratio = metrics.mono_ratio(sfa)[0]
    return {"sfa": ordered.numpy(), "neurons": neurons.numpy(), "features": features.numpy(),
            "mono": mono[neurons].numpy(), "n_mono": int(mono.sum()), "ratio": ratio[neurons].numpy()}


# --------------------------------------------------------------------------------------------- SFA heatmap
def sfa_figure(results: Results, run_ids: Sequence[str] | None = None) -> Figure | None:
    """Single-feature activation heatmaps (neurons x features) of chosen instances (default: lowest, middle and
    highest swept value), in display order; a line marks where the mono neurons end."""
    panels = instance_panels(results, run_ids, height=5.4)
    if panels is None:
        return None
    fig, axes, run_ids = panels
    for ax, rid in zip(axes, run_ids):
        p, nonlin = em_tensors(results, rid)
        s = sorted_sfa(p["W1"], p["b1"], p["E"], nonlin)
        k, N = s["sfa"].shape
        vmax = float(s["sfa"].max()) if np.isfinite(s["sfa"]).all() and s["sfa"].max() > 0 else 1.0
        im = ax.imshow(s["sfa"], aspect="auto", cmap="magma_r", vmin=0, vmax=vmax, interpolation="nearest")
        if 0 < s["n_mono"] < k:
            ax.axhline(s["n_mono"] - 0.5, color="tab:cyan", linewidth=1.5)
        title, diverged = instance_title(results, rid)
        ax.set_title(f"{title}\n{s['n_mono']} mono neurons = {s['n_mono'] / N:.2f} per feature", fontsize=9,
                     color="tab:red" if diverged else "black")
        ax.set_xlabel(f"feature (sorted by strongest neuron), N={N}")
        ax.set_ylabel(f"neuron (mono first, by feature), k={k}")
        fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02).set_label("activation on lone feature (amplitude 1)")
    fig.suptitle(f"{results.sweep.name}: single-feature activations (line: end of the mono neurons)")
    return fig


def sfa_plot(results: Results, run_ids: Sequence[str] | None = None, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/sfa.png (see ``sfa_figure``)."""
    return write_figure(results, sfa_figure(results, run_ids), "sfa", out_dir)


# ---------------------------------------------------------------------------------------------------- biases
def bias_figure(results: Results, run_ids: Sequence[str] | None = None) -> Figure | None:
    """First-layer bias of every neuron of the chosen instances, neurons in display order (as the heatmap);
    mono neurons in blue, narrow (near-mono) purple, broad (residual polysemantic) orange, dead grey."""
    panels = instance_panels(results, run_ids, height=4.4)
    if panels is None:
        return None
    fig, axes, run_ids = panels
    for ax, rid in zip(axes, run_ids):
        p, nonlin = em_tensors(results, rid)
        sfa = metrics.single_feature_activations(p["W1"][None], p["b1"][None], p["E"][None], nonlin)
        order = metrics.neuron_order(sfa)[0][0].numpy()
        kinds = np.array(neuron_kinds(sfa[0]), dtype=object)[order]
        mono = kinds == "mono"
        bias = p["b1"].numpy()[order]
        x = np.arange(len(order))
        for kind in ("mono", "narrow", "broad", "dead"):
            sel = kinds == kind
            if sel.any():
                ax.scatter(x[sel], bias[sel], s=12, color=KIND_COLOURS[kind],
                           label=f"{kind} ({int(sel.sum())}), mean bias {bias[sel].mean():.3g}")
        ax.axhline(0, color="0.3", linewidth=0.8)
        if 0 < mono.sum() < len(order):
            ax.axvline(mono.sum() - 0.5, color="tab:blue", linewidth=0.8, linestyle=":")
        title, diverged = instance_title(results, rid)
        ax.set_title(title, fontsize=9, color="tab:red" if diverged else "black")
        ax.set_xlabel("neuron (mono first, by feature; then by monosemanticity ratio)")
        ax.set_ylabel("bias b1")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{results.sweep.name}: biases of mono, polysemantic and dead neurons")
    return fig


def bias_plot(results: Results, run_ids: Sequence[str] | None = None, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/bias.png (see ``bias_figure``)."""
    return write_figure(results, bias_figure(results, run_ids), "bias", out_dir)


# ------------------------------------------------------------------------------------- multi-feature probe
def probe_figure(results: Results, run_id: str | None = None) -> Figure | None:
    """Multi-feature probe of one instance (default: ``analysis.most_monosemantic``).

    Left: does neuron n fire when every feature but j is on (display order)? Middle and right: per neuron, how many
    all-but-one inputs and how many context features make it fire, against its monosemanticity ratio. Red = "false
    mono": mono by the single-feature probe but firing without its own feature (the ``false_mono`` metric, same
    probe inputs).
    """
    run_id = run_id or most_monosemantic(results)
    if run_id is None:
        return None
    p, nonlin = em_tensors(results, run_id)
    probe = em_probe([instance_config(results, run_id)], {k: p[k][None] for k in ("W1", "b1", "E")})
    s = sorted_sfa(p["W1"], p["b1"], p["E"], nonlin)
    fires = metrics.all_but_one_fires(p["W1"][None], p["b1"][None], p["E"][None], nonlin)[0].numpy()
    grid = fires[s["neurons"]][:, s["features"]]
    k, N = grid.shape
    sfa = metrics.single_feature_activations(p["W1"][None], p["b1"][None], p["E"][None], nonlin)
    ratio = metrics.mono_ratio(sfa)[0].numpy()
    kinds = np.array(neuron_kinds(sfa[0]), dtype=object)
    kinds[probe["false_mono_neurons"][0].numpy()] = "false mono"  # mono by the single-feature probe only

    fig = new_figure(15.5, 4.8)
    axes = fig.subplots(1, 3, width_ratios=[1.1, 1, 1])
    ax = axes[0]
    ax.imshow(grid, aspect="auto", cmap=ListedColormap(["white", "tab:purple"]),
              norm=BoundaryNorm([-0.5, 0.5, 1.5], 2), interpolation="nearest")
    if 0 < s["n_mono"] < k:
        ax.axhline(s["n_mono"] - 0.5, color="black", linewidth=1.2, linestyle="--")
        ax.text(N - 1, s["n_mono"] - 1, f"{s['n_mono']} mono above", ha="right", va="bottom", fontsize=8,
                bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1))
    ax.set_xlabel("held-out feature j (SFA order)")
    ax.set_ylabel("neuron (mono first, by feature)")
    ax.set_title("fires with all features on but j (purple)", fontsize=10)
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, size=k)  # fixed: only separates equal counts
    for ax, col, ylabel in ((axes[1], "fires_all_but_one", f"all-but-one inputs that fire it (of {N})"),
                            (axes[2], "context_features", "context features (random inputs, own feature off)")):
        y = probe[col][0].numpy().astype(float)
        for kind in ("narrow", "broad", "dead", "mono", "false mono"):
            sel = kinds == kind
            if sel.any():
                ax.scatter(ratio[sel], y[sel] + jitter[sel], s=14, color=KIND_COLOURS[kind], alpha=0.8,
                           label=f"{kind} ({int(sel.sum())})", zorder=3 if "mono" in kind else 2)
        ax.axvline(metrics.MONO_THRESHOLD, color="0.4", linewidth=0.8, linestyle=":")
        ax.set_xlabel("monosemanticity ratio max/sum (mono > 0.999)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[1].set_title("dense context: all but one feature on", fontsize=10)
    axes[2].set_title("sparse context: training-like inputs", fontsize=10)
    title, diverged = instance_title(results, run_id)
    fig.suptitle(f"{results.sweep.name}: multi-feature probe of {title.splitlines()[0]}; "
                 f"{int(probe['false_mono'][0])} of {s['n_mono']} mono neurons fire without their feature"
                 + ("\nDIVERGED: last finite parameters" if diverged else ""),
                 color="tab:red" if diverged else "black")
    return fig


def probe_plot(results: Results, run_id: str | None = None, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/probe.png (see ``probe_figure``)."""
    return write_figure(results, probe_figure(results, run_id), "probe", out_dir)


# ------------------------------------------------------------------------------------------------ mechanism
def mechanism_figure(results: Results, run_id: str | None = None) -> Figure | None:
    """How the mono and broad (residual polysemantic) blocks of one instance compute (``analysis.explain_summary``,
    docs/papers.md §1.6); default instance: ``analysis.most_monosemantic``.

    (a) singular values of the broad block's linear map M = W2[:, B] W1[B] E (its numerical rank, at most m by
    construction); (b) M itself, to compare with the fit c E^T E, and its output offset W2[:, B] b1[B]; (c)
    threshold and slope of each mono neuron's response to its feature's amplitude; (d) lone-feature loss of the full
    model, without the broad block, each block alone and no neurons.
    """
    run_id = run_id or most_monosemantic(results)
    if run_id is None:
        return None
    p, _ = em_tensors(results, run_id)
    s = instance_summary(results, run_id)
    fig = new_figure(12.5, 8.6)
    (ax_sv, ax_map), (ax_mono, ax_loss) = fig.subplots(2, 2)
    _singular_values(ax_sv, s, m=p["E"].shape[0])

    M = s["broad_map"].numpy()
    lim = float(np.abs(M).max()) if M.size and np.isfinite(M).all() and np.abs(M).max() > 0 else 1.0
    im = ax_map.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax_map, shrink=0.85).set_label("M[output, feature]")
    fit = (f"fit M = c E^T E: c={s['gram_c']:.3g}, rel. residual {s['gram_residual']:.2f}; "
           f"offset W2_B b_B mean {s['offset_mean']:.3g}" if math.isfinite(s["gram_c"])
           else "no feature-to-feature fit (re-projector output, or no broad neurons)")
    ax_map.set_title(f"(b) broad block map M (linear part)\n{fit}", fontsize=10)
    ax_map.set_xlabel("input feature")
    ax_map.set_ylabel("output")

    mono = s["neurons"][s["neurons"]["kind"] == "mono"]
    if len(mono):
        top = max(abs(mono["bias"]).max(), 1e-9)
        sc = ax_mono.scatter(mono["threshold"], mono["slope"], c=mono["bias"], cmap="coolwarm", s=18,
                             norm=Normalize(-top, top))
        fig.colorbar(sc, ax=ax_mono, shrink=0.85).set_label("bias")
        ax_mono.axvline(0, color="0.4", linewidth=0.8)
        ax_mono.set_title(f"(c) {len(mono)} mono neurons: median threshold {mono['threshold'].median():.3g}, "
                          f"median slope {mono['slope'].median():.3g}", fontsize=10)
    else:
        ax_mono.text(0.5, 0.5, "no monosemantic neurons", ha="center", va="center", transform=ax_mono.transAxes)
        ax_mono.set_title("(c) mono neurons", fontsize=10)
    ax_mono.set_xlabel("threshold: feature amplitude where the neuron turns on (-b / w)")
    ax_mono.set_ylabel("slope of its output vs amplitude")
    ax_mono.grid(alpha=0.3)
    _block_losses(ax_loss, s)
    title, diverged = instance_title(results, run_id)
    fig.suptitle(f"{results.sweep.name}: mechanism of {title}", color="tab:red" if diverged else "black")
    return fig


def _singular_values(ax: Any, s: dict[str, Any], m: int) -> None:
    """(a) of the mechanism figure: the broad block's singular values relative to the largest."""
    sv = s["broad_singular_values"].numpy()
    if sv.size and sv[0] > 0:
        rel = sv / sv[0]
        idx = np.arange(1, sv.size + 1)
        keep = rel > 1e-12  # exact zeros cannot go on a log axis
        ax.semilogy(idx[keep], rel[keep], marker="o", markersize=3, color="tab:orange")
        ax.axhline(0.01, color="0.4", linewidth=0.8, linestyle=":", label="rank tolerance (1%)")
        ax.axvline(m + 0.5, color="tab:purple", linewidth=1, label=f"m = {m} (rank bound)")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no broad polysemantic neurons", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("singular value index")
    ax.set_ylabel("singular value / largest")
    ax.set_title(f"(a) broad block ({s['n_broad']} neurons): numerical rank {s['broad_rank']}", fontsize=10)
    ax.grid(alpha=0.3)


def _block_losses(ax: Any, s: dict[str, Any]) -> None:
    """(d) of the mechanism figure: lone-feature loss of the full model, without the broad block, each block alone
    and no neurons."""
    names = ["full model", "no broad", "mono only", "broad only", "no neurons"]
    vals = [s["loss_full"], s["loss_without_broad"], s["loss_mono"], s["loss_broad"], s["loss_zero"]]
    if all(math.isfinite(v) for v in vals):
        bars = ax.bar(names, vals, color=["tab:green", "tab:purple", "tab:blue", "tab:orange", "0.6"])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_ylabel("lone-feature loss (amplitudes 0..1)")
        positive = [v for v in vals if v > 0]
        if max(vals) / max(min(positive) if positive else 1, 1e-30) > 1e3:
            ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "block losses need the decoder / abs output (one per feature)", ha="center",
                va="center", transform=ax.transAxes, fontsize=9)
    ax.set_title("(d) loss of each block alone on lone features", fontsize=10)
    ax.grid(alpha=0.3, axis="y")


def mechanism_plot(results: Results, run_id: str | None = None, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/mechanism.png (see ``mechanism_figure``)."""
    return write_figure(results, mechanism_figure(results, run_id), "mechanism", out_dir)


FIGURES: list[FigureSpec] = [
    FigureSpec("sfa", sfa_plot,
               "Single-feature activations of three instances (lowest, middle, highest swept value), mono neurons "
               "first (grouped by feature). Look for a clean diagonal above the cyan line (one feature per neuron) "
               "and dense rows below it (polysemantic neurons)."),
    FigureSpec("bias", bias_plot,
               "Biases, neurons in the order of the heatmap (mono first, then by monosemanticity ratio). Look for "
               "monosemantic neurons at moderate negative bias and polysemantic ones near zero or positive."),
    FigureSpec("probe", probe_plot,
               "Multi-feature probe of the most monosemantic instance. Look for red points: neurons the "
               "single-feature probe calls monosemantic but that fire without their own feature."),
    FigureSpec("mechanism", mechanism_plot,
               "Mechanism of the most monosemantic instance. Look for a broad (residual polysemantic) block close "
               "to c E^T E (its rank is at most m by construction), mono neurons with positive thresholds, and a "
               "full model that beats each block alone."),
]
