"""What the dashboard's interactive (plotly) figures share, the app's and the families' panels alike: the common
layout, the chart config, the colour bar of a :class:`~toymodels.plotting.common.ColourScale`.

Plotly is the optional ``app`` extra: only the dashboard's modules import this one (a family's dashboard module is
imported inside its ``dashboard_panel`` hook), so training never imports plotly.
"""

from __future__ import annotations

import plotly.graph_objects as go

from toymodels.plotting.common import ColourScale

#: the config of every chart the dashboard shows (no plotly logo, PNG download at twice the size)
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def layout(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    """The dashboard's common layout: white template, title top left, legend below."""
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=60 if title else 30, b=10),
                      title=dict(text=title, x=0.0, xanchor="left", font=dict(size=15)) if title else None,
                      template="plotly_white", hovermode="closest",
                      legend=dict(orientation="h", yanchor="top", y=-0.28, x=0, xanchor="left"))
    return fig


def colourbar_trace(scale: ColourScale) -> go.Scatter:
    """An invisible trace that draws the colour bar of a numeric ``ColourScale``."""
    stops = scale.gradient(11)
    return go.Scatter(
        x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
        marker=dict(colorscale=[[i / (len(stops) - 1), c] for i, c in enumerate(stops)], cmin=scale.lo,
                    cmax=scale.hi, color=[scale.lo], showscale=True,
                    colorbar=dict(title=dict(text=scale.field), tickvals=[scale.position(v) for v in scale.values],
                                  ticktext=scale.tick_labels(), thickness=14, len=0.9)),
    )
