"""Finding, reading and tabulating results folders for the dashboard (no streamlit, no plotly: testable as is).

Results are read only through ``toymodels.results.store.load``, which leaves out (and names) every group whose files
fail DONE's checksums or whose rows are not what sweep.json plans; ``signature`` (``results.verify``) is the cache key
of a folder's contents, so a sweep that is still running, or a file changed since, is re-read. ``dashboard_panel`` and
``panel_parts`` are the streamlit-free half of the per-instance panel: the family's panel, and where its figures and
tables go on the page.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from toymodels.results import store
from toymodels.running.lock import lock_holder
from toymodels.config.registry import get_family
from toymodels.families.base import DashboardPanel, PanelFigure, PanelTable, family_hook
from toymodels.report.columns import column_descriptions, config_fields, field_description
from toymodels.report.parts import Study, find_study
from toymodels.results.tables import format_value
from toymodels.results.verify import signature  # noqa: F401  (the dashboard's cache key; its home is results/)

MAX_FOLDER_DEPTH = 2  # DIR/<sweep> and DIR/<project>/<sweep>


# ---- finding and reading results folders --------------------------------------------------------------------
def is_results_folder(path: Path) -> bool:
    return (path / "sweep.json").exists() or (path / "groups").is_dir()


def find_results(root: Path, depth: int = MAX_FOLDER_DEPTH) -> list[Path]:
    """``root`` itself when it is a results folder or a multi-part preset's folder (one study: ``report.parts``),
    else those up to ``depth`` levels below it."""
    root = Path(root)
    if is_results_folder(root) or find_study(root) is not None:
        return [root]
    found: list[Path] = []
    if depth <= 0 or not root.is_dir():
        return found
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found.extend(find_results(child, depth - 1))
    return found


def load_or_error(folder: Path) -> tuple[store.Results | None, str | None]:
    """``store.load``, with its ResultsError (or anything unexpected from a malformed folder) as a message."""
    try:
        return store.load(folder), None
    except store.ResultsError as err:
        return None, str(err)
    except Exception as err:  # e.g. a valid Parquet file holding some other table
        return None, f"{folder}: not readable as toymodels results ({type(err).__name__}: {err})"


def root_from_argv(argv: Sequence[str]) -> Path:
    """The folder of results folders: first argument after ``--``, else $TOYMODELS_RUNS, else ``runs``."""
    args = [a for a in argv[1:] if not a.startswith("-")]
    return Path(args[0] if args else os.environ.get("TOYMODELS_RUNS", "runs")).expanduser()


def choice_key(folder: Path) -> str:
    """A short, stable widget-key suffix for a folder (widget states are kept per sweep)."""
    return f"{zlib.crc32(str(folder).encode()):08x}"


# ---- what a sweep shows ---------------------------------------------------------------------------------------
def swept_fields(results: store.Results) -> list[str]:
    """The sweep's varying fields that are columns of the instance table."""
    return [f for f in results.sweep.swept_fields() if f in results.instances.columns]


def family_metrics(results: store.Results) -> tuple[list[str], list[str], list[str]]:
    """(training curves, final metrics, table columns) of this sweep's model family (its ``presentation``), those
    that were saved."""
    presentation = get_family(results.sweep.base.model.model).presentation
    logged = set(results.metrics["name"])
    cols = results.instances.columns
    return ([n for n in presentation.training_metrics if n == "loss" or n in logged],
            [n for n in presentation.swept_metrics if n in cols],
            [n for n in presentation.table_metrics if n in cols])


def model_facts(results: store.Results) -> str:
    """'N=512, m=64, ...': the base values of the model family's own config fields (the swept ones and the task
    are shown apart)."""
    base = results.sweep.base.flat()
    fields = [f for f in get_family(base["model"]).fields if f in base and f != "task" and f not in results.sweep.grid]
    return ", ".join(f"{f}={format_value(base[f])}" for f in fields)


def instance_label(row: pd.Series, fields: Sequence[str]) -> str:
    """'r0002 · lr=0.1' (with the status when the instance did not finish ok)."""
    parts = [f"{f}={format_value(row[f])}" for f in fields if f in row]
    status = "" if row.get("status", "ok") == "ok" else f" [{row['status']}]"
    return " · ".join([str(row["run_id"]), *parts]) + status


