"""Streamlit dashboard over a folder of results folders: ``toymodels app runs/``.

Run it with the CLI (``toymodels app [DIR]``) or directly::

    streamlit run src/toymodels/app.py -- runs/

What it shows, for the sweep picked in the sidebar (the first one when the page opens):

* the sweep's config and its instance table (sortable by clicking a column; filtered by swept values and status;
  clicking a row selects that instance);
* the training plot (task loss, mono neurons per feature and mean bias against the step on a log2 axis, one line per
  instance coloured by the swept value) and the final metrics against the swept value;
* for one instance (the first when the page opens): a checkpoint slider over the single-feature-activation heatmap
  (neurons sorted most-monosemantic first, features by the position of their strongest neuron) with each neuron's
  bias above it, and the mechanism analysis of ``toymodels.analysis`` (mono / poly / dead neurons, the rank of the
  polysemantic block, lone-feature losses of each block);
* two sweeps side by side (e.g. LR1 against LR3) with their config differences.

Results are read only through ``toymodels.store.load`` and cached per folder and file modification times, so a large
sweep is read once and a sweep that is still running (fewer instances than the sweep has) is re-read when its files
change; its page shows a notice and checks for new results every few seconds. A damaged folder, or one written by
another results-format version, shows the loader's message (which names the file) instead of a traceback.
The per-neuron panels need the EM model's tensors and are skipped for other model families.
"""

from __future__ import annotations

import math
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from toymodels import analysis, metrics, store

REFRESH_SECONDS = 5  # how often the page of a running sweep checks for new results
MAX_CURVE_POINTS = 400  # per training curve sent to the browser (paper runs log 8192 losses per instance)
MAX_FOLDER_DEPTH = 2  # DIR/<sweep> and DIR/<project>/<sweep>
LABELS = {
    "loss": "task loss", "final_loss": "final loss", "mono_per_feature": "mono neurons / feature",
    "features_covered": "features covered", "mean_bias": "mean bias", "dead_neurons": "dead neurons",
    "dims_per_feature": "dimensions per feature D*", "superposition": "superposition",
    "represented_features": "represented features", "sum_capacity": "total capacity",
    "mean_capacity": "mean capacity", "monosemantic_features": "monosemantic features",
}
# Per model family: the curves of the training plot, the final metrics against the swept value, and the metric
# columns the instance table shows first. Other families fall back to the loss and their first metrics.
FAMILY_METRICS = {
    "em": (("loss", "mono_per_feature", "mean_bias"), ("mono_per_feature", "final_loss", "mean_bias"),
           ("mono_per_feature", "features_covered", "mean_bias", "dead_neurons", "mono_neurons")),
    "tms": (("loss", "dims_per_feature", "superposition"), ("dims_per_feature", "superposition", "final_loss"),
            ("represented_features", "dims_per_feature", "superposition", "mean_capacity")),
    "quadratic": (("loss", "sum_capacity", "monosemantic_features"),
                  ("sum_capacity", "monosemantic_features", "final_loss"),
                  ("sum_capacity", "monosemantic_features", "fractional_features", "expected_loss")),
}


def family_metrics(results: store.Results) -> tuple[list[str], list[str], list[str]]:
    """(training curves, final metrics, table columns) for this sweep's model family, those that were saved."""
    kind = results.sweep.base.model.model
    saved = [n for n in pd.unique(results.metrics["name"]) if n != "loss"]
    training, final, table = FAMILY_METRICS.get(kind, (("loss", *saved[:2]), (*saved[:2], "final_loss"), saved[:4]))
    cols = results.instances.columns
    return ([n for n in training if n == "loss" or n in saved], [n for n in final if n in cols],
            [n for n in table if n in cols])


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


KIND_COLOURS = {"mono": "#2a9d8f", "poly": "#e76f51", "dead": "#adb5bd"}
COLOURSCALE = "Viridis"
COLOUR_RANGE = (0.0, 0.88)  # Viridis' last yellows are hard to see on white
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


# ---- finding and reading results folders (no streamlit here: testable without a server) ----------------------
def is_results_folder(path: Path) -> bool:
    return (path / "sweep.json").exists() or (path / "groups").is_dir()


def find_results(root: Path, depth: int = MAX_FOLDER_DEPTH) -> list[Path]:
    """``root`` itself when it is a results folder, else the results folders up to ``depth`` levels below it."""
    root = Path(root)
    if is_results_folder(root):
        return [root]
    found: list[Path] = []
    if depth <= 0 or not root.is_dir():
        return found
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found.extend(find_results(child, depth - 1))
    return found


