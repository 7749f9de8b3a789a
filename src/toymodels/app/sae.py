"""The dashboard's SAE panels (plotly; no streamlit here): for a sweep of SAEs (``model = "sae"``), MCC against L0
over the instances, and one instance's matched decoder-vs-truth |cos| heatmap at a chosen checkpoint.

``has_dictionary(results)`` says whether a sweep's checkpoints hold a dictionary and its truth (``W_dec`` and
``truth``), so the page shows these panels without naming the family; ``sae_view`` computes one instance's panel
data (cached by the page), ``cosine_figure`` and ``mcc_l0_figure`` draw them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from toymodels.results import store
from toymodels.families.sae.figures import ARCH_COLOURS, matched_cosines

#: the checkpoint tensors that make a sweep's instances scorable dictionaries
DICTIONARY_TENSORS = ("W_dec", "truth")
#: metrics shown beside the heatmap, in order
VIEW_METRICS = ("mcc", "features_recovered", "uniqueness", "f1", "l0", "true_l0", "dead_latents", "shrinkage",
                "explained_variance", "absorption_gap")


def has_dictionary(results: store.Results, run_id: str | None = None) -> bool:
    """Whether an instance's checkpoint (default: the first instance's) holds a dictionary and its truth."""
    return store.holds_tensors(results, DICTIONARY_TENSORS, run_id)


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