def filter_instances(df: pd.DataFrame, chosen: dict[str, list]) -> pd.DataFrame:
    """Keep rows whose value of each field is among the chosen ones (an empty choice keeps everything)."""
    mask = pd.Series(True, index=df.index)
    for field, values in chosen.items():
        if values:
            mask &= df[field].isin(values)
    return df[mask]


def column_help(results: store.Results, columns: Sequence[str]) -> dict[str, str]:
    """What each column of the instance table is (its header's tooltip; ``report.columns``)."""
    return column_descriptions(results, columns)


def config_table(results: store.Results) -> pd.DataFrame:
    """The sweep's fixed fields the family reads (``report.columns.config_fields``: the main ones, then those at
    their defaults), with what each is."""
    base = results.sweep.base.flat()
    shown, folded = config_fields(results)
    return pd.DataFrame({"field": [*shown, *folded], "value": [format_value(base[f]) for f in [*shown, *folded]],
                         "meaning": [field_description(f) for f in [*shown, *folded]]})


def study_caption(study: Study, parts: Sequence[store.Results | None]) -> str:
    """The sidebar's line of a study: its parts started (of all) and the instances they finished."""
    read = [r for r in parts if r is not None]
    done = sum(len(r.instances) for r in read)
    total = sum(r.sweep.size() for r in read)
    unread = f" · {len(parts) - len(read)} unreadable" if len(read) < len(parts) else ""
    return (f"study: {len(study.parts)} of {len(study.parts) + len(study.missing)} parts · {done}/{total} "
            f"instances{unread}")


def table_columns(df: pd.DataFrame, fields: Sequence[str], metric_columns: Sequence[str],
                  all_columns: bool) -> list[str]:
    """run_id, the swept fields, status, final loss and the family's metrics first (all columns on request)."""
    first = ["run_id", *fields]
    first += [c for c in ("status", "final_loss", *metric_columns, "diverged_at") if c in df.columns and c not in first]
    if not all_columns:
        return first
    return first + [c for c in df.columns if c not in first]


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


def values_text(values: Sequence[Any]) -> str:
    """'0.01, 0.1, 1000': a field's values, short."""
    return ", ".join(format_value(v) for v in values)


def progress_state(results: store.Results) -> str:
    """``complete``, ``running`` (a live process holds the folder's lock) or ``stopped`` (unfinished, nobody writing:
    killed, interrupted, or SLURM tasks that ended without finishing)."""
    if results.complete:
        return "complete"
    return "running" if lock_holder(results.folder) is not None else "stopped"


# ---- a family's panel of one instance -------------------------------------------------------------------------
def dashboard_panel(results: store.Results) -> DashboardPanel | None:
    """The panel of one instance that the sweep's family brings (its ``dashboard_panel`` hook), or None."""
    return family_hook(get_family(results.sweep.base.model.model), "dashboard_panel")()


def instance_heading(label: str, step: int) -> str:
    """'r0002 · lr=0.1 · step 512': the instance and checkpoint a panel titles its figures with."""
    return f"{label} · step {step}"


@dataclass(frozen=True)
class PanelParts:
    """A panel's figures and tables where the page puts them: ``main`` spans the page; below it ``tables`` (left)
    beside ``figures`` (right: the instance's other figures, then the sweep's); ``folded`` tables, in expanders,
    come last."""

    main: list[PanelFigure]
    tables: list[PanelTable]
    figures: list[PanelFigure]
    folded: list[PanelTable]


def panel_parts(panel: DashboardPanel, view: dict[str, Any], heading: str, instances: pd.DataFrame) -> PanelParts:
    """The panel's figures of ``view`` (titled with ``heading``), its tables and its figures of the sweep's
    ``instances``, laid out; ValueError when two share a key (the page needs each once)."""
    own = list(panel.figures(view, heading))
    sweep = list(panel.sweep_figures(instances))
    tables = list(panel.tables(view))
    keys = [part.key for part in [*own, *sweep, *tables]]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"a dashboard panel's keys must be unique; repeated: {', '.join(repeated)}")
    return PanelParts(main=own[:1], tables=[t for t in tables if not t.folded], figures=own[1:] + sweep,
                      folded=[t for t in tables if t.folded])
