"""The streamlit page of the dashboard (see ``toymodels.app``): ``streamlit run src/toymodels/app/main.py -- runs/``.

Streamlit runs this file as a script, so it imports the package absolutely. Everything it draws is built by the
streamlit-free modules beside it (``data``, ``figures``) and by the family's own dashboard panel (its
``dashboard_panel`` hook, drawn by ``panel``); this file only lays the page out.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from toymodels.results import store
from toymodels.app.data import (
    choice_key,
    column_help,
    config_differences,
    config_table,
    dashboard_panel,
    family_metrics,
    filter_instances,
    find_results,
    load_or_error,
    model_facts,
    progress_state,
    root_from_argv,
    signature,
    study_caption,
    swept_fields,
    table_columns,
    values_text,
)
from toymodels.app.figures import (
    compare_figures,
    sweep_figure,
    training_figure,
)
from toymodels.app.panel import instance_panel
from toymodels.app.polytope import polytope_section
from toymodels.app.study import study_page
from toymodels.report.parts import find_study
from toymodels.plotting.common import sort_key
from toymodels.plotting.interactive import PLOTLY_CONFIG
from toymodels.results.tables import format_value

REFRESH_SECONDS = 5  # how often the page of a running sweep checks for new results


def main() -> None:  # pragma: no cover - exercised by tests/app/test_app_browser.py in a browser
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

    @st.cache_data(max_entries=64, show_spinner="Reading the instance…")
    def cached_view(folder: str, sig: tuple, run_id: str, step: int) -> dict[str, Any]:
        results = loaded(folder, sig)
        return dashboard_panel(results).view(results, run_id, step)  # the family's panel: its own data

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
        return sweep_figure(results, shown, x_field, list(names), list(group_by), title=title)

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
            study = find_study(f)
            if study is not None:  # a multi-part preset's folder: one entry for its parts
                captions.append(study_caption(study, [get(part)[0] for part in study.parts]))
                continue
            res, err = get(f)
            if res is None:
                captions.append(":material/error: cannot read")
            elif not res.complete:
                word = "running" if progress_state(res) == "running" else "stopped"
                captions.append(f":material/hourglass_top: {word}: {len(res.instances)}/"
                                f"{res.sweep.size()} instances")
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
    st.header(choice)
    study = find_study(folder)
    if study is not None:  # the parts as one study; one part's own page on request
        study_page(study, get, lambda part, part_folder: open_sweep(
            part, part_folder, cache, [*names, f"{choice}/{part_folder.name}"], [*folders, part_folder]))
        return
    results, err = get(folder)
    if results is None:
        st.error(f"This results folder cannot be read.\n\n{err}", icon=":material/error:")
        st.caption("The folder is damaged or was written by another version of toymodels. Re-run the sweep "
                   "(`toymodels run … --out …`), or `--resume` it if it was interrupted.")
        watch_folder(folder)
        return
    open_sweep(results, folder, cache, names, folders)


def open_sweep(results, folder, cache, names, folders) -> None:  # pragma: no cover - browser test
    """A readable results folder's page: its left-out groups named, then ``sweep_page``; an error while drawing it
    is a message, not a traceback."""
    for note in results.notes:  # a damaged, copied or foreign group: named, and in no table or figure
        st.warning(note, icon=":material/warning:")
    try:
        sweep_page(results, folder, cache, names, folders)
    except store.ResultsError as e:  # e.g. a damaged checkpoints file, found when an instance is opened
        st.error(f"This results folder cannot be read.\n\n{e}", icon=":material/error:")
    except Exception as e:  # a message, not a page-wide traceback; the details stay one click away
        st.error(f"Could not show this results folder: {type(e).__name__}: {e}", icon=":material/error:")
        with st.expander("details"):
            st.exception(e)


def column_config(table: pd.DataFrame, described: dict[str, str]) -> dict[str, Any]:  # pragma: no cover
    """The instance table's columns: floats with 4 significant digits, each header with its meaning as a tooltip."""
    return {c: (st.column_config.NumberColumn(format="%.4g", help=described.get(c))
                if pd.api.types.is_float_dtype(table[c]) else st.column_config.Column(help=described.get(c)))
            for c in table.columns if pd.api.types.is_float_dtype(table[c]) or c in described}


