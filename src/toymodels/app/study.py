"""The dashboard's page of a multi-part preset's folder (``report.parts.Study``; streamlit): its parts as one study.

What it shows: a table of the parts (what each sweeps, how far it got), then a choice between the whole study and
one part. The whole study: every setting of every part in one summary table (``report.parts.combined_summary``),
the family's final metrics part by part (``figures.parts_figure``) and the family panel's figures of the whole
sweep drawn over every part's instances (e.g. the SAEs' MCC against L0 across architectures). One part: that part's
own page (the caller's ``sweep_page``), as if it had been picked in the sidebar. Each element sits in a container
under a key (CSS class ``st-key-<key>``) the browser test finds: ``study-parts``, ``study-summary``,
``study-figure``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import streamlit as st

from toymodels.app.data import choice_key, dashboard_panel, family_metrics
from toymodels.app.figures import parts_figure
from toymodels.app.panel import show_figure
from toymodels.config.registry import get_family
from toymodels.plotting.interactive import PLOTLY_CONFIG
from toymodels.report.parts import Study, combined_instances, combined_summary
from toymodels.results.store import Results

#: the choice that shows the whole study rather than one part
WHOLE = "all parts"


def parts_table(study: Study, parts: dict[str, Results | None], errors: dict[str, str]) -> pd.DataFrame:
    """One row per part of the study: its model, what it sweeps, its instances and diverged ones."""
    rows = []
    for name, res in parts.items():
        if res is None:
            rows.append({"part": name, "model": "", "sweeps": f"cannot read: {errors.get(name, '')}",
                         "instances": "", "diverged": ""})
            continue
        inst = res.instances
        rows.append({"part": name, "model": res.sweep.base.model.model,
                     "sweeps": "; ".join(f"{k} ({len(v)})" for k, v in res.sweep.grid.items()) or "nothing",
                     "instances": f"{len(inst)} of {res.sweep.size()}",
                     "diverged": str(int((inst["status"] != "ok").sum())) if len(inst) else "0"})
    rows += [{"part": name, "model": "", "sweeps": "not started", "instances": "", "diverged": ""}
             for name in study.missing]
    return pd.DataFrame(rows)


def study_page(study: Study, get: Callable[[Path], tuple[Results | None, str | None]],
               part_page: Callable[[Results, Path], None]) -> None:  # pragma: no cover - browser test
    """The study's page: ``get(folder)`` reads a part (cached by the page), ``part_page(results, folder)`` draws one
    part's own page."""
    loaded = {part.name: get(part) for part in study.parts}
    parts = {name: res for name, (res, _) in loaded.items()}
    errors = {name: err or "" for name, (_, err) in loaded.items()}
    st.markdown(f"The {len(study.parts) + len(study.missing)} parts of preset **{study.preset}**, one sweep each, "
                f"read as one study. `toymodels report {study.folder}` writes their reports and the study's.")
    with st.container(key="study-parts"):
        st.dataframe(parts_table(study, parts, errors), hide_index=True)
    names = [name for name, res in parts.items() if res is not None]
    if not names:
        st.error("No part of this study can be read.", icon=":material/error:")
        return
    choice = st.radio("Show", [WHOLE, *names], horizontal=True, key=f"part_{choice_key(study.folder)}")
    if choice != WHOLE:
        part_page(parts[choice], study.folder / choice)
        return
    readable = {name: parts[name] for name in names}
    whole_study(readable)


def whole_study(parts: dict[str, Results]) -> None:  # pragma: no cover - browser test
    """The summary of every part, their final metrics side by side and the family's figures of the whole sweep."""
    first = next(iter(parts.values()))
    summary = combined_summary(parts)
    if summary.empty:
        st.info("No finished instances yet.")
        return
    st.subheader("Summary of every part")
    with st.container(key="study-summary"):
        st.dataframe(summary, hide_index=True, height=min(420, 38 + 35 * len(summary)))
    st.caption("One row per setting of each part: mean ± standard deviation over the seeds that did not diverge; "
               "blank where a part does not sweep that field.")
    instances = combined_instances(parts)
    _, final_names, _ = family_metrics(first)
    label = get_family(first.sweep.base.model.model).presentation.label
    with st.container(key="study-figure"):
        st.plotly_chart(parts_figure(instances, label, final_names, title="final metrics, part by part"),
                        config=PLOTLY_CONFIG, key="study-parts-chart")
    panel = dashboard_panel(first)
    for item in (panel.sweep_figures(instances) if panel is not None else []):
        show_figure(item)
