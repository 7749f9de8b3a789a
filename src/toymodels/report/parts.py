"""A multi-part preset's folder as one study: ``toymodels run OPT1 --out DIR`` trains one sweep per part into
``DIR/<part>`` (``DIR/OPT1-LR1-lamb``, ...), and ``report``, ``status`` and the dashboard take ``DIR`` itself.

``find_study(folder)`` recognises such a folder (no sweep of its own; sub-folders named after the parts of one
registered preset, at least one of them a results folder) and lists its parts in the preset's order, the ones not
started yet apart. ``combined_instances`` and ``combined_summary`` put the parts' tables together, a ``part``
column first. No matplotlib, no plotly: the dashboard and ``toymodels status`` use this module too.

Example:
    >>> study = find_study(Path("runs/SAE-L0-quick"))     # doctest: +SKIP
    >>> [p.name for p in study.parts]                      # doctest: +SKIP
    ['SAE-L0-relu_l1', 'SAE-L0-topk', 'SAE-L0-batchtopk', 'SAE-L0-jumprelu']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from toymodels.config.presets import PRESETS

if TYPE_CHECKING:
    import pandas as pd

    from toymodels.results.store import Results

#: the column that names each row's part in the combined tables
PART = "part"


@dataclass(frozen=True)
class Study:
    """A multi-part preset's folder: ``preset`` (its name), ``parts`` (the part folders that hold a sweep, in the
    preset's order) and ``missing`` (the names of the parts not started)."""

    folder: Path
    preset: str
    parts: tuple[Path, ...]
    missing: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.folder.name

    def heading(self) -> str:
        """'SAE-L0-quick (runs/SAE-L0-quick): 3 of 4 parts of SAE-L0 started; not started: SAE-L0-jumprelu'."""
        missing = f"; not started: {', '.join(self.missing)}" if self.missing else ""
        return (f"{self.name} ({self.folder}): {len(self.parts)} of {len(self.parts) + len(self.missing)} parts of "
                f"{self.preset} started{missing}")


def find_study(folder: str | Path) -> Study | None:
    """The study ``folder`` holds (module docstring), or None when it is no multi-part preset's folder."""
    folder = Path(folder)
    try:
        if not folder.is_dir() or (folder / "sweep.json").exists():
            return None
        children = {p.name for p in folder.iterdir() if p.is_dir() and (p / "sweep.json").is_file()}
    except OSError:
        return None
    if not children:
        return None
    for preset in PRESETS.values():
        names = preset.part_names() if preset.parts else []
        if children & set(names):
            return Study(folder=folder, preset=preset.name, parts=tuple(folder / n for n in names if n in children),
                         missing=tuple(n for n in names if n not in children))
    return None


def combined_instances(parts: Mapping[str, "Results"]) -> "pd.DataFrame":
    """Every part's instance table, one below the other, with the part's name first (``part``); the columns are
    the union of the parts' (a field one part does not sweep is empty in its rows)."""
    import pandas as pd  # deferred: ~70 MB that `toymodels status` does not need

    tables = [res.instances.assign(**{PART: name}) for name, res in parts.items() if len(res.instances)]
    if not tables:
        return pd.DataFrame(columns=[PART])
    table = pd.concat(tables, ignore_index=True)
    return table[[PART, *[c for c in table.columns if c != PART]]]


def combined_summary(parts: Mapping[str, "Results"]) -> "pd.DataFrame":
    """Every part's summary table as text (``report.html.format_summary``), one below the other, with the part
    first; a column one part does not have is blank in its rows."""
    import pandas as pd  # deferred: ~70 MB that `toymodels status` does not need

    from toymodels.report.html import format_summary, summary_table  # the report's own table, once per part

    tables = []
    for name, res in parts.items():
        table = summary_table(res)
        if not table.empty:
            tables.append(format_summary(table).assign(**{PART: name}))
    if not tables:
        return pd.DataFrame(columns=[PART])
    # the setting fields of every part first (a part's columns before "seeds"), then seeds, status and the metrics
    fields = list(dict.fromkeys(c for t in tables for c in t.columns[:list(t.columns).index("seeds")]))
    rest = list(dict.fromkeys(c for t in tables for c in t.columns[list(t.columns).index("seeds"):] if c != PART))
    return pd.concat(tables, ignore_index=True).fillna("")[[PART, *fields, *rest]]
