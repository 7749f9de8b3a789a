"""The EM family's dashboard panel (``EMFamily.dashboard_panel``; plotly, no streamlit): one instance at one
checkpoint, its single-feature activations with each neuron's bias above them, and the mechanism of
``analysis`` (mono / narrow / broad / dead neurons, the broad block's fit and rank, lone-feature losses of each
block) with the broad block's singular values and the per-neuron table.

It applies to checkpoints that hold a neuron layer (``analysis.has_neurons``). Neurons and features are in
``metrics.neuron_order``, as in the report's figures. Imported only by the hook: plotly is the optional ``app``
extra, which training never needs.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from toymodels import metrics
from toymodels.families.base import DashboardPanel, PanelFigure, PanelTable
from toymodels.families.em import analysis
from toymodels.plotting.interactive import layout
from toymodels.results import store
from toymodels.results.tables import format_number

KIND_COLOURS = {"mono": "#2a9d8f", "narrow": "#9b5de5", "broad": "#e76f51", "dead": "#adb5bd"}
MECHANISM_ROWS = [
    ("n_mono", "mono neurons", "fire for one lone feature (ratio > 0.999)"),
    ("n_narrow", "narrow neurons", "live, not mono, fire for < N/4 lone features (near-mono)"),
    ("n_broad", "broad neurons", "live, not mono, fire for ≥ N/4 lone features (residual polysemantic)"),
    ("n_dead", "dead neurons", "fire for no lone feature"),
    ("broad_positive_bias", "broad: positive bias", "share of broad neurons with b > 0"),
    ("broad_linear_fraction", "broad linear fraction",
     "share of (training-like input, broad neuron) with pre-activation > 0"),
    ("broad_rank", "rank of broad block",
     "singular values of W2[:,B] W1[B] E above 1% of the largest (≤ m by construction)"),
    ("gram_c", "fit c", "broad block's linear part M ≈ c·EᵀE"),
    ("gram_residual", "fit residual", "‖M − c·EᵀE‖ / ‖M‖ (small: a low-rank approximation of the identity)"),
    ("offset_mean", "offset W2_B·b_B", "the broad block's constant output, mean over outputs"),
    ("loss_full", "loss: full model", "lone-feature decoder loss, amplitudes 0…1"),
    ("loss_without_broad", "loss: without broad block", ""),
    ("loss_mono", "loss: mono block only", ""),
    ("loss_broad", "loss: broad block only", ""),
    ("loss_zero", "loss: no neurons", ""),
]


def neuron_view(results: store.Results, run_id: str, step: int) -> dict[str, Any]:
    """Everything the instance panel draws at one checkpoint (plain numpy / pandas, so streamlit can cache it)."""
    p = results.params(run_id, step)
    nl = str(results.row(run_id)["nonlinearity"])
    W1, b1, W2, E = (p[k].to(torch.float64) for k in analysis.NEURON_TENSORS)
    sfa = metrics.single_feature_activations(W1[None], b1[None], E[None], nl)
    neuron_order, feature_order = (order[0].numpy() for order in metrics.neuron_order(sfa))
    summary = analysis.instance_summary(results, run_id, step)
    table = summary["neurons"]
    scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {
        "sfa": sfa[0].numpy(), "bias": b1.numpy(), "kinds": list(table["kind"]), "neuron_order": neuron_order,
        "feature_order": feature_order, "neurons": table, "summary": scalars,
        "singular_values": summary["broad_singular_values"].tolist(), "m": int(E.shape[0]),
    }


def neuron_figure(view: dict[str, Any], title: str) -> go.Figure:
    """Bias per neuron (top) above the sfa heatmap (features x neurons), neurons in the same display order."""
    no, fo = view["neuron_order"], view["feature_order"]
    sfa = view["sfa"][no][:, fo]
    kinds = np.asarray(view["kinds"])[no]
    bias = view["bias"][no]
    xs = [f"n{n}" for n in no]
    ys = [f"f{f}" for f in fo]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.24, 0.76], vertical_spacing=0.03)
    for kind in analysis.KINDS:
        sel = kinds == kind
        if sel.any():
            fig.add_trace(go.Bar(x=[x for x, s in zip(xs, sel) if s], y=bias[sel], name=f"{kind} ({int(sel.sum())})",
                                 marker=dict(color=KIND_COLOURS[kind], line=dict(width=0)),
                                 hovertemplate="%{x}<br>bias=%{y:.3f}<extra>" + kind + "</extra>"), row=1, col=1)
    # ReLU: white = silent. GeLU / SoLU also respond negatively: a diverging scale with white at 0.
    signed = float(sfa.min()) < -1e-6
    scale = dict(colorscale="RdBu_r", zmid=0.0) if signed else dict(colorscale="Blues", zmin=0.0)
    fig.add_trace(go.Heatmap(
        z=np.round(sfa.T, 4), x=xs, y=ys, **scale,
        colorbar=dict(title=dict(text="activation"), thickness=14, len=0.72, y=0.36),
        hovertemplate="neuron %{x}<br>feature %{y}<br>activation %{z:.3f}<extra></extra>",
    ), row=2, col=1)
    fig.update_layout(bargap=0, barmode="overlay")
    fig = layout(fig, 560, title)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.01, x=1, xanchor="right"))
    fig.update_xaxes(showticklabels=False, categoryorder="array", categoryarray=xs)
    fig.update_xaxes(title_text=f"neuron (mono first, by feature; {len(xs)} neurons)", row=2, col=1)
    fig.update_yaxes(title_text="bias", zeroline=True, zerolinecolor="#555", row=1, col=1)
    fig.update_yaxes(showticklabels=False, autorange="reversed", title_text=f"feature ({len(ys)}, by strongest neuron)",
                     categoryorder="array", categoryarray=ys, row=2, col=1)
    return fig


def singular_values_figure(sv: Sequence[float], m: int) -> go.Figure:
    """The leading singular values of the broad block (at most m are non-zero: it factors through E)."""
    sv = list(sv)[: 2 * m]
    fig = go.Figure(go.Bar(x=list(range(1, len(sv) + 1)), y=sv, marker_color=KIND_COLOURS["broad"],
                           hovertemplate="σ%{x} = %{y:.4g}<extra></extra>", showlegend=False))
    fig.add_vline(x=m + 0.5, line_dash="dot", line_color="#555", annotation_text=f"m = {m}",
                  annotation_position="top left")
    fig.add_hline(y=analysis.RANK_TOLERANCE * max(sv), line_dash="dot", line_color="#999",
                  annotation_text="1% of σ₁ (rank cut-off)", annotation_position="top right")
    fig.update_xaxes(title_text="index", range=[0.5, len(sv) + 0.5])
    fig.update_yaxes(title_text="σ")
    return layout(fig, 300, "singular values of the broad block W2·W1·E")


def mechanism_table(summary: dict[str, Any]) -> pd.DataFrame:
    """The mechanism numbers of ``neuron_view``'s summary: quantity, value, meaning."""
    rows = []
    for key, quantity, meaning in MECHANISM_ROWS:
        if key in summary:
            v = summary[key]
            value = "n/a" if isinstance(v, float) and math.isnan(v) else format_number(v)
            rows.append({"quantity": quantity, "value": value, "meaning": meaning})
    return pd.DataFrame(rows)


