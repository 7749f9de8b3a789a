"""Controls the dashboard's per-instance panels share (streamlit)."""

from __future__ import annotations

from typing import Any, Sequence

import streamlit as st

from toymodels.app.data import instance_label
from toymodels.results.store import Results


def pick_instance_and_step(results: Results, shown: Any, fields: Sequence[str], inst_key: str, step_key: str,
                           slider: bool = True) -> tuple[str, int, dict[str, str]]:  # pragma: no cover - browser test
    """An instance of the shown rows (the first when the page opens) and one of its checkpoint steps (the final one
    by default; always the final one without a ``slider``); returns (run id, step, label of every shown run id)."""
    run_ids = list(shown["run_id"])
    if st.session_state.get(inst_key) not in run_ids:
        st.session_state[inst_key] = run_ids[0]
    labels = {rid: instance_label(row, fields) for rid, (_, row) in zip(run_ids, shown.iterrows())}
    c1, c2 = st.columns([1, 2])
    run_id = c1.selectbox("Instance", run_ids, format_func=labels.get, key=inst_key)
    steps = results.checkpoint_steps(run_id)
    if not slider:
        return run_id, int(steps[-1]), labels
    step = c2.select_slider("Checkpoint step", steps, value=steps[-1], key=f"{step_key}_{run_id}",
                            format_func=lambda s: f"{s}" + (" (final)" if s == steps[-1] else ""))
    return run_id, int(step), labels