def signature(folder: Path) -> tuple:
    """Modification times and sizes of the files ``store.load`` reads: the cache key of a folder's contents."""
    folder = Path(folder)
    paths = [folder, folder / "sweep.json", folder / "groups"]
    groups = folder / "groups"
    if groups.is_dir():
        for gdir in sorted(groups.iterdir()):
            paths += [gdir / "DONE", gdir / "instances.parquet", gdir / "metrics.parquet",
                      gdir / "checkpoints.safetensors"]
    sig = []
    for p in paths:
        try:
            st_ = p.stat()
        except OSError:
            continue
        sig.append((str(p.relative_to(folder)), st_.st_mtime_ns, st_.st_size))
    return tuple(sig)


def load_or_error(folder: Path) -> tuple[store.Results | None, str | None]:
    """``store.load``, with its ResultsError (or anything unexpected from a malformed folder) as a message."""
    try:
        return store.load(folder), None
    except store.ResultsError as err:
        return None, str(err)
    except Exception as err:  # e.g. a valid Parquet file holding some other table
        return None, f"{folder}: not readable as toymodels results ({type(err).__name__}: {err})"


def swept_fields(results: store.Results) -> list[str]:
    """The sweep's varying fields that are columns of the instance table."""
    return [f for f in results.sweep.swept_fields() if f in results.instances.columns]


def short_value(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def instance_label(row: pd.Series, fields: Sequence[str]) -> str:
    parts = [f"{f}={short_value(row[f])}" for f in fields if f in row]
    status = "" if row.get("status", "ok") == "ok" else f" [{row['status']}]"
    return " · ".join([str(row["run_id"]), *parts]) + status


def filter_instances(df: pd.DataFrame, chosen: dict[str, list]) -> pd.DataFrame:
    """Keep rows whose value of each field is among the chosen ones (an empty choice keeps everything)."""
    mask = pd.Series(True, index=df.index)
    for field, values in chosen.items():
        if values:
            mask &= df[field].isin(values)
    return df[mask]


def table_columns(df: pd.DataFrame, fields: Sequence[str], metric_columns: Sequence[str],
                  all_columns: bool) -> list[str]:
    """run_id, the swept fields, status, final loss and the family's metrics first (all columns on request)."""
    first = ["run_id", *fields]
    first += [c for c in ("status", "final_loss", *metric_columns, "diverged_at") if c in df.columns and c not in first]
    if not all_columns:
        return first
    return first + [c for c in df.columns if c not in first]


# ---- colours --------------------------------------------------------------------------------------------------
def _is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values)


@dataclass
class Colours:
    """Colour of each value of one field: a continuous scale for numbers (log when they span 10x), else a palette."""

    field: str | None
    values: list[Any]

    def __post_init__(self) -> None:
        self.values = sorted(set(self.values), key=lambda v: (str(type(v)), v))
        self.numeric = bool(self.values) and _is_numeric(self.values) and len(self.values) > 1
        pos = self.numeric and min(self.values) > 0
        self.log = bool(pos and max(self.values) / min(self.values) >= 10)
        if self.numeric:
            t = [self._t(v) for v in self.values]
            self.lo, self.hi = min(t), max(t)

    def _t(self, v: Any) -> float:
        return math.log10(v) if self.log else float(v)

    def fraction(self, v: Any) -> float:
        if self.numeric:
            span = self.hi - self.lo
            return (self._t(v) - self.lo) / span if span > 0 else 0.5
        return self.values.index(v) / max(1, len(self.values) - 1) if v in self.values else 0.0

    def colour(self, v: Any) -> str:
        if not self.numeric:
            palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
                       "#7f7f7f", "#bcbd22"]
            return palette[self.values.index(v) % len(palette)] if v in self.values else "#444"
        a, b = COLOUR_RANGE
        return sample_colorscale(COLOURSCALE, [a + (b - a) * self.fraction(v)])[0]

    def colourbar_trace(self, row: int | None = None, col: int | None = None) -> go.Scatter:
        """An invisible trace that draws the colour bar of a numeric field."""
        a, b = COLOUR_RANGE
        scale = [[i / 10, c] for i, c in enumerate(sample_colorscale(COLOURSCALE, list(np.linspace(a, b, 11))))]
        ticks = [self._t(v) for v in self.values]
        return go.Scatter(
            x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
            marker=dict(colorscale=scale, cmin=self.lo, cmax=self.hi, color=[self.lo], showscale=True,
                        colorbar=dict(title=dict(text=self.field), tickvals=ticks,
                                      ticktext=[short_value(v) for v in self.values], thickness=14, len=0.9)),
        )


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


