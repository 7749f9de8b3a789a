"""The dashboard's SAE section (streamlit): for a sweep whose checkpoints hold a dictionary and its truth
(``app.sae.has_dictionary``), one chosen SAE at a chosen checkpoint (matched decoder-vs-truth |cos| heatmap and
its metrics) beside MCC against L0 over the sweep. ``main.sweep_page`` calls :func:`sae_panel` where the
per-neuron panels would go for a model with neurons."""

from __future__ import annotations

from typing import Any, Sequence

import streamlit as st

from toymodels.app.figures import PLOTLY_CONFIG
from toymodels.app.sae import cosine_figure, mcc_l0_figure, metrics_table, sae_view
from toymodels.app.widgets import pick_instance_and_step
from toymodels.results.store import Results


def sae_panel(results: Results, shown: Any, fields: Sequence[str], inst_key: str, ck: str
              ) -> None:  # pragma: no cover - exercised by tests/app/test_app_browser.py in a browser
    """One SAE (the first shown when the page opens) at a checkpoint, and MCC against L0 over the sweep."""
    run_id, step, labels = pick_instance_and_step(results, shown, fields, inst_key, f"sae_step_{ck}")
    view = sae_view(results, run_id, int(step))
    title = f"decoder vs true features · {labels[run_id]} · {view['arch']}, width {view['width']} · step {step}"
    with st.container(key="sae-figure"):
        st.plotly_chart(cosine_figure(view, title), config=PLOTLY_CONFIG, key="sae_cosines")
    m1, m2 = st.columns([2, 3])
    with m1, st.container(key="sae-metrics"):
        st.table(metrics_table(view).set_index("metric"))
    with m2:
        st.plotly_chart(mcc_l0_figure(results.instances), config=PLOTLY_CONFIG, key="sae_mcc_l0")
