"""The grokking family's dashboard panel (``GrokkingFamily.dashboard_panel``; plotly, no streamlit): one instance,
its loss and accuracy curves with the phases shaded and the chosen checkpoint marked, the embedding's Fourier
spectrum and how many neurons each frequency explains at that checkpoint, its numbers; over the sweep, the weight
decay x training fraction phase diagram.

Imported only by the hook: plotly is the optional ``app`` extra, which training never needs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from toymodels.families.base import DashboardPanel, PanelFigure, PanelTable
from toymodels.families.grokking import analysis, fourier
from toymodels.families.grokking.evaluate import all_outputs
from toymodels.families.grokking.model import from_tensors
from toymodels.plotting.interactive import layout
from toymodels.results.model import instance_config
from toymodels.results.store import Results
from toymodels.results.tables import format_number

CURVES = (("loss", "train loss (every 16 steps)", "#4C72B0", "lines"), ("test_loss", "test loss", "#C44E52",
          "lines+markers"), ("train_acc", "train accuracy", "#4C72B0", "dot"), ("test_acc", "test accuracy",
          "#C44E52", "dot"))
PHASES = (("memorisation", "rgba(221,132,82,0.12)"), ("circuit formation", "rgba(129,114,179,0.12)"),
          ("cleanup", "rgba(85,168,104,0.12)"))
NUMBERS = ("train_acc", "test_acc", "train_loss", "test_loss", "n_key_freqs", "embed_gini", "logit_gini",
           "weight_norm", "restricted_loss", "excluded_loss", "neurons_explained")


@torch.no_grad()
def grok_view(results: Results, run_id: str, step: int) -> dict[str, Any]:
    """Everything the panel draws at one checkpoint (plain numpy / pandas, so streamlit can cache it)."""
    cfg = instance_config(results, run_id)
    curves = {name: analysis.curve(results, run_id, name) for name, *_ in CURVES}
    t = {k: v[None].float() for k, v in results.params(run_id, step).items()}
    _, _, neurons = all_outputs(from_tensors(t, [cfg]))
    best, share = fourier.neuron_frequencies(neurons[0])
    explained = best[share > fourier.NEURON_EXPLAINED].numpy()
    m = results.metrics
    here = m[(m["run_id"] == run_id) & (m["step"] == step)].set_index("name")["value"]
    return {"curves": {k: (v.index.to_numpy() + 1, v.to_numpy()) for k, v in curves.items()},
            "phases": analysis.phases(results, run_id), "step": step,
            "spectrum": analysis.spectrum(results, run_id, step),
            "explained": np.bincount(explained, minlength=fourier.n_frequencies(cfg.grokking.modulus) + 1)[1:],
            "numbers": {k: float(here[k]) for k in NUMBERS if k in here.index},
            "P": cfg.grokking.modulus, "neurons": int(neurons.shape[-1])}


def curves_figure(view: dict[str, Any], title: str) -> go.Figure:
    """Losses (log) and accuracies (right axis) against log(step + 1), phases shaded, the checkpoint marked."""
    fig = go.Figure()
    for name, label, colour, mode in CURVES:
        x, y = view["curves"][name]
        acc = name.endswith("_acc")
        fig.add_trace(go.Scatter(x=x, y=y, name=label, yaxis="y2" if acc else "y", mode="lines" if acc else mode,
                                 line={"color": colour, "dash": "dot" if acc else "solid", "width": 1.5}))
    last = max(float(x.max()) for x, _ in view["curves"].values() if len(x))
    p = view["phases"]
    edges = [0, p["memorisation_end"], p["cleanup_start"], p["cleanup_end"]]
    for (name, colour), lo, hi in zip(PHASES, edges[:-1], edges[1:]):
        if lo is None:
            break
        fig.add_vrect(x0=lo + 1, x1=(hi + 1) if hi is not None else last, fillcolor=colour, line_width=0,
                      annotation_text=name, annotation_position="top left")
    fig.add_vline(x=view["step"] + 1, line_dash="dash", line_color="#333")
    fig.update_layout(xaxis={"type": "log", "title": "step + 1"}, yaxis={"type": "log", "title": "cross entropy"},
                      yaxis2={"overlaying": "y", "side": "right", "range": [-0.02, 1.02], "title": "accuracy"})
    return layout(fig, 440, title)


def spectrum_figure(view: dict[str, Any]) -> go.Figure:
    """The embedding's norm per frequency at this checkpoint, key frequencies in red."""
    s = view["spectrum"]
    fig = go.Figure(go.Bar(x=s["frequency"], y=s["norm"], marker_color=np.where(s["key"], "#C44E52", "#4C72B0"),
                           hovertemplate="k=%{x}<br>norm %{y:.3g}<extra></extra>", showlegend=False))
    fig.update_xaxes(title_text="frequency k")
    fig.update_yaxes(title_text="norm of W_E's Fourier components")
    return layout(fig, 320, "embedding spectrum (red: key)")