# ---- figures --------------------------------------------------------------------------------------------------
def _layout(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=60 if title else 30, b=10),
                      title=dict(text=title, x=0.0, xanchor="left", font=dict(size=15)) if title else None,
                      template="plotly_white", hovermode="closest",
                      legend=dict(orientation="h", yanchor="top", y=-0.28, x=0, xanchor="left"))
    return fig


def training_figure(results: store.Results, instances: pd.DataFrame, colour_by: str | None, names: Sequence[str],
                    title: str | None = None) -> go.Figure:
    """Each metric against the step (log2 axis, plotted at step + 1), one line per instance."""
    m = results.metrics
    names = [n for n in names if (m["name"] == n).any()]
    if not names:
        return _layout(go.Figure(), 200, "no training curves saved")
    curves = m[m["run_id"].isin(set(instances["run_id"])) & m["name"].isin(names)].sort_values("step")
    by_key = {key: g for key, g in curves.groupby(["run_id", "name"], sort=False)}
    colours = Colours(colour_by, list(instances[colour_by])) if colour_by else Colours(None, [])
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[label(n) for n in names], horizontal_spacing=0.07)
    fields = [colour_by] if colour_by else []
    traces, cols, seen_legend = [], [], set()
    for _, row in instances.iterrows():
        rid = row["run_id"]
        value = row[colour_by] if colour_by else rid
        colour = colours.colour(value) if colour_by else None
        text = instance_label(row, fields)
        for j, name in enumerate(names, start=1):
            g = by_key.get((rid, name))
            if g is None:
                continue
            legend = not colours.numeric and colour_by is not None and value not in seen_legend
            seen_legend.add(value)
            x, y = thin_log(g["step"].to_numpy() + 1, g["value"].to_numpy())
            traces.append(go.Scatter(
                x=x, y=y,
                mode="lines" if name == "loss" else "lines+markers",
                line=dict(color=colour, width=1.6), marker=dict(size=4, color=colour),
                name=f"{colour_by}={short_value(value)}" if legend else text, legendgroup=str(value),
                showlegend=legend,
                hovertemplate=f"{text}<br>step+1=%{{x}}<br>{label(name)}=%{{y:.4g}}<extra></extra>",
            ))
            cols.append(j)
    if colours.numeric:
        traces.append(colours.colourbar_trace())
        cols.append(1)
    fig.add_traces(traces, rows=[1] * len(traces), cols=cols)
    tickvals, ticktext = log2_ticks(float(curves["step"].max() + 1) if len(curves) else 2.0)
    fig.update_xaxes(type="log", tickvals=tickvals, ticktext=ticktext, title_text="step + 1", showgrid=True)
    if names[0] == "loss":
        loss = curves.loc[curves["name"] == "loss", "value"]
        ticks = log_ticks(loss[loss > 0].min(), loss.max()) if (loss > 0).any() else []
        fig.update_yaxes(type="log", tickvals=ticks or None, ticktext=[short_value(t) for t in ticks] or None,
                         row=1, col=1)
    return _layout(fig, 360, title)


def sweep_figure(instances: pd.DataFrame, x_field: str | None, names: Sequence[str], group_by: Sequence[str] = (),
                 title: str | None = None) -> go.Figure:
    """Final metrics against the swept value: a marker per instance, a line through the mean over seeds.

    Other swept fields (``group_by``) get one line each; diverged instances are left out.
    """
    names = [n for n in names if n in instances.columns]
    fig = make_subplots(rows=1, cols=max(1, len(names)), subplot_titles=[label(n) for n in names],
                        horizontal_spacing=0.07)
    if not names or instances.empty:
        return _layout(fig, 200, title or "no final metrics")
    x_field = x_field or "run_id"
    colours = Colours(x_field, list(instances[x_field]))
    group_by = [g for g in group_by if g in instances.columns and g != x_field]
    groups = instances.groupby(group_by, sort=True) if group_by else [((), instances)]
    dashes = ["solid", "dash", "dot", "dashdot", "longdash"]
    traces, cols = [], []
    for gi, (key, g) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        gname = ", ".join(f"{f}={short_value(v)}" for f, v in zip(group_by, key)) or "mean over seeds"
        ok = g[g["status"] == "ok"] if "status" in g.columns else g
        text = [instance_label(r, [x_field, *group_by]) for _, r in ok.iterrows()]
        marker_colours = [colours.colour(v) for v in ok[x_field]]
        for j, name in enumerate(names, start=1):
            mean = ok.groupby(x_field, sort=True)[name].mean().reset_index()
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
    if colours.log:
        fig.update_xaxes(type="log")
    elif not colours.numeric:
        fig.update_xaxes(type="category")
    fig.update_xaxes(title_text=x_field, tickvals=list(colours.values) if colours.numeric else None,
                     ticktext=[short_value(v) for v in colours.values] if colours.numeric else None)
    return _layout(fig, 330, title)