# ---- the panel ----------------------------------------------------------------------------------------------------
def panel_figures(view: dict[str, Any], heading: str) -> list[PanelFigure]:
    """The heatmap with biases (titled with the neuron counts), then the broad block's singular values."""
    s = view["summary"]
    title = (f"single-feature activations · {heading} · "
             f"{s['n_mono']} mono, {s['n_narrow']} narrow, {s['n_broad']} broad, {s['n_dead']} dead")
    sv = view["singular_values"]
    spectrum = (PanelFigure("singular-values", singular_values_figure(sv, view["m"])) if sv and max(sv) > 0 else
                PanelFigure("singular-values", None, "No polysemantic neurons at this step."))
    return [PanelFigure("sfa-figure", neuron_figure(view, title)), spectrum]


def panel_tables(view: dict[str, Any]) -> list[PanelTable]:
    """The mechanism numbers, and the per-neuron table (folded) in the heatmap's neuron order."""
    return [
        PanelTable("mechanism", "**Mechanism** (`toymodels.families.em.analysis.explain_summary`): mono neurons "
                   "threshold their own feature; the broad polysemantic block acts as a low-rank linear map.",
                   mechanism_table(view["summary"]), index="quantity"),
        PanelTable("neuron-table", "Per-neuron table (`explain_instance`)",
                   view["neurons"].iloc[view["neuron_order"]], index="neuron", folded=True),
    ]


PANEL = DashboardPanel(view=neuron_view, figures=panel_figures, tables=panel_tables, split=(3, 2))
