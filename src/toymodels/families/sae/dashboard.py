"""The SAE family's dashboard panel (``SAEFamily.dashboard_panel``; plotly, no streamlit): one SAE at a chosen
checkpoint, its matched decoder-vs-truth |cos| heatmap and its metrics at that step, beside MCC against L0 over
the sweep's SAEs.

``sae_view`` computes one instance's panel data (cached by the page), ``cosine_figure`` and ``mcc_l0_figure`` draw
them. Imported only by the hook: plotly is the optional ``app`` extra, which training never needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from toymodels.families.base import DashboardPanel, PanelFigure, PanelTable
from toymodels.families.sae.figures import ARCH_COLOURS, matched_cosines
from toymodels.results import store

#: metrics shown beside the heatmap, in order
VIEW_METRICS = ("mcc", "features_recovered", "uniqueness", "f1", "l0", "true_l0", "dead_latents", "shrinkage",
                "explained_variance", "absorption_gap")


def sae_view(results: store.Results, run_id: str, step: int | None = None) -> dict[str, Any]:
    """One SAE at a checkpoint: the matched |cos| matrix (features x latents), its metrics at that step (from
    ``metrics.parquet``; the final row's for the last step) and the architecture and width."""
    t = results.params(run_id, step)
    cos = matched_cosines(t["W_dec"].double(), t["truth"].double())
    m = results.metrics
    at = m[(m["run_id"] == run_id) & (m["step"] == step)] if step is not None else m.iloc[:0]
    row = results.row(run_id)
    values = {r["name"]: float(r["value"]) for _, r in at.iterrows()}
    if not values or step is None or step == results.checkpoint_steps(run_id)[-1]:
        values = {k: float(row[k]) for k in VIEW_METRICS if k in row.index and pd.notna(row[k])}
    return {"cos": cos, "metrics": {k: values[k] for k in VIEW_METRICS if k in values},
            "arch": str(row["sae_arch"]), "width": int(row["sae_width"])}


def cosine_figure(view: dict[str, Any], title: str) -> go.Figure:
    """The matched |cos| heatmap: a bright diagonal is a recovered dictionary."""
    cos = view["cos"]
    fig = go.Figure(go.Heatmap(z=cos, zmin=0, zmax=1, colorscale="Viridis", colorbar={"title": "|cos|"},
                               hovertemplate="feature %{y}<br>latent #%{x}<br>|cos| %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="SAE latent (matched order)", yaxis_title="true feature",
                      yaxis_autorange="reversed", height=420, margin={"t": 50, "b": 40})
    return fig


def mcc_l0_figure(inst: pd.DataFrame) -> go.Figure:
    """MCC against L0 over the sweep's ok SAEs, one colour per architecture, with the true L0 dashed."""
    d = inst[(inst["status"] == "ok") & inst["mcc"].notna()] if "mcc" in inst else inst.iloc[:0]
    fig = go.Figure()
    for (arch, width), g in d.groupby(["sae_arch", "sae_width"], sort=True):
        g = g.sort_values("l0")
        fig.add_trace(go.Scatter(x=g["l0"], y=g["mcc"], mode="lines+markers", name=f"{arch}, width {width}",
                                 marker={"color": ARCH_COLOURS.get(arch, "gray")}, text=g["run_id"],
                                 hovertemplate="%{text}<br>L0 %{x:.3g}<br>MCC %{y:.3f}<extra></extra>"))
    if len(d) and d["true_l0"].notna().any():
        fig.add_vline(x=float(d["true_l0"].mean()), line_dash="dash", line_color="gray",
                      annotation_text="true L0")
    fig.update_layout(title="MCC against L0", xaxis_title="L0 (active latents per sample)", yaxis_title="MCC",
                      xaxis_type="log", yaxis_range=[0, 1.02], height=380, margin={"t": 50, "b": 40})
    return fig


def metrics_table(view: dict[str, Any]) -> pd.DataFrame:
    """The view's metrics as a two-column table."""
    return pd.DataFrame({"metric": list(view["metrics"]),
                         "value": [float(np.round(v, 4)) for v in view["metrics"].values()]})


# ---- the panel ----------------------------------------------------------------------------------------------------
def panel_figures(view: dict[str, Any], heading: str) -> list[PanelFigure]:
    title = f"decoder vs true features · {heading} · {view['arch']}, width {view['width']}"
    return [PanelFigure("sae-figure", cosine_figure(view, title))]


def panel_tables(view: dict[str, Any]) -> list[PanelTable]:
    return [PanelTable("sae-metrics", "", metrics_table(view), index="metric")]


def sweep_figures(instances: pd.DataFrame) -> list[PanelFigure]:
    return [PanelFigure("sae-mcc-l0", mcc_l0_figure(instances))]


PANEL = DashboardPanel(view=sae_view, figures=panel_figures, tables=panel_tables, sweep_figures=sweep_figures,
                       split=(2, 3))
