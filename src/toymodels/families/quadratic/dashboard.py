"""The quadratic family's dashboard panel (``QuadraticFamily.dashboard_panel``; plotly, no streamlit): one instance
at a chosen checkpoint, each feature's capacity C_i beside the optimal allocation of the capacity theory, its W^T W,
and its numbers (expected against optimal loss).

``view`` is ``capacity.capacity_view`` (cached by the page); the functions below draw it. Imported only by the hook:
plotly is the optional ``app`` extra, which training never needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from toymodels.families.base import DashboardPanel, PanelFigure, PanelTable
from toymodels.families.quadratic.capacity import capacity_counts, capacity_view
from toymodels.plotting.interactive import layout
from toymodels.results.tables import format_number


def capacity_figure(view: dict[str, Any], title: str) -> go.Figure:
    """C_i per feature (bars, features by importance) with the theory's optimal C_i (diamonds)."""
    order = np.argsort(-view["importance"])
    names = [f"f{i} (v={view['importance'][i]:.3g})" for i in order]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=view["capacity"][order], name="trained C_i", marker_color="#4C72B0",
                         hovertemplate="%{x}<br>C_i %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=names, y=view["theory"][order], mode="markers", name="optimal C_i (theory)",
                             marker=dict(symbol="diamond", size=11, color="#DD8452", line=dict(width=1, color="#333")),
                             hovertemplate="%{x}<br>optimal C_i %{y:.3f}<extra></extra>"))
    for y in (view["tolerance"], 1 - view["tolerance"]):
        fig.add_hline(y=y, line_dash="dot", line_color="#aaa")
    fig.update_yaxes(title_text="capacity C_i", range=[0, 1.08])
    fig.update_xaxes(title_text="feature (most important first)")
    return layout(fig, 400, title)


def gram_figure(view: dict[str, Any]) -> go.Figure:
    """W^T W: the diagonal M_ii is each feature's squared norm, off-diagonal entries are shared dimensions."""
    gram = view["gram"]
    vmax = float(np.abs(gram).max()) or 1.0
    names = [f"f{i}" for i in range(gram.shape[0])]
    fig = go.Figure(go.Heatmap(z=np.round(gram, 4), x=names, y=names, zmin=-vmax, zmax=vmax, colorscale="RdBu",
                               reversescale=True, colorbar=dict(title=dict(text="WᵀW"), thickness=12),
                               hovertemplate="%{y} · %{x}<br>%{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return layout(fig, 360, "WᵀW")


def metrics_table(view: dict[str, Any]) -> pd.DataFrame:
    """The instance's numbers at this step."""
    counts = capacity_counts(view["capacity"], view["tolerance"])
    gap = view["expected_loss"] / view["optimal_loss"] - 1 if view["optimal_loss"] > 0 else float("nan")
    rows = [("kurtosis K", format_number(view["kurtosis"])), ("hidden size D", str(view["D"])),
            ("total capacity Σ C_i", f"{format_number(float(view['capacity'].sum()))} (theory "
                                     f"{format_number(float(view['theory'].sum()))})"),
            *((f"{name} features", str(c)) for name, c in counts.items()),
            ("expected loss", format_number(view["expected_loss"])),
            ("optimal loss (theory)", format_number(view["optimal_loss"])),
            ("above the optimum", "-" if not np.isfinite(gap) else f"{100 * gap:.2f}%"
             + (" (not at the optimum)" if view["off_optimum"] else "")),
            ("bias b", format_number(view["bias"]))]
    return pd.DataFrame(rows, columns=["quantity", "value"])


def features_table(view: dict[str, Any]) -> pd.DataFrame:
    """One row per feature: importance, trained and optimal capacity, squared norm."""
    return pd.DataFrame({"feature": np.arange(view["capacity"].size), "importance v_i": np.round(view["importance"], 4),
                         "C_i": np.round(view["capacity"], 4), "optimal C_i": np.round(view["theory"], 4),
                         "M_ii = ‖W_i‖²": np.round(view["norms2"], 4)})


# ---- the panel ----------------------------------------------------------------------------------------------------
def panel_figures(view: dict[str, Any], heading: str) -> list[PanelFigure]:
    """The capacities against the theory (spans the page), then W^T W."""
    return [PanelFigure("pc-figure", capacity_figure(view, f"capacity allocation · {heading}")),
            PanelFigure("pc-gram", gram_figure(view))]


def panel_tables(view: dict[str, Any]) -> list[PanelTable]:
    """The instance's numbers beside the figures, the per-feature table folded below."""
    return [PanelTable("pc-metrics", "**Capacity** of this instance at this step", metrics_table(view),
                       index="quantity"),
            PanelTable("pc-features", "Per-feature table", features_table(view), index="feature", folded=True)]


PANEL = DashboardPanel(view=capacity_view, figures=panel_figures, tables=panel_tables, split=(2, 3))
