"""The TMS family's dashboard panel (``TMSFamily.dashboard_panel``; plotly, no streamlit): one instance at a chosen
checkpoint, its W^T W beside the feature norms coloured by superposition, its columns W_i in the hidden plane
(hidden size 2) and every feature's dimensionality D_i on the polytope fractions, with its numbers.

``tms_view`` computes one instance's panel data (``geometry.feature_geometry``; cached by the page); the other
functions draw it. Imported only by the hook: plotly is the optional ``app`` extra, which training never needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from toymodels.families.base import DashboardPanel, PanelFigure, PanelTable
from toymodels.families.tms.geometry import POLYTOPE_FRACTIONS, feature_geometry, fraction_counts
from toymodels.plotting.interactive import layout
from toymodels.results import store
from toymodels.results.tables import format_number


def tms_view(results: store.Results, run_id: str, step: int) -> dict[str, Any]:
    """One instance at a checkpoint: ``feature_geometry`` of its tensors at that step (plain numpy)."""
    return feature_geometry(results.params(run_id, step))


def geometry_figure(view: dict[str, Any], title: str) -> go.Figure:
    """W^T W (features x features) beside the feature norms ||W_i||, each bar coloured by its superposition."""
    gram, n = view["gram"], view["gram"].shape[0]
    vmax = max(1.0, float(np.abs(gram).max()))
    features = [f"f{i}" for i in range(n)]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.12,
                        subplot_titles=["WᵀW", "feature norms ‖W_i‖ (colour: superposition)"])
    fig.add_trace(go.Heatmap(z=np.round(gram, 4), x=features, y=features, zmin=-vmax, zmax=vmax, colorscale="RdBu",
                             reversescale=True, colorbar=dict(title=dict(text="WᵀW"), x=0.46, thickness=12),
                             hovertemplate="%{y} · %{x}<br>%{z:.3f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=view["norms"], y=features, orientation="h", showlegend=False,
                         marker=dict(color=np.clip(view["superposition"], 0, 1), colorscale="Inferno", cmin=0, cmax=1,
                                     line=dict(width=0.5, color="#444"),
                                     colorbar=dict(title=dict(text="superposition"), thickness=12)),
                         customdata=np.stack([view["superposition"], view["dims"]], axis=1),
                         hovertemplate="%{y}<br>‖W_i‖ %{x:.3f}<br>superposition %{customdata[0]:.3f}"
                                       "<br>D_i %{customdata[1]:.3f}<extra></extra>"), row=1, col=2)
    fig.add_vline(x=view["threshold"], line_dash="dot", line_color="#888", row=1, col=2)
    fig.update_yaxes(autorange="reversed", showticklabels=n <= 40)
    fig.update_xaxes(showticklabels=n <= 40, row=1, col=1)
    fig.update_xaxes(title_text=f"‖W_i‖ (dotted: {view['threshold']:g}, represented above)", row=1, col=2)
    return layout(fig, 460, title)


def plane_figure(view: dict[str, Any]) -> go.Figure:
    """Hidden size 2: each column W_i as an arrow from the origin, coloured by importance (dotted: norm 1)."""
    W, imp = view["W"], view["importance"]
    lo, hi = float(imp.min()), float(imp.max())
    fig = go.Figure()
    t = np.linspace(0, 2 * np.pi, 100)
    fig.add_trace(go.Scatter(x=np.cos(t), y=np.sin(t), mode="lines", line=dict(color="#bbb", dash="dot"),
                             hoverinfo="skip", showlegend=False))
    for i in np.argsort(-imp):
        fig.add_trace(go.Scatter(x=[0, W[0, i]], y=[0, W[1, i]], mode="lines+markers", showlegend=False,
                                 line=dict(width=3, color=_viridis((imp[i] - lo) / (hi - lo) if hi > lo else 0.5)),
                                 marker=dict(size=[0, 9], symbol="arrow", angleref="previous"),
                                 hovertemplate=f"feature {i}<br>importance {imp[i]:.3g}<br>"
                                               f"‖W_i‖ {view['norms'][i]:.3f}<extra></extra>"))
    lim = max(1.3, 1.1 * float(view["norms"].max()))
    fig.update_xaxes(range=[-lim, lim], zeroline=True, showticklabels=False)
    fig.update_yaxes(range=[-lim, lim], zeroline=True, showticklabels=False, scaleanchor="x", scaleratio=1)
    return layout(fig, 380, "columns W_i in the hidden plane (colour: importance; yellow: the highest)")


def _viridis(t: float) -> str:
    return sample_colorscale("Viridis", [float(t)])[0]


def dims_figure(view: dict[str, Any]) -> go.Figure:
    """Each feature's dimensionality D_i, with the polytope fractions dotted."""
    dims = view["dims"]
    fig = go.Figure(go.Bar(x=[f"f{i}" for i in range(dims.size)], y=dims, marker_color="#4C72B0", showlegend=False,
                           hovertemplate="%{x}<br>D_i %{y:.3f}<extra></extra>"))
    for name, f in POLYTOPE_FRACTIONS.items():
        fig.add_hline(y=f, line_dash="dot", line_color="#c44", line_width=1, annotation_text=name,
                      annotation_position="right", annotation_font_size=10)
    fig.update_yaxes(title_text="D_i", range=[0, 1.08])
    fig.update_xaxes(title_text="feature", showticklabels=dims.size <= 40)
    return layout(fig, 320, f"feature dimensionalities D_i (D* = {view['dims_per_feature']:.3g})")