def sort_neurons(sfa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heatmap order of a (k, N) sfa: neurons most-monosemantic first, features by where their strongest neuron is.

    Mono neurons (the paper's criterion, ``metrics.MONO_THRESHOLD``) come first, ordered by their own feature so
    that neurons of one feature sit together; then the other live neurons by the paper's ratio (positive part,
    ``metrics.mono_ratio``), highest first; dead neurons last. Each feature then sorts by the position of the neuron
    that responds to it most strongly (features no neuron responds to go last), which puts the mono neurons on a
    diagonal.
    """
    a = np.clip(sfa, 0, None)
    ratio = a.max(1) / (metrics.RATIO_EPS + a.sum(1))
    dead = a.max(1) <= 0
    mono = (ratio > metrics.MONO_THRESHOLD) & ~dead
    own = np.where(mono, a.argmax(1), 0)
    neuron_order = np.lexsort((np.arange(len(ratio)), -np.where(mono, 0.0, ratio), own, ~mono, dead))
    pos = np.empty_like(neuron_order)
    pos[neuron_order] = np.arange(len(neuron_order))
    feature_order = np.lexsort((-a.max(0), pos[a.argmax(0)], a.max(0) <= 0))
    return neuron_order, feature_order


def neuron_figure(view: dict[str, Any], title: str) -> go.Figure:
    """Bias per neuron (top) above the sfa heatmap (features x neurons), neurons in the same sorted order."""
    no, fo = view["neuron_order"], view["feature_order"]
    sfa = view["sfa"][no][:, fo]
    kinds = np.asarray(view["kinds"])[no]
    bias = view["bias"][no]
    xs = [f"n{n}" for n in no]
    ys = [f"f{f}" for f in fo]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.24, 0.76], vertical_spacing=0.03)
    for kind in ("mono", "poly", "dead"):
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
    fig = _layout(fig, 560, title)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.01, x=1, xanchor="right"))
    fig.update_xaxes(showticklabels=False, categoryorder="array", categoryarray=xs)
    fig.update_xaxes(title_text=f"neuron (most monosemantic first; {len(xs)} neurons)", row=2, col=1)
    fig.update_yaxes(title_text="bias", zeroline=True, zerolinecolor="#555", row=1, col=1)
    fig.update_yaxes(showticklabels=False, autorange="reversed", title_text=f"feature ({len(ys)}, by strongest neuron)",
                     categoryorder="array", categoryarray=ys, row=2, col=1)
    return fig


def singular_values_figure(sv: Sequence[float], m: int) -> go.Figure:
    """The leading singular values of the poly block (at most m are non-zero: it factors through E)."""
    sv = list(sv)[: 2 * m]
    fig = go.Figure(go.Bar(x=list(range(1, len(sv) + 1)), y=sv, marker_color=KIND_COLOURS["poly"],
                           hovertemplate="σ%{x} = %{y:.4g}<extra></extra>", showlegend=False))
    fig.add_vline(x=m + 0.5, line_dash="dot", line_color="#555", annotation_text=f"m = {m}",
                  annotation_position="top left")
    fig.add_hline(y=analysis.RANK_TOLERANCE * max(sv), line_dash="dot", line_color="#999",
                  annotation_text="1% of σ₁ (rank cut-off)", annotation_position="top right")
    fig.update_xaxes(title_text="index", range=[0.5, len(sv) + 0.5])
    fig.update_yaxes(title_text="σ")
    return _layout(fig, 300, "singular values of the poly block W2·W1·E")


def config_differences(a: store.Results, b: store.Results) -> pd.DataFrame:
    """Flat fields whose base value or grid differs between two sweeps."""
    fa, fb = a.sweep.base.flat(), b.sweep.base.flat()
    na, nb = a.folder.name, b.folder.name
    if na == nb:
        na, nb = str(a.folder), str(b.folder)
    rows = []
    for key in fa:
        va = a.sweep.grid.get(key, fa[key])
        vb = b.sweep.grid.get(key, fb.get(key))
        if va != vb:
            rows.append({"field": key, na: str(va), nb: str(vb)})
    if a.sweep.seeds != b.sweep.seeds:
        rows.append({"field": "seeds", na: str(a.sweep.seeds), nb: str(b.sweep.seeds)})
    return pd.DataFrame(rows)


def neuron_view(results: store.Results, run_id: str, step: int) -> dict[str, Any]:
    """Everything the instance panel draws at one checkpoint (plain numpy / pandas, so streamlit can cache it)."""
    import torch

    p = results.params(run_id, step)
    nl = str(results.row(run_id)["nonlinearity"])
    W1, b1, W2, E = (p[k].to(torch.float64) for k in ("W1", "b1", "W2", "E"))
    sfa = metrics.single_feature_activations(W1[None], b1[None], E[None], nl)[0]
    summary = analysis.explain_summary(W1, b1, W2, E, nl)
    table = summary["neurons"]
    neuron_order, feature_order = sort_neurons(sfa.numpy())
    scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {
        "sfa": sfa.numpy(), "bias": b1.numpy(), "kinds": list(table["kind"]), "neuron_order": neuron_order,
        "feature_order": feature_order, "neurons": table, "summary": scalars,
        "singular_values": summary["poly_singular_values"].tolist(), "m": int(E.shape[0]),
    }


MECHANISM_ROWS = [
    ("n_mono", "mono neurons", "fire for one lone feature (ratio > 0.999)"),
    ("n_poly", "poly neurons", "live but not mono"),
    ("n_dead", "dead neurons", "fire for no lone feature"),
    ("poly_rank", "rank of poly block", "singular values of W2[:,poly] W1[poly] E above 1% of the largest (≤ m)"),
    ("poly_linear_fraction", "poly linear fraction",
     "share of (poly neuron, feature, amplitude) with pre-activation > 0"),
    ("gram_c", "fit c", "poly block ≈ c·EᵀE + d"),
    ("gram_d", "fit d", ""),
    ("gram_residual", "fit residual", "‖M − c·EᵀE − d‖ / ‖M‖ (small: a low-rank linear decoder)"),
    ("loss_full", "loss: full model", "lone-feature decoder loss, amplitudes 0…1"),
    ("loss_mono", "loss: mono block only", ""),
    ("loss_poly", "loss: poly block only", ""),
    ("loss_zero", "loss: no neurons", ""),
]


def mechanism_table(summary: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for key, quantity, meaning in MECHANISM_ROWS:
        if key in summary:
            v = summary[key]
            rows.append({"quantity": quantity, "value": "n/a" if isinstance(v, float) and math.isnan(v)
                         else short_value(v), "meaning": meaning})
    return pd.DataFrame(rows)


# ---- the page -------------------------------------------------------------------------------------------------
def root_from_argv(argv: Sequence[str]) -> Path:
    """The folder of results folders: first argument after ``--``, else $TOYMODELS_RUNS, else ``runs``."""
    args = [a for a in argv[1:] if not a.startswith("-")]
    return Path(args[0] if args else os.environ.get("TOYMODELS_RUNS", "runs")).expanduser()


def main() -> None:  # pragma: no cover - exercised by tests/test_app.py in a browser
    import streamlit as st

    st.set_page_config(page_title="toymodels", page_icon=":material/blur_on:", layout="wide")

    @st.cache_resource(max_entries=32, show_spinner="Reading results…")
    def cached_load(folder: str, sig: tuple) -> tuple[store.Results | None, str | None]:
        return load_or_error(Path(folder))

    def get(folder: Path) -> tuple[store.Results | None, str | None]:
        return cached_load(str(folder), signature(folder))

    def loaded(folder: str, sig: tuple) -> store.Results:
        results, err = cached_load(folder, sig)
        if results is None:
            raise store.ResultsError(err)
        return results

    @st.cache_data(max_entries=64, show_spinner="Probing neurons…")
    def cached_view(folder: str, sig: tuple, run_id: str, step: int) -> dict[str, Any]:
        return neuron_view(loaded(folder, sig), run_id, step)

    # Figures of a large sweep take a second to build: cache them, so other widgets stay responsive.
    @st.cache_data(max_entries=64, show_spinner=False)
    def cached_training(folder: str, sig: tuple, run_ids: tuple, colour_by: str | None, names: tuple,
                        title: str | None = None) -> go.Figure:
        results = loaded(folder, sig)
        shown = results.instances[results.instances["run_id"].isin(run_ids)]
        return training_figure(results, shown, colour_by, list(names), title=title)

    @st.cache_data(max_entries=64, show_spinner=False)
    def cached_final(folder: str, sig: tuple, run_ids: tuple, x_field: str | None, names: tuple, group_by: tuple,
                     title: str | None = None) -> go.Figure:
        results = loaded(folder, sig)
        shown = results.instances[results.instances["run_id"].isin(run_ids)]
        return sweep_figure(shown, x_field, list(names), list(group_by), title=title)

    cache = SimpleNamespace(get=get, view=cached_view, training=cached_training, final=cached_final)

    root = root_from_argv(sys.argv)
    folders = find_results(root)
    names = [str(f.relative_to(root)) if f != root else f.name for f in folders]

    with st.sidebar:
        st.title("toymodels")
        st.caption(f"results in `{root}`")
        if not root.exists():
            st.error(f"No folder `{root}`. Train a sweep first: `toymodels run LR1 --scale quick`.")
            st.stop()
        if not folders:
            st.warning(f"No results folders in `{root}` yet. Train one: "
                       f"`toymodels run LR1 --scale quick --out {root / 'LR1-quick'}`.")
            st.stop()
        captions = []
        for f in folders:
            res, err = get(f)
            if res is None:
                captions.append(":material/error: cannot read")
            elif not res.complete:
                captions.append(f":material/hourglass_top: running: {len(res.instances)}/"
                                f"{len(res.sweep.instances())} instances")
            else:
                swept = ", ".join(res.sweep.swept_fields()) or "single run"
                captions.append(f"{len(res.instances)} instances · {swept}")
        wanted = st.query_params.get("sweep")
        index = names.index(wanted) if wanted in names else 0
        choice = st.radio("Sweep", names, index=index, captions=captions, key="sweep")
        st.query_params["sweep"] = choice
        if st.button("Reload from disk", help="results are re-read automatically when their files change"):
            st.cache_resource.clear()
            st.cache_data.clear()
            st.rerun()

    folder = folders[names.index(choice)]
    results, err = get(folder)
    st.header(choice)
    if results is None:
        st.error(f"This results folder cannot be read.\n\n{err}", icon=":material/error:")
        st.caption("The folder is damaged or was written by another version of toymodels. Re-run the sweep "
                   "(`toymodels run … --out …`), or `--resume` it if it was interrupted.")
        watch_folder(st, folder)
        return
    try:
        sweep_page(st, results, folder, cache, names, folders)
    except store.ResultsError as e:  # e.g. a damaged checkpoints file, found when an instance is opened
        st.error(f"This results folder cannot be read.\n\n{e}", icon=":material/error:")
    except Exception as e:  # a message, not a page-wide traceback; the details stay one click away
        st.error(f"Could not show this results folder: {type(e).__name__}: {e}", icon=":material/error:")
        with st.expander("details"):
            st.exception(e)


def watch_folder(st, folder: Path) -> None:  # pragma: no cover - browser test
    """Rerun the page when the folder's files change (checked every REFRESH_SECONDS)."""
    sig = signature(folder)

    @st.fragment(run_every=REFRESH_SECONDS)
    def watch() -> None:
        if signature(folder) != sig:
            st.rerun(scope="app")

    watch()


def sweep_page(st, results, folder, cache, names, folders) -> None:  # pragma: no cover - browser test
    sweep = results.sweep
    n_total = len(sweep.instances())
    inst = results.instances
    base = sweep.base.flat()
    fields = swept_fields(results)
    training_names, final_names, table_metrics = family_metrics(results)
    ck = choice_key(folder)

    # -- summary line and config
    facts = [f"**{base['model']}** model", f"task **{base['task']}**",
             f"N={base['N']}, m={base['m']}" + (f", k={base['k']}" if base["model"] == "em" else ""),
             f"{base['optimizer']} · {base['schedule']}", f"{base['steps']:,} steps × batch {base['batch_size']}"]
    st.markdown(" · ".join(facts))
    grid = "; ".join(f"`{k}` ∈ {{{', '.join(short_value(v) for v in vals)}}}" for k, vals in sweep.grid.items())
    st.markdown(f"Sweeps {grid or 'nothing'}" + (f" × {sweep.seeds} seeds" if sweep.seeds > 1 else "")
                + f" · {n_total} instances")
    with st.expander("Config and provenance"):
        c1, c2 = st.columns(2)
        c1.dataframe(pd.DataFrame({"field": list(base), "base value": [str(v) for v in base.values()]}),
                     hide_index=True, height=300)
        c2.json({"grid": sweep.grid, "seeds": sweep.seeds,
                 **{k: results.meta.get(k) for k in ("toymodels_version", "torch_version", "git_commit", "device")}},
                expanded=True)

    if not results.complete:
        st.warning(f"Sweep still running: {len(inst)} of {n_total} instances finished. This page checks for new "
                   f"results every {REFRESH_SECONDS} s.", icon=":material/hourglass_top:")
        watch_folder(st, folder)
    if inst.empty:
        st.info("No finished instances yet.")
        return

    # -- instance table with filters
    st.subheader("Instances")
    filter_fields = [f for f in fields if inst[f].nunique() > 1] + (["status"] if "status" in inst.columns else [])
    cols = st.columns(len(filter_fields) + 1, vertical_alignment="bottom")
    chosen = {}
    for col, f in zip(cols, filter_fields):
        options = sorted(inst[f].unique().tolist(), key=lambda v: (str(type(v)), v))
        chosen[f] = col.multiselect(f, options, format_func=short_value, placeholder="all", key=f"filter_{ck}_{f}")
    all_cols = cols[-1].toggle("all columns", key=f"allcols_{ck}")
    shown = filter_instances(inst, chosen)
    if shown.empty:
        st.info("No instance matches these filters; showing all.")
        shown = inst
    table = shown[table_columns(shown, fields, table_metrics, all_cols)].reset_index(drop=True)
    inst_key = f"instance_{ck}"
    run_ids = list(shown["run_id"])

    def pick_row() -> None:
        rows = st.session_state[f"table_{ck}"].selection.rows
        if rows:
            st.session_state[inst_key] = table["run_id"].iloc[rows[0]]

    with st.container(key="instance-table"):
        st.dataframe(table, hide_index=True, on_select=pick_row, selection_mode="single-row", key=f"table_{ck}",
                     height=min(400, 38 + 35 * len(table)),
                     column_config={c: st.column_config.NumberColumn(format="%.4g") for c in table.columns
                                    if pd.api.types.is_float_dtype(table[c])})
    st.caption(f"{len(shown)} of {len(inst)} instances · click a column header to sort, a row to open that "
               "instance below")

    # -- training and sweep plots
    st.subheader("Training")
    colour_by = fields[0] if fields else None
    if len(fields) > 1:
        colour_by = st.radio("colour by", fields, horizontal=True, key=f"colour_{ck}")
    with st.container(key="training-figure"):
        sig, ids = signature(folder), tuple(shown["run_id"])
        st.plotly_chart(cache.training(str(folder), sig, ids, colour_by, tuple(training_names)),
                        config=PLOTLY_CONFIG, key=f"train_{ck}")
    others = tuple(f for f in fields if f != colour_by and f != "seed")
    st.plotly_chart(cache.final(str(folder), sig, ids, colour_by, tuple(final_names), others,
                                title=f"final metrics against {colour_by or 'instance'}"),
                    config=PLOTLY_CONFIG, key=f"final_{ck}")

    # -- one instance
    st.subheader("One instance")
    if base["model"] != "em":
        st.info(f"The per-neuron panels (single-feature activations, biases, mechanism) are for EM models; "
                f"this sweep's model is '{base['model']}'.", icon=":material/info:")
    else:
        if st.session_state.get(inst_key) not in run_ids:
            st.session_state[inst_key] = run_ids[0]
        labels = {rid: instance_label(row, fields) for rid, (_, row) in zip(run_ids, shown.iterrows())}
        c1, c2 = st.columns([1, 2])
        run_id = c1.selectbox("Instance", run_ids, format_func=labels.get, key=inst_key)
        steps = results.checkpoint_steps(run_id)
        step = c2.select_slider("Checkpoint step", steps, value=steps[-1], key=f"step_{ck}_{run_id}",
                                format_func=lambda s: f"{s}" + (" (final)" if s == steps[-1] else ""))
        view = cache.view(str(folder), signature(folder), run_id, int(step))
        s = view["summary"]
        title = (f"single-feature activations · {labels[run_id]} · step {step} · "
                 f"{s['n_mono']} mono, {s['n_poly']} poly, {s['n_dead']} dead")
        with st.container(key="sfa-figure"):
            st.plotly_chart(neuron_figure(view, title), config=PLOTLY_CONFIG, key="sfa")
        st.markdown("**Mechanism** (`toymodels.analysis.explain_summary`): mono neurons threshold their own "
                    "feature; the polysemantic block acts as a low-rank linear map.")
        m1, m2 = st.columns([3, 2])
        with m1, st.container(key="mechanism"):
            st.table(mechanism_table(s).set_index("quantity"))
        with m2:
            if view["singular_values"] and max(view["singular_values"]) > 0:
                st.plotly_chart(singular_values_figure(view["singular_values"], view["m"]), config=PLOTLY_CONFIG)
            else:
                st.caption("No polysemantic neurons at this step.")
        with st.expander("Per-neuron table (`explain_instance`)"):
            st.dataframe(view["neurons"].iloc[view["neuron_order"]], hide_index=True, height=320)

    # -- compare
    st.subheader("Compare two sweeps")
    other_names = [n for n, f in zip(names, folders) if f != folder]
    if not other_names:
        st.caption("Only one results folder here: nothing to compare with.")
        return
    other_name = st.selectbox("Compare with", ["—", *other_names], key=f"compare_{ck}")
    if other_name == "—":
        return
    other, err = cache.get(folders[names.index(other_name)])
    if other is None:
        st.error(f"Cannot read {other_name}.\n\n{err}", icon=":material/error:")
        return
    if other.instances.empty:
        st.info(f"{other_name} has no finished instances yet.")
        return
    diff = config_differences(results, other)
    if not diff.empty:
        st.caption("Config differences")
        st.dataframe(diff, hide_index=True)
    figures = compare_figures([(names[folders.index(folder)], results), (other_name, other)])
    for col, (train_fig, final_fig) in zip(st.columns(2), figures):
        with col:
            st.plotly_chart(train_fig, config=PLOTLY_CONFIG)
            st.plotly_chart(final_fig, config=PLOTLY_CONFIG)


def compare_figures(sweeps: Sequence[tuple[str, store.Results]]) -> list[tuple[go.Figure, go.Figure]]:
    """For each sweep: its main training curve and its final metrics, with shared y ranges where metrics match."""
    out, ranges = [], {}
    for name, res in sweeps:
        f = swept_fields(res)
        cb = f[0] if f else None
        training_names, final_names, _ = family_metrics(res)
        main = [n for n in training_names if n != "loss"][:1] or training_names[:1]
        finals = final_names[:2]
        out.append((training_figure(res, res.instances, cb, main, title=name),
                    sweep_figure(res.instances, cb, finals, [x for x in f[1:] if x != "seed"])))
        for n in main:
            v = res.metrics.loc[res.metrics["name"] == n, "value"]
            ranges.setdefault(("train", n), []).extend([v.min(), v.max()])
        for n in finals:
            v = res.instances[n]
            ranges.setdefault(("final", n), []).extend([v.min(), v.max()])
    for (name, res), (train_fig, final_fig) in zip(sweeps, out):
        training_names, final_names, _ = family_metrics(res)
        main = [n for n in training_names if n != "loss"][:1] or training_names[:1]
        for j, n in enumerate(main, start=1):
            lo, hi = _padded(ranges[("train", n)])
            if n != "loss":
                train_fig.update_yaxes(range=[lo, hi], row=1, col=j)
        for j, n in enumerate(final_names[:2], start=1):
            lo, hi = _padded(ranges[("final", n)])
            final_fig.update_yaxes(range=[lo, hi], row=1, col=j)
    return out


def _padded(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    pad = 0.06 * (hi - lo) if hi > lo else 0.5 * abs(hi) or 0.5
    return lo - pad, hi + pad


def choice_key(folder: Path) -> str:
    """A short, stable widget-key suffix for a folder (widget states are kept per sweep)."""
    return f"{zlib.crc32(str(folder).encode()):08x}"


if __name__ == "__main__":
    main()
