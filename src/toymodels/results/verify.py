"""What every reader of a results folder checks before it trusts a finished group, cheaply.

A group's ``DONE`` records the size and SHA-256 of each of its files (``store.write_done``). ``file_digest`` hashes a
file once per process and state: the digest is remembered under the file's device, inode, size, modification and
change times, so the dashboard, a report or an SAE's source re-reading a folder hash only what changed since (a file
rewritten in place changes its change time even when its modification time is set back). ``hash_file`` is the one
SHA-256 routine: DONE is written with it and checked with it.

``plan_mismatch`` compares a finished group's rows with what the folder's ``sweep.json`` plans for their run ids: a
group copied from another folder, a copy of a group under another name, a group whose instances another group holds
already, or rows that an edited ``sweep.json`` no longer plans (two learning rates read as two seeds) are named, never
merged into a table. ``signature`` is the cache key of a folder's contents for readers that keep what they read.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from toymodels.config import SweepConfig, stored_configs
from toymodels.results.tables import format_value, py_value

if TYPE_CHECKING:
    import pandas as pd

#: how many file digests a process remembers (3 files per group: thousands of groups)
MAX_DIGESTS = 65536
_DIGESTS: dict[tuple, str] = {}


def hash_file(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_state(path: Path) -> tuple:
    st = os.stat(path)
    return (os.fspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_digest(path: Path) -> str:
    """``hash_file(path)``, remembered for as long as the file keeps its inode, size and times."""
    before = _file_state(path)
    if before in _DIGESTS:
        return _DIGESTS[before]
    digest = hash_file(path)
    if _file_state(path) == before:  # not written to while it was read: safe to remember
        if len(_DIGESTS) >= MAX_DIGESTS:
            _DIGESTS.pop(next(iter(_DIGESTS)))
        _DIGESTS[before] = digest
    return digest


def signature(folder: Path) -> tuple:
    """Inode, size, modification and change times of ``sweep.json`` and of every group's DONE and files: what
    ``store.load`` reads, so a reader that keeps a loaded folder re-reads it when any of them changes."""
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
            st = p.stat()
        except OSError:
            continue
        sig.append((str(p.relative_to(folder)), st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size))
    return tuple(sig)


# ---- rows against the plan ---------------------------------------------------------------------------------------
_RUN_ID = re.compile(r"r(\d{4,})")


def run_index(run_id: str) -> int | None:
    """The instance index of a run id (``r0042`` -> 42: the sweep's 43rd instance), or None for another name."""
    match = _RUN_ID.fullmatch(str(run_id))
    return int(match.group(1)) if match else None


def _same(a: Any, b: Any) -> bool:
    a, b = py_value(a), py_value(b)
    missing = [x is None or (isinstance(x, float) and math.isnan(x)) for x in (a, b)]
    if any(missing):
        return all(missing)
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. an array read back where a number is planned: not the same
        return False


#: the planned flat configs of the last few sweeps read, by their JSON (a 50,000-instance sweep takes seconds to expand)
_PLANNED: dict[str, list[dict[str, Any]]] = {}
#: (sweep, group, its instances.parquet's state) -> the plan check's answer: a group is compared with the plan once
_CHECKED: dict[tuple, str | None] = {}


def planned_configs(sweep: SweepConfig) -> tuple[str, list[dict[str, Any]]]:
    """(a key of ``sweep``, the flat config it plans for each run id ``r{i:04d}``), expanded once per process.
    Read as stored: a family's checks of outside inputs (an SAE's source) were made when the sweep was written."""
    key = hashlib.sha256(sweep.model_dump_json().encode()).hexdigest()
    if key not in _PLANNED:
        if len(_PLANNED) >= 8:
            _PLANNED.pop(next(iter(_PLANNED)))
        with stored_configs():
            _PLANNED[key] = [cfg.flat() for cfg in sweep.instances()]
    return key, _PLANNED[key]


def plan_mismatch(gid: str, rows: pd.DataFrame, planned: Sequence[dict[str, Any]]) -> str | None:
    """Why finished group ``gid`` (its ``instances.parquet`` rows) is not what the folder's sweep plans, or None:
    rows of another group (a copy under another name), run ids the sweep does not have, or values other than those
    ``planned[i]`` holds for run id ``r{i:04d}`` (an edited sweep.json, a group from another folder). The reason
    completes "group <gid> is ...; it is left out"."""
    others = sorted({str(g) for g in rows["group"]} - {gid})
    if others:
        return (f"a copy of group {others[0]} (its rows are {others[0]}'s), not a group of this folder: "
                "one instance twice is not two seeds")
    for record in rows.to_dict("records"):
        run_id = str(record["run_id"])
        index = run_index(run_id)
        if index is None or index >= len(planned):
            return (f"not this folder's: {run_id} is no instance of its sweep.json (r0000 .. r{len(planned) - 1:04d}; "
                    "copied from another folder?)")
        plan = planned[index]
        wrong = [f for f in plan if f in record and not _same(record[f], plan[f])]
        if wrong:
            trained = ", ".join(f"{f}={format_value(py_value(record[f]))}" for f in wrong[:3])
            planned_text = ", ".join(f"{f}={format_value(plan[f])}" for f in wrong[:3])
            return (f"not what sweep.json plans: {run_id} was trained with {trained}, sweep.json plans "
                    f"{planned_text} (sweep.json edited, or the group copied from another folder?)")
    return None


def checked_against_plan(gid: str, table: Path, rows: pd.DataFrame, sweep: SweepConfig) -> str | None:
    """``plan_mismatch`` of group ``gid`` whose rows were read from ``table``, remembered for as long as that file
    keeps its state."""
    key, planned = planned_configs(sweep)
    state = (key, gid, _file_state(table))
    if state not in _CHECKED:
        if len(_CHECKED) >= MAX_DIGESTS:
            _CHECKED.pop(next(iter(_CHECKED)))
        _CHECKED[state] = plan_mismatch(gid, rows, planned)
    return _CHECKED[state]


def repeat_of(rows: pd.DataFrame, seen: dict[str, str]) -> str | None:
    """Why a group is a repeat (a run id that ``seen`` already maps to an accepted group), or None."""
    run_id = next((str(r) for r in rows["run_id"] if str(r) in seen), None)
    if run_id is None:
        return None
    return f"a repeat: {run_id} is already in group {seen[run_id]} (one instance twice is not two seeds)"
