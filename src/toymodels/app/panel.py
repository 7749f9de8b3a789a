"""The dashboard's panel of one instance (streamlit), whatever its family: the family's ``dashboard_panel``
(:class:`toymodels.families.base.DashboardPanel`) says what to compute and draw; this module only lays it out.

An instance picker (and a checkpoint slider when the panel has ``checkpoints``), then ``data.panel_parts``: the
first figure across the page, the tables beside the other figures (and the sweep's), folded tables last. Each
figure and table sits in a container under its panel key, so the page's element has the CSS class
``st-key-<key>`` (the browser test finds them by it).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import streamlit as st

from toymodels.app.data import instance_heading, panel_parts
from toymodels.app.widgets import pick_instance_and_step
from toymodels.families.base import DashboardPanel, PanelFigure, PanelTable
from toymodels.plotting.interactive import PLOTLY_CONFIG
from toymodels.results.store import Results

FOLDED_HEIGHT = 320  # px of a folded table (it scrolls)


def instance_panel(results: Results, panel: DashboardPanel, view_of: Callable[[str, int], dict[str, Any]],
                   shown: Any, fields: Sequence[str], inst_key: str, ck: str
                   ) -> None:  # pragma: no cover - exercised by tests/app/test_app_browser.py in a browser
    """One instance of the shown rows (the first when the page opens) at a checkpoint, in the family's panel;
    ``view_of(run_id, step)`` is the panel's view (cached by the page)."""
    run_id, step, labels = pick_instance_and_step(results, shown, fields, inst_key, f"step_{ck}",
                                                  slider=panel.checkpoints)
    parts = panel_parts(panel, view_of(run_id, step), instance_heading(labels[run_id], step), results.instances)
    for item in parts.main:
        show_figure(item)
    if parts.tables and parts.figures:
        left, right = st.columns(list(panel.split))
    else:
        left = right = st.container()
    with left:
        for table in parts.tables:
            show_table(table)
    with right:
        for item in parts.figures:
            show_figure(item)
    for table in parts.folded:
        with st.expander(table.caption), st.container(key=table.key):
            st.dataframe(table.table if table.index is None else table.table.set_index(table.index),
                         height=FOLDED_HEIGHT)


def show_figure(item: PanelFigure) -> None:  # pragma: no cover - browser test
    """A panel's figure in its keyed container, its caption under it (the caption alone when there is no figure)."""
    with st.container(key=item.key):
        if item.figure is not None:
            st.plotly_chart(item.figure, config=PLOTLY_CONFIG, key=f"{item.key}-chart")
        if item.caption:
            st.caption(item.caption)


def show_table(item: PanelTable) -> None:  # pragma: no cover - browser test
    """A panel's table in its keyed container, its caption above it."""
    with st.container(key=item.key):
        if item.caption:
            st.markdown(item.caption)
        st.table(item.table if item.index is None else item.table.set_index(item.index))
