"""The dashboard's polytope-lens section (docs/papers.md §6), for a sweep whose family has ReLU layers (its
``relu_layers`` hook): one instance's 2D slice through the plane of two features, coloured by polytope, with the
first layer's boundaries and the features' directions (key ``polytope-slice``), and the lens against the swept
field at the final checkpoints (key ``polytope-lens``) with its table (key ``polytope-table``).

``slice_plotly`` and ``lens_plotly`` build the plotly figures (no streamlit); ``polytope_section`` lays them out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from toymodels.families.polytope import has_lens, lens_table, slice_view
from toymodels.plotting.common import CATEGORY_COLOURS, sort_key
from toymodels.plotting.interactive import PLOTLY_CONFIG, layout
from toymodels.report.polytope import LENS_UNAVAILABLE
from toymodels.results.store import Results, load
from toymodels.results.tables import format_value, py_value, setting_fields

#: lines of the lens figure: (column, label, dash)
LENS_LINES = (("code_purity", "code purity", "solid"), ("code_completeness", "code completeness", "dash"),
              ("neuron_purity", "neuron purity", "dashdot"), ("neuron_completeness", "neuron completeness", "dot"))
#: columns of the lens table shown
TABLE_COLUMNS = ("code_purity", "code_completeness", "neuron_purity", "neuron_completeness", "origin_share",
                 "ray_codes", "data_codes", "between_density", "within_density", "density_ratio", "validity_lower",
                 "validity_upper")


def slice_plotly(view: dict[str, Any], title: str) -> go.Figure:
    """The slice of ``families.polytope.slice_view``: polytopes as a heatmap of colours, boundary lines, arrows."""
    ext, coords = view["extent"], view["coords"]
    ids = view["ids"]
    palette = CATEGORY_COLOURS * 2
    scale = [[k / (len(palette) - 1), c] for k, c in enumerate(palette)]
    fig = go.Figure(go.Heatmap(x=coords, y=coords, z=(ids * 7) % len(palette), customdata=ids, colorscale=scale,
                               zmin=0, zmax=len(palette) - 1, showscale=False, opacity=0.55,
                               hovertemplate="polytope %{customdata}<extra></extra>"))
    xs = np.array([-ext, ext])
    for p, q, r in view["lines"]:
        x, y = (xs, (r - p * xs) / q) if abs(q) > abs(p) else ((r - q * xs) / p, xs)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line={"color": "#222", "width": 1}, hoverinfo="skip",
                                 showlegend=False))
    for f, ((u, v), share) in enumerate(zip(view["arrows"], view["in_plane"])):
        if share > 0.5:
            main = f in view["features"]
            fig.add_trace(go.Scatter(x=[0, u], y=[0, v], mode="lines+markers+text", text=["", str(f)],
                                     textposition="top center", showlegend=False,
                                     line={"color": "crimson" if main else "black", "width": 3 if main else 1.5},
                                     marker={"size": [0, 7]}, hovertemplate=f"feature {f}<extra></extra>"))
    fig.update_xaxes(range=[-ext, ext], constrain="domain", title=f"along feature {view['features'][0]}")
    fig.update_yaxes(range=[-ext, ext], scaleanchor="x", constrain="domain",
                     title=f"feature {view['features'][1]}, orthogonalised")
    return layout(fig, 520, title)


def lens_plotly(table: Any, field: str | None) -> go.Figure:
    """Purity and completeness of codes and of the most-active-unit partition against ``field`` (mean over the
    seeds that did not diverge), final checkpoints."""
    ok = table[table["status"] == "ok"]
    values = sorted({py_value(v) for v in ok[field]}, key=sort_key) if field else ["all"]
    numeric = bool(field) and all(isinstance(v, (int, float)) for v in values)
    xs = values if numeric else [format_value(v) for v in values]
    fig = go.Figure()
    for col, label, dash in LENS_LINES:
        ys = [float(np.nanmean((ok[ok[field] == v] if field else ok)[col].to_numpy(dtype=float))) for v in values]
        fig.add_trace(go.Scatter(x=xs, y=ys, name=label, mode="lines+markers",
                                 line={"dash": dash, "color": "#1f77b4" if "code" in col else "#ff7f0e"}))
    fig.update_yaxes(range=[-0.02, 1.02], title="fraction of lone-feature inputs")
    fig.update_xaxes(title=field or "", type="log" if numeric and min(values) > 0 and max(values) / min(values) >= 10
                     else None)
    return layout(fig, 380, "polytope lens: spline codes against the most active unit")


def polytope_section(results: Results, folder: Any, sig: tuple, inst_key: str
                     ) -> None:  # pragma: no cover - exercised by tests/app/test_app_browser.py in a browser
    """The lens section (module docstring); nothing for a family without ReLU layers."""
    if not has_lens(results) or results.instances.empty:
        return

    @st.cache_data(max_entries=8, show_spinner="Measuring the polytopes…")
    def cached_table(folder: str, sig: tuple) -> Any:
        return lens_table(load(folder), final_only=True)

    @st.cache_data(max_entries=32, show_spinner=False)
    def cached_slice(folder: str, sig: tuple, run_id: str, i: int, j: int) -> dict[str, Any] | None:
        return slice_view(load(folder), run_id, features=(i, j))

    st.subheader("Polytope lens")
    run_ids = list(results.instances["run_id"])
    run_id = st.session_state.get(inst_key) if st.session_state.get(inst_key) in run_ids else run_ids[0]
    c1, c2 = st.columns(2)
    i = int(c1.number_input("feature on the first axis", 0, 10**6, 0, key=f"poly_i_{folder}"))
    j = int(c2.number_input("feature spanning the plane with it", 0, 10**6, 1, key=f"poly_j_{folder}"))
    try:
        view = cached_slice(str(folder), sig, run_id, i, j)
        table = cached_table(str(folder), sig)
    except LENS_UNAVAILABLE as err:  # e.g. an SAE whose source folder is gone: no samples to measure with
        st.info(f"The polytope lens cannot read this folder's training data: {err}", icon=":material/info:")
        return
    if view is None:
        st.info("This instance's model has no ReLU layer (e.g. GeLU): no polytopes.", icon=":material/info:")
        return
    with st.container(key="polytope-slice"):
        st.plotly_chart(slice_plotly(view, f"polytopes in the plane of features {view['features']} · {run_id}"),
                        config=PLOTLY_CONFIG, key="polytope-slice-chart")
        st.caption("One colour per polytope (spline code); black: the first ReLU layer's boundaries; arrows: each "
                   "feature's direction times its top training magnitude, where it lies mostly in the plane.")
    if table.empty:
        return
    fields = [f for f in setting_fields(results) if f in table.columns]
    with st.container(key="polytope-lens"):
        st.plotly_chart(lens_plotly(table, fields[0] if fields else None), config=PLOTLY_CONFIG,
                        key="polytope-lens-chart")
    with st.expander("lens table (final checkpoints; definitions: docs/papers.md §6)"), \
            st.container(key="polytope-table"):
        st.dataframe(table[["run_id", *fields, *[c for c in TABLE_COLUMNS if c in table.columns]]], hide_index=True)
