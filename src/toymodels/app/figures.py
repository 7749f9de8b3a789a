"""The dashboard's sweep figures (plotly): training curves, final metrics against the swept value, two sweeps side
by side. Colours come from ``toymodels.plotting.common.ColourScale``, the scale of the report's figures too; metric
names and labels from the model family's ``presentation``; the layout and chart config every dashboard figure shares
(a family's panel too) from ``toymodels.plotting.interactive``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from toymodels.results import store
from toymodels.plotting.common import CATEGORY_COLOURS, ColourScale
from toymodels.plotting.ticks import spaced_labels
from toymodels.report.parts import PART
from toymodels.plotting.interactive import colourbar_trace, layout
from toymodels.config.registry import get_family
from toymodels.results.tables import format_value, seed_stats
from toymodels.app.data import family_metrics, instance_label, swept_fields

MAX_CURVE_POINTS = 400  # per training curve sent to the browser (paper runs log 8192 losses per instance)
PAGE_WIDTH_PX = 1100  # about the width of a figure across the dashboard's page (its "wide" layout)
TICK_FONT_PX = 12  # plotly's tick labels


# ---- axes -------------------------------------------------------------------------------------------------------
def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks covering [lo, hi] for a log axis (every decade only when it spans more than three)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 or hi <= 0:
        return []
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mantissas = (1, 2, 5) if last - first <= 4 else (1,)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in mantissas]
    inside = [t for t in ticks if lo <= t <= hi]
    below = [t for t in ticks if t < lo][-1:]
    above = [t for t in ticks if t > hi][:1]
    return below + inside + above if len(inside) < 2 else inside


def thin_log(x: np.ndarray, y: np.ndarray, points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``points`` points of a curve, evenly spaced on a log x axis (a long loss log stays light)."""
    if len(x) <= points:
        return x, y
    idx = np.unique(np.round(np.geomspace(1, len(x), points)).astype(int) - 1)
    return x[idx], y[idx]


def log2_ticks(max_x: float) -> tuple[list[float], list[str]]:
    top = max(1, math.ceil(math.log2(max(1.0, max_x))))
    every = 1 if top <= 10 else 2 if top <= 20 else 4
    js = list(range(0, top + 1, every))
    return [2.0**j for j in js], [f"2<sup>{j}</sup>" for j in js]


# ---- figures ----------------------------------------------------------------------------------------------------
def training_figure(results: store.Results, instances: pd.DataFrame, colour_by: str | None, names: Sequence[str],
                    title: str | None = None) -> go.Figure:
    """Each metric against the step (log2 axis, plotted at step + 1), one line per instance."""
    label = get_family(results.sweep.base.model.model).presentation.label
    m = results.metrics
    names = [n for n in names if (m["name"] == n).any()]
    if not names:
        return layout(go.Figure(), 200, "no training curves saved")
    curves = m[m["run_id"].isin(set(instances["run_id"])) & m["name"].isin(names)].sort_values("step")
    by_key = {key: g for key, g in curves.groupby(["run_id", "name"], sort=False)}
    scale = ColourScale(colour_by, list(instances[colour_by]) if colour_by else [])
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[label(n) for n in names], horizontal_spacing=0.07)
    fields = [colour_by] if colour_by else []
    traces, cols, seen_legend = [], [], set()
    for _, row in instances.iterrows():
        rid = row["run_id"]
        value = row[colour_by] if colour_by else rid
        colour = scale.colour(value) if colour_by else None
        text = instance_label(row, fields)
        for j, name in enumerate(names, start=1):
            g = by_key.get((rid, name))
            if g is None:
                continue
            legend = not scale.numeric and colour_by is not None and value not in seen_legend
            seen_legend.add(value)
            x, y = thin_log(g["step"].to_numpy() + 1, g["value"].to_numpy())
            traces.append(go.Scatter(
                x=x, y=y,
                mode="lines" if name == "loss" else "lines+markers",
                line=dict(color=colour, width=1.6), marker=dict(size=4, color=colour),
                name=f"{colour_by}={format_value(value)}" if legend else text, legendgroup=str(value),
                showlegend=legend,
                hovertemplate=f"{text}<br>step+1=%{{x}}<br>{label(name)}=%{{y:.4g}}<extra></extra>",
            ))
            cols.append(j)
    if scale.numeric:
        traces.append(colourbar_trace(scale))
        cols.append(1)
    fig.add_traces(traces, rows=[1] * len(traces), cols=cols)
    tickvals, ticktext = log2_ticks(float(curves["step"].max() + 1) if len(curves) else 2.0)
    fig.update_xaxes(type="log", tickvals=tickvals, ticktext=ticktext, title_text="step + 1", showgrid=True)
    if names[0] == "loss":
        loss = curves.loc[curves["name"] == "loss", "value"]
        ticks = log_ticks(loss[loss > 0].min(), loss.max()) if (loss > 0).any() else []
        fig.update_yaxes(type="log", tickvals=ticks or None, ticktext=[format_value(t) for t in ticks] or None,
                         row=1, col=1)
    return layout(fig, 360, title)