def metrics_table(view: dict[str, Any]) -> pd.DataFrame:
    """The instance's numbers at this step: represented features, D*, superposition and the D_i counts."""
    rep = view["norms"] > view["threshold"]
    rows = [("represented features", f"{view['represented']} of {view['norms'].size}"),
            ("D* = m / ‖W‖²_F", format_number(view["dims_per_feature"])),
            ("superposition (mean over represented)",
             format_number(float(view["superposition"][rep].mean()) if rep.any() else 0.0)),
            ("total capacity Σ D_i", format_number(float(view["dims"].sum()))),
            ("mean bias", format_number(float(view["bias"].mean())))]
    rows += [(f"features with D_i ≈ {k}" if k[0].isdigit() else f"features {k}", str(c))
             for k, c in fraction_counts(view["dims"]).items() if c]
    return pd.DataFrame(rows, columns=["quantity", "value"])


def features_table(view: dict[str, Any]) -> pd.DataFrame:
    """One row per feature: importance, norm, superposition, D_i, bias."""
    return pd.DataFrame({"feature": np.arange(view["dims"].size), "importance": np.round(view["importance"], 4),
                         "norm ‖W_i‖": np.round(view["norms"], 4), "superposition": np.round(view["superposition"], 4),
                         "D_i": np.round(view["dims"], 4), "bias": np.round(view["bias"], 4)})


# ---- the panel ----------------------------------------------------------------------------------------------------
def panel_figures(view: dict[str, Any], heading: str) -> list[PanelFigure]:
    """The geometry (spans the page), then the hidden plane (hidden size 2) and the dimensionalities."""
    figures = [PanelFigure("tms-figure", geometry_figure(view, f"feature geometry · {heading}"))]
    if view["W"].shape[0] == 2:
        figures.append(PanelFigure("tms-plane", plane_figure(view)))
    figures.append(PanelFigure("tms-dims", dims_figure(view)))
    return figures


def panel_tables(view: dict[str, Any]) -> list[PanelTable]:
    """The instance's numbers beside the figures, the per-feature table folded below."""
    return [PanelTable("tms-metrics", "**Geometry** of this instance at this step", metrics_table(view),
                       index="quantity"),
            PanelTable("tms-features", "Per-feature table", features_table(view), index="feature", folded=True)]


PANEL = DashboardPanel(view=tms_view, figures=panel_figures, tables=panel_tables, split=(2, 3))