def neuron_figure(view: dict[str, Any]) -> go.Figure:
    """How many neurons have more than 85% of their variance in each frequency."""
    counts = view["explained"]
    fig = go.Figure(go.Bar(x=np.arange(1, len(counts) + 1), y=counts, marker_color="#55A868", showlegend=False,
                           hovertemplate="k=%{x}<br>%{y} neurons<extra></extra>"))
    fig.update_xaxes(title_text="frequency k")
    fig.update_yaxes(title_text="neurons > 85% explained")
    return layout(fig, 320, f"{int(counts.sum())} of {view['neurons']} neurons explained by one frequency")


def panel_figures(view: dict[str, Any], heading: str) -> list[PanelFigure]:
    return [PanelFigure("grok-curves", curves_figure(view, f"loss and accuracy · {heading}")),
            PanelFigure("grok-spectrum", spectrum_figure(view)), PanelFigure("grok-neurons", neuron_figure(view))]


def panel_tables(view: dict[str, Any]) -> list[PanelTable]:
    keys = view["spectrum"]
    numbers = [{"quantity": k.replace("_", " "), "value": format_number(v)} for k, v in view["numbers"].items()]
    numbers.append({"quantity": "key frequencies", "value": ", ".join(
        str(int(k)) for k in keys["frequency"][keys["key"]]) or "none"})
    phases = [{"boundary": k.replace("_", " "), "step": "never" if v is None else str(v)}
              for k, v in view["phases"].items()]
    return [PanelTable("grok-numbers", "**At this checkpoint** (the family's metrics; key frequencies of this "
                       "checkpoint's embedding)", pd.DataFrame(numbers), index="quantity"),
            PanelTable("grok-phases", "**Phases** (`analysis.phases`: train accuracy 99%, test loss at half its "
                       "peak, test accuracy 99%)", pd.DataFrame(phases), index="boundary")]


def sweep_figures(instances: pd.DataFrame) -> list[PanelFigure]:
    """Final test accuracy per weight decay and training fraction, when both vary."""
    if instances.empty or any(f not in instances or instances[f].nunique() < 2 for f in ("train_frac",
                                                                                         "weight_decay")):
        return []
    table = instances.groupby(["weight_decay", "train_frac"])["test_acc"].mean().unstack("train_frac")
    fig = go.Figure(go.Heatmap(z=table.to_numpy(), x=[f"{x:g}" for x in table.columns],
                               y=[f"{y:g}" for y in table.index], zmin=0, zmax=1, colorscale="Viridis",
                               colorbar={"title": {"text": "test acc"}},
                               hovertemplate="frac %{x}, wd %{y}<br>test accuracy %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="training fraction", type="category")
    fig.update_yaxes(title_text="weight decay", type="category")
    return [PanelFigure("grok-phase", layout(fig, 380, "phase diagram: final test accuracy (mean over seeds)"))]


PANEL = DashboardPanel(view=grok_view, figures=panel_figures, tables=panel_tables, sweep_figures=sweep_figures,
                       split=(2, 3))
