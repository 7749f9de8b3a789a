"""The SAE family's own figures: MCC against L0 over a folder's SAEs, and the matched decoder-vs-truth cosines of
its best SAE (the report adds them after the generic training and swept figures; the dictionary-learning study
draws them too). Builders return a matplotlib ``Figure``; savers write ``<out_dir>/<name>.png``. Imported only when
a figure is drawn (``SAEFamily.figures``): training never needs matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from matplotlib.figure import Figure
from torch import Tensor

from toymodels.metrics.dictionary import abs_cosines
from toymodels.plotting.common import write_figure
from toymodels.plotting.save import new_figure
from toymodels.families.base import FigureSpec
from toymodels.results.store import Results

#: matplotlib's tab10 blue, orange, green, red as hex, so that plotly (the dashboard) reads them too
ARCH_COLOURS = {"relu_l1": "#1f77b4", "topk": "#ff7f0e", "batchtopk": "#2ca02c", "jumprelu": "#d62728"}
WIDTH_MARKERS = ["o", "s", "^", "D", "v", "P"]


def matched_cosines(D: Float[Tensor, "latents hidden"], F: Float[Tensor, "features hidden"]) -> np.ndarray:
    """|cos| (features x latents) with the latents reordered by the optimal one-to-one matching (the MCC's), so
    a perfect dictionary shows a bright diagonal; unmatched latents come last."""
    # deferred: scipy is needed only when dictionary metrics are computed or drawn
    from scipy.optimize import linear_sum_assignment

    cos = abs_cosines(D[None].double(), F[None].double())[0].T.numpy()  # features x latents
    rows, cols = linear_sum_assignment(1 - cos)
    order = list(cols[np.argsort(rows)]) + [j for j in range(cos.shape[1]) if j not in set(cols)]
    return cos[:, order]


def draw_matched_cosines(ax: Any, D: Tensor, F: Tensor, title: str) -> Any:
    """The matched |cos| heatmap of one SAE on ``ax``; returns the image (for a colour bar)."""
    im = ax.imshow(matched_cosines(D, F), vmin=0, vmax=1, cmap="viridis", aspect="auto", interpolation="nearest")
    ax.set_xlabel("SAE latent (matched order)")
    ax.set_ylabel("true feature")
    ax.set_title(title, fontsize=9)
    return im


def mcc_vs_l0_figure(df: pd.DataFrame, true_l0: float | None = None) -> Figure | None:
    """MCC against L0, one colour per architecture, one marker per width, a dashed line at the true L0."""
    d = df[df["status"] == "ok"] if "status" in df else df
    if d.empty:
        return None
    fig = new_figure(5.5, 3.8)
    ax = fig.subplots()
    widths = sorted(d["sae_width"].unique())
    for (arch, width), g in d.groupby(["sae_arch", "sae_width"], sort=True):
        g = g.sort_values("l0")
        ax.plot(g["l0"], g["mcc"], marker=WIDTH_MARKERS[widths.index(width) % len(WIDTH_MARKERS)],
                color=ARCH_COLOURS.get(arch, "0.3"), label=f"{arch}, width {width}", lw=1, ms=5)
    if true_l0 is not None:
        ax.axvline(true_l0, color="0.4", ls="--", lw=1, label="true L0")
    ax.set_xscale("log")
    ax.set_xlabel("L0 (active latents per sample)")
    ax.set_ylabel("MCC")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6, ncol=2)
    return fig


def best_instance(results: Results) -> str | None:
    """The run id of the ok SAE with the highest MCC, or None."""
    d = results.instances
    d = d[(d["status"] == "ok") & d["mcc"].notna()] if "mcc" in d else d.iloc[:0]
    return None if d.empty else str(d.sort_values("mcc", ascending=False)["run_id"].iloc[0])


def plot_matched_cosines(results: Results, run_ids: Sequence[str] | None = None,
                         out_dir: str | Path | None = None) -> list[Path]:
    """The matched decoder-vs-truth heatmap of the chosen SAEs (default: the best MCC) -> sae_cosines.png."""
    run_ids = list(run_ids) if run_ids else [r for r in [best_instance(results)] if r]
    if not run_ids:
        return []
    fig = new_figure(4.2 * len(run_ids), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(run_ids)))
    for ax, rid in zip(axes, run_ids):
        t = results.params(rid)
        row = results.row(rid)
        im = draw_matched_cosines(ax, t["W_dec"], t["truth"],
                                  f"{rid}: {row['sae_arch']}, width {row['sae_width']}, MCC {row['mcc']:.3f}")
    fig.colorbar(im, ax=list(axes), label="|cos|")
    return write_figure(results, fig, "sae_cosines", out_dir)


def plot_mcc_vs_l0(results: Results, out_dir: str | Path | None = None) -> list[Path]:
    df = results.instances
    true_l0 = float(df["true_l0"].mean()) if "true_l0" in df and df["true_l0"].notna().any() else None
    return write_figure(results, mcc_vs_l0_figure(df, true_l0), "sae_mcc_vs_l0", out_dir)


def decoder_truth(results: Results, run_id: str) -> tuple[Tensor, Tensor]:
    """(decoder directions, true directions) of one SAE of a results folder."""
    t = results.params(run_id)
    return t["W_dec"].to(torch.float64), t["truth"].to(torch.float64)


FIGURES: list[FigureSpec] = [
    FigureSpec("sae_mcc_vs_l0", lambda results, out_dir=None: plot_mcc_vs_l0(results, out_dir),
               "MCC (mean |cos| of the optimal one-to-one match of decoder and true directions) against L0; dashed: "
               "the true L0."),
    FigureSpec("sae_cosines", lambda results, out_dir=None: plot_matched_cosines(results, out_dir=out_dir),
               "The best SAE's |cos| between every true feature (rows) and every latent (columns, in matched "
               "order): a bright diagonal is a recovered dictionary."),
]