def sweep_figure(results: store.Results, instances: pd.DataFrame, x_field: str | None, names: Sequence[str],
                 group_by: Sequence[str] = (), title: str | None = None) -> go.Figure:
    """Final metrics against the swept value: a marker per instance, a line through the mean over seeds
    (``tables.seed_stats``). Other swept fields (``group_by``) get one line each; diverged instances are left out.
    """
    label = get_family(results.sweep.base.model.model).presentation.label
    names = [n for n in names if n in instances.columns]
    fig = make_subplots(rows=1, cols=max(1, len(names)), subplot_titles=[label(n) for n in names],
                        horizontal_spacing=0.07)
    if not names or instances.empty:
        return layout(fig, 200, title or "no final metrics")
    x_field = x_field or "run_id"
    scale = ColourScale(x_field, list(instances[x_field]))
    group_by = [g for g in group_by if g in instances.columns and g != x_field]
    groups = instances.groupby(group_by, sort=True) if group_by else [((), instances)]
    dashes = ["solid", "dash", "dot", "dashdot", "longdash"]
    traces, cols = [], []
    for gi, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        gname = ", ".join(f"{f}={format_value(v)}" for f, v in zip(group_by, key)) or "mean over seeds"
        ok = g[g["status"] == "ok"]
        text = [instance_label(r, [x_field, *group_by]) for _, r in ok.iterrows()]
        marker_colours = [scale.colour(v) for v in ok[x_field]]
        means = seed_stats(g, [x_field], names)
        for j, name in enumerate(names, start=1):
            mean = means.dropna(subset=[name])
            traces.append(go.Scatter(
                x=mean[x_field], y=mean[name], mode="lines", hoverinfo="skip",
                line=dict(color="#999", width=1.3, dash=dashes[gi % len(dashes)]),
                name=gname, legendgroup=gname, showlegend=j == 1 and bool(group_by),
            ))
            traces.append(go.Scatter(
                x=ok[x_field], y=ok[name], mode="markers", showlegend=False, text=text,
                marker=dict(size=10, color=marker_colours, line=dict(width=1, color="white")),
                hovertemplate=f"%{{text}}<br>{label(name)}=%{{y:.4g}}<extra></extra>",
            ))
            cols += [j, j]
    fig.add_traces(traces, rows=[1] * len(traces), cols=cols)
    if scale.log:
        fig.update_xaxes(type="log")
    elif not scale.numeric:
        fig.update_xaxes(type="category")
    fig.update_xaxes(title_text=x_field, tickvals=list(scale.values) if scale.numeric else None,
                     ticktext=readable_labels(scale, len(names)) if scale.numeric else None)
    return layout(fig, 330, title)


def readable_labels(scale: ColourScale, panels: int) -> list[str]:
    """The swept values' tick labels, those that would overlap their neighbours blank (``plotting.ticks``): a
    panel of ``panels`` side by side is about ``PAGE_WIDTH_PX / panels`` wide."""
    return spaced_labels([scale.fraction(v) for v in scale.values], scale.tick_labels(),
                         length=0.85 * PAGE_WIDTH_PX / max(1, panels), font_size=TICK_FONT_PX)


def parts_figure(instances: pd.DataFrame, label: Callable[[str], str], names: Sequence[str],
                 title: str | None = None) -> go.Figure:
    """A study's final metrics ``names`` of every instance that did not diverge, one column of markers per part
    (``instances`` with a ``part`` column: ``report.parts.combined_instances``), the part's mean as a bar."""
    ok = instances[instances["status"] == "ok"] if "status" in instances else instances
    names = [n for n in names if n in ok.columns and ok[n].notna().any()]
    fig = make_subplots(rows=1, cols=max(1, len(names)), subplot_titles=[label(n) for n in names],
                        horizontal_spacing=0.07)
    if not names or ok.empty:
        return layout(fig, 200, title or "no final metrics")
    parts = list(dict.fromkeys(ok[PART]))
    traces, cols = [], []
    for j, name in enumerate(names, start=1):
        for i, part in enumerate(parts):
            rows = ok[ok[PART] == part]
            colour = CATEGORY_COLOURS[i % len(CATEGORY_COLOURS)]
            traces.append(go.Box(y=rows[name], name=part, marker_color=colour, boxpoints="all", jitter=0.4,
                                 pointpos=0, showlegend=False, text=rows["run_id"], boxmean=True,
                                 hovertemplate=f"%{{text}}<br>{label(name)}=%{{y:.4g}}<extra>{part}</extra>"))
            cols.append(j)
    fig.add_traces(traces, rows=[1] * len(traces), cols=cols)
    return layout(fig, 360, title)


def compare_figures(sweeps: Sequence[tuple[str, store.Results]]) -> list[tuple[go.Figure, go.Figure]]:
    """For each sweep: its main training curve and its final metrics, with shared y ranges where metrics match."""
    out, ranges, shown = [], {}, []
    for name, res in sweeps:
        f = swept_fields(res)
        cb = f[0] if f else None
        training_names, final_names, _ = family_metrics(res)
        main = [n for n in training_names if n != "loss"][:1] or training_names[:1]
        finals = final_names[:2]
        shown.append((main, finals))
        out.append((training_figure(res, res.instances, cb, main, title=name),
                    sweep_figure(res, res.instances, cb, finals, [x for x in f[1:] if x != "seed"])))
        for n in main:
            v = res.metrics.loc[res.metrics["name"] == n, "value"]
            ranges.setdefault(("train", n), []).extend([v.min(), v.max()])
        for n in finals:
            v = res.instances[n]
            ranges.setdefault(("final", n), []).extend([v.min(), v.max()])
    for (train_fig, final_fig), (main, finals) in zip(out, shown):
        for j, n in enumerate(main, start=1):
            if n != "loss":
                train_fig.update_yaxes(range=list(padded(ranges[("train", n)])), row=1, col=j)
        for j, n in enumerate(finals, start=1):
            final_fig.update_yaxes(range=list(padded(ranges[("final", n)])), row=1, col=j)
    return out


def padded(values: Sequence[float]) -> tuple[float, float]:
    """The range of the finite values, 6% wider (0..1 when there are none)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    pad = 0.06 * (hi - lo) if hi > lo else 0.5 * abs(hi) or 0.5
    return lo - pad, hi + pad