def watch_folder(folder: Path) -> None:  # pragma: no cover - browser test
    """Rerun the page when the folder's files change (checked every REFRESH_SECONDS)."""
    sig = signature(folder)

    @st.fragment(run_every=REFRESH_SECONDS)
    def watch() -> None:
        if signature(folder) != sig:
            st.rerun(scope="app")

    watch()


def sweep_page(results, folder, cache, names, folders) -> None:  # pragma: no cover - browser test
    sweep = results.sweep
    n_total = sweep.size()
    inst = results.instances
    base = sweep.base.flat()
    fields = swept_fields(results)
    training_names, final_names, table_metrics = family_metrics(results)
    ck = choice_key(folder)

    # -- summary line and config
    facts = [f"**{base['model']}** model", f"task **{base['task']}**", model_facts(results),
             f"{base['optimizer']} · {base['schedule']}", f"{base['steps']:,} steps × batch {base['batch_size']}"]
    st.markdown(" · ".join(f for f in facts if f))
    grid = "; ".join(f"`{k}` ∈ {{{values_text(vals)}}}" for k, vals in sweep.grid.items())
    st.markdown(f"Sweeps {grid or 'nothing'}" + (f" × {sweep.seeds} seeds" if sweep.seeds > 1 else "")
                + f" · {n_total} instances")
    with st.expander("Config and provenance"):
        c1, c2 = st.columns(2)
        c1.dataframe(config_table(results), hide_index=True, height=300)  # the fields its family reads
        c2.json({"grid": sweep.grid, "seeds": sweep.seeds,
                 **{k: results.meta.get(k) for k in ("toymodels_version", "torch_version", "git_commit", "device")}},
                expanded=True)

    state = progress_state(results)
    if state == "running":
        st.warning(f"Sweep still running: {len(inst)} of {n_total} instances finished. This page checks for new "
                   f"results every {REFRESH_SECONDS} s.", icon=":material/hourglass_top:")
        watch_folder(folder)
    elif state == "stopped":
        st.warning(f"Sweep stopped before it finished: {len(inst)} of {n_total} instances, and no process is "
                   f"writing it. Continue it with the same command plus `--out {folder} --resume`.",
                   icon=":material/pause_circle:")
    if inst.empty:
        st.info("No finished instances yet.")
        return

    # -- instance table with filters
    st.subheader("Instances")
    filter_fields = [f for f in fields if inst[f].nunique() > 1] + (["status"] if "status" in inst.columns else [])
    cols = st.columns(len(filter_fields) + 1, vertical_alignment="bottom")
    chosen = {}
    for col, f in zip(cols, filter_fields):
        options = sorted(inst[f].unique().tolist(), key=sort_key)
        chosen[f] = col.multiselect(f, options, format_func=format_value, placeholder="all", key=f"filter_{ck}_{f}")
    all_cols = cols[-1].toggle("all columns", key=f"allcols_{ck}")
    shown = filter_instances(inst, chosen)
    if shown.empty:
        st.info("No instance matches these filters; showing all.")
        shown = inst
    table = shown[table_columns(shown, fields, table_metrics, all_cols)].reset_index(drop=True)
    inst_key = f"instance_{ck}"

    def pick_row() -> None:
        rows = st.session_state[f"table_{ck}"].selection.rows
        if rows:
            st.session_state[inst_key] = table["run_id"].iloc[rows[0]]

    with st.container(key="instance-table"):
        st.dataframe(table, hide_index=True, on_select=pick_row, selection_mode="single-row", key=f"table_{ck}",
                     height=min(400, 38 + 35 * len(table)),
                     column_config=column_config(table, column_help(results, list(table.columns))))
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
    panel = dashboard_panel(results)  # the family's own panel, if it brings one
    if panel is None:
        st.info(f"This sweep's model family, '{base['model']}', brings no panel of one instance.",
                icon=":material/info:")
    else:
        instance_panel(results, panel, lambda run_id, step: cache.view(str(folder), sig, run_id, int(step)),
                       shown, fields, inst_key, ck)

    polytope_section(results, folder, sig, inst_key)  # the polytope lens, for a family with ReLU layers
    # -- compare
    compare_section(results, folder, cache, names, folders, ck)


def compare_section(results, folder, cache, names, folders, ck) -> None:  # pragma: no cover - browser test
    """Two sweeps side by side: config differences, main training curve and final metrics."""
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


if __name__ == "__main__":
    main()
