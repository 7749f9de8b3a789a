"""The results folder: its layout, verified loading (never unpickles) and the ``Results`` object. The atomic writes
and safe reads are ``safe_io``'s (re-exported here); what a reader checks before it trusts a group is ``verify``'s.

Layout::

    runs/<name>/
      sweep.json                 resolved SweepConfig + versions, git commit, device, and the fingerprints of what
                                 it reads from outside (``inputs``: an SAE's source model; --resume compares them)
      instances.parquet          one row per instance (config fields, status, final loss and metrics)
      metrics.parquet            long table: run_id, step, name, value
      groups/<gid>/checkpoints.safetensors   "<step>/<tensor>" with the instance axis, embedders included
      groups/<gid>/instances.parquet, metrics.parquet   the group's own rows (merged into the top-level tables)
      groups/<gid>/state.safetensors         mid-run training state (only while unfinished)
      groups/<gid>/checkpoints.partial.safetensors   the checkpoints so far, written as they are taken (only while
                                 unfinished; ``checkpoint_stream``)
      groups/<gid>/DONE          written last, with each file's size and SHA-256 and the group's run ids: a group
                                 whose files no longer match it is left out by every reader (named, in no table)
                                 and re-run on --resume; one whose rows are not what sweep.json plans for them
                                 (copied from another folder or under another name, sweep.json edited since) is
                                 left out too, and --resume refuses to build on it
      figures/*.png, report.html
      .lock                      the lock of the process writing the folder (``toymodels.running.lock``)
      wandb.json                 with --wandb: the wandb runs already mirrored, per project (``toymodels.running.tracking``)
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch

if TYPE_CHECKING:
    import pandas as pd

from pydantic import ValidationError

from toymodels.config import ConfigError, SweepConfig, one_line, stored_configs
from toymodels.results.verify import checked_against_plan, file_digest, repeat_of, run_index
from toymodels.results.views import ResultsViews

FORMAT_VERSION = 1
#: a study's record of the rules in force when the folder's training started (toymodels.reproduce.registration)
PREREGISTRATION = "preregistration.json"


# the safe reads and atomic writes live in ``safe_io``; callers know them as ``store.<name>``
from toymodels.results.safe_io import (  # noqa: F401
    ResultsError, atomic_write, iter_checkpoints, open_tensors, read_json, read_parquet, read_tensors, write_json,
    write_parquet, write_tensors, write_text,
)


def package_version() -> str:
    """The installed toymodels version (from the package metadata)."""
    try:
        return version("toymodels")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def sweep_meta(sweep: SweepConfig) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "toymodels_version": package_version(),
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
        "device": sweep.base.run.device,
        "sweep": json.loads(sweep.to_json()),
    }


def read_sweep(folder: Path) -> tuple[SweepConfig, dict[str, Any]]:
    path = Path(folder) / "sweep.json"
    meta = read_json(path)
    if not isinstance(meta, dict) or "sweep" not in meta:
        raise ResultsError(f"{path}: not a toymodels results file (no 'sweep' entry)")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ResultsError(f"{path}: results format {version!r}, this toymodels reads format {FORMAT_VERSION}")
    try:
        with stored_configs():
            return SweepConfig.model_validate(meta["sweep"]), meta
    except Exception as err:
        why = one_line(err) if isinstance(err, ValidationError) else str(err).splitlines()[0]  # names the field
        raise ResultsError(f"{path}: invalid sweep config ({why})") from None


# ---- group files ------------------------------------------------------------------------------------------------
def group_dir(folder: Path, gid: str) -> Path:
    return Path(folder) / "groups" / gid


GROUP_FILES = ("checkpoints.safetensors", "instances.parquet", "metrics.parquet")
TEMP_GLOB = ".*.tmp"  # what atomic_write leaves behind when a process is killed mid-write


def group_done(folder: Path, gid: str) -> bool:
    return (group_dir(folder, gid) / "DONE").exists()


def write_done(folder: Path, gid: str, run_ids: Sequence[str] = ()) -> None:
    """Mark a group finished: DONE holds the size and SHA-256 of each of its files, so every reader can check them,
    and its run ids, so a reader can say which instances a damaged group held."""
    gdir = group_dir(folder, gid)
    manifest = {name: {"bytes": (gdir / name).stat().st_size, "sha256": file_digest(gdir / name)}
                for name in GROUP_FILES}
    write_json(gdir / "DONE", {"files": manifest, "group": gid, "run_ids": list(run_ids)})


def done_record(folder: Path, gid: str) -> dict[str, Any]:
    """A finished group's DONE record ({} when it is unreadable)."""
    try:
        record = json.loads((group_dir(folder, gid) / "DONE").read_text() or "{}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def group_damage(folder: Path, gid: str) -> str | None:
    """Why a finished group's files cannot be trusted (missing, a link, another size or checksum), or None."""
    gdir = group_dir(folder, gid)
    try:
        record = json.loads((gdir / "DONE").read_text() or "{}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "its DONE file is damaged"
    manifest = record.get("files") if isinstance(record, dict) else None
    for name in GROUP_FILES:
        path = gdir / name
        if path.is_symlink():
            return f"{name} is a symbolic link"
        if not path.is_file():
            return f"{name} is missing"
        if not isinstance(manifest, dict):  # a DONE from before checksums were recorded: check the file reads
            try:
                read_tensors(path) if name.endswith(".safetensors") else read_parquet(path)
            except ResultsError:
                return f"{name} is damaged"
            continue
        expected = manifest.get(name, {})
        if path.stat().st_size != expected.get("bytes"):
            return f"{name} has {path.stat().st_size} bytes, {expected.get('bytes')} were written"
        if file_digest(path) != expected.get("sha256"):
            return f"{name} does not match the checksum written with it"
    return None


def remove_temp_files(folder: Path) -> list[Path]:
    """Delete the temporary files a killed writer left in the folder, its groups and figures; returns them."""
    folder = Path(folder)
    found = [*folder.glob(TEMP_GLOB), *folder.glob(f"groups/*/{TEMP_GLOB}"), *folder.glob(f"figures/{TEMP_GLOB}")]
    for path in found:
        path.unlink(missing_ok=True)
    return found


def done_groups(folder: Path) -> list[str]:
    root = Path(folder) / "groups"
    return sorted(p.name for p in root.iterdir() if (p / "DONE").exists()) if root.exists() else []


#: columns every group table must have for the tools that read a results folder
INSTANCE_COLUMNS = ("run_id", "group", "index_in_group", "status", "final_loss")
METRIC_COLUMNS = ("run_id", "step", "name", "value")


def _with_columns(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    df = read_parquet(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ResultsError(f"{path}: damaged table, column '{missing[0]}' is missing")
    return df


def trusted_groups(folder: Path, sweep: SweepConfig) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """(gid -> instance rows) of the finished groups whose files match DONE and whose rows are what ``sweep`` plans,
    and (gid -> why) of the others, which no table may hold: "damaged: ...", "a copy of group ...", "a repeat: ...",
    "not what sweep.json plans: ..." (``verify.plan_mismatch``). A file is hashed once per process and state."""
    folder = Path(folder)
    trusted: dict[str, pd.DataFrame] = {}
    left_out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for gid in done_groups(folder):
        damage = group_damage(folder, gid)
        table = group_dir(folder, gid) / "instances.parquet"
        rows = None if damage else _with_columns(table, INSTANCE_COLUMNS)
        why = (f"damaged: {damage}" if damage else
               checked_against_plan(gid, table, rows, sweep) or repeat_of(rows, seen))
        if why:
            left_out[gid] = why
        else:
            trusted[gid] = rows
            seen.update(dict.fromkeys(map(str, rows["run_id"]), gid))
    return trusted, left_out


def left_out_note(gid: str, why: str) -> str:
    """The one line every reader says of a finished group it leaves out of the tables."""
    return f"group {gid} is {why}; it is left out"


def _stored_sweep(folder: Path) -> tuple[SweepConfig, dict[str, Any]]:
    try:
        return read_sweep(folder)
    except ConfigError as err:
        raise ResultsError(f"{Path(folder) / 'sweep.json'}: {err}") from None


def collect_tables(folder: Path, sweep: SweepConfig | None = None, say=None
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """The trusted finished groups' tables, concatenated (reads only), and the groups left out (gid -> why;
    ``say`` gets one line for each). ``sweep`` defaults to the folder's ``sweep.json``."""
    import pandas as pd  # deferred: ~70 MB that a training process does not need

    folder = Path(folder)
    trusted, left_out = trusted_groups(folder, sweep if sweep is not None else _stored_sweep(folder)[0])
    for gid, why in left_out.items():
        if say is not None:
            say(left_out_note(gid, why))
    inst = list(trusted.values())
    mets = [_with_columns(group_dir(folder, gid) / "metrics.parquet", METRIC_COLUMNS) for gid in trusted]
    instances = pd.concat(inst, ignore_index=True) if inst else pd.DataFrame({"run_id": pd.Series(dtype=str)})
    metrics = pd.concat(mets, ignore_index=True) if mets else pd.DataFrame(
        {"run_id": pd.Series(dtype=str), "step": pd.Series(dtype="int64"), "name": pd.Series(dtype=str),
         "value": pd.Series(dtype="float64")})
    if len(instances):
        instances = instances.sort_values("run_id", kind="stable").reset_index(drop=True)
    return instances, metrics, left_out


def merge_tables(folder: Path, say=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the trusted finished groups' tables as the top-level ones (one writer: the sweep's parent); ``say``
    gets one line per group left out."""
    folder = Path(folder)
    instances, metrics, _ = collect_tables(folder, say=say)
    write_parquet(folder / "instances.parquet", instances)
    write_parquet(folder / "metrics.parquet", metrics)
    return instances, metrics


# ---- Results ----------------------------------------------------------------------------------------------------
@dataclass(repr=False)  # ResultsViews' repr: a line, not the whole tables
class Results(ResultsViews):
    """A results folder read back safely: only groups whose files match DONE and whose rows are what ``sweep.json``
    plans; ``left_out`` names the others (gid -> why) and ``notes`` says it in one line each.

    Example:
        >>> res = load("runs/LR1-quick")                               # doctest: +SKIP
        >>> res.instances[["lr", "final_loss", "mono_per_feature"]]    # doctest: +SKIP
    """

    folder: Path
    sweep: SweepConfig
    meta: dict[str, Any]
    instances: pd.DataFrame
    metrics: pd.DataFrame
    left_out: dict[str, str] = field(default_factory=dict)
    _ckpt_keys: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        return len(self.instances) == self.sweep.size()

    @property
    def notes(self) -> list[str]:
        """One line per finished group left out of the tables, saying why."""
        return [left_out_note(gid, why) for gid, why in self.left_out.items()]

    def why_missing(self, run_id: str) -> str:
        """Why ``run_id`` has no row (one line): its group is left out, it has not finished, or no such instance."""
        for gid, why in self.left_out.items():
            if run_id in done_record(self.folder, gid).get("run_ids", ()):
                return f"instance {run_id} is in group {gid}, which is {why}; it is left out"
        unknown = [g for g in self.left_out if not done_record(self.folder, g).get("run_ids")]
        also = f" (or in a group left out: {', '.join(unknown)})" if unknown else ""
        index = run_index(run_id)
        if index is not None and index < self.sweep.size():
            return (f"instance {run_id} of {self.folder} has not finished training{also}: its group has no DONE yet "
                    f"(still running, or stopped: `toymodels status {self.folder}`)")
        runs = list(self.instances["run_id"])
        have = ", ".join(runs[:5]) + (", ..." if len(runs) > 5 else "") if runs else "none trained yet"
        return f"no such instance in {self.folder} ({have}){also}"

    def _trusted_file(self, gid: str) -> Path:
        """A group's checkpoints file, checked against DONE again (cheap: digests are remembered per file state)."""
        why = self.left_out.get(gid) or (f"damaged since it was read: {damage}"
                                         if (damage := group_damage(self.folder, gid)) else None)
        if why:
            raise ResultsError(f"{group_dir(self.folder, gid)}: {left_out_note(gid, why)}")
        return group_dir(self.folder, gid) / "checkpoints.safetensors"

    def checkpoint_tensors(self, gid: str) -> dict[str, torch.Tensor]:
        """Every tensor of a group's checkpoints file ("<step>/<name>", instance axis first), read whole."""
        return read_tensors(self._trusted_file(gid))

    def _checkpoint_keys(self, gid: str) -> list[str]:
        if gid not in self._ckpt_keys:
            with open_tensors(self._trusted_file(gid)) as f:
                self._ckpt_keys[gid] = list(f.keys())
        return self._ckpt_keys[gid]

    def _checkpoint_steps(self, gid: str) -> list[int]:
        return sorted({int(k.split("/")[0]) for k in self._checkpoint_keys(gid)})

    def checkpoint_steps(self, run_id: str) -> list[int]:
        return self._checkpoint_steps(self.row(run_id)["group"])

    def row(self, run_id: str) -> pd.Series:
        rows = self.instances[self.instances["run_id"] == run_id]
        if rows.empty:
            raise KeyError(self.why_missing(run_id))
        return rows.iloc[0]

    def params(self, run_id: str, step: int | None = None) -> dict[str, torch.Tensor]:
        """One instance's tensors (no instance axis) at a checkpoint step (default: the final model).

        Only that instance's slice of that step is read (a paper-scale group's file holds gigabytes).
        """
        row = self.row(run_id)
        steps = self._checkpoint_steps(row["group"])
        step = steps[-1] if step is None else step
        if step not in steps:
            raise KeyError(f"instance {run_id} has no checkpoint at step {step}; available: {steps}")
        idx = int(row["index_in_group"])
        prefix = f"{step}/"
        with open_tensors(self._trusted_file(row["group"])) as f:
            return {k[len(prefix):]: f.get_slice(k)[idx] for k in self._checkpoint_keys(row["group"])
                    if k.startswith(prefix)}

    def curve(self, run_id: str, name: str) -> pd.DataFrame:
        m = self.metrics
        return m[(m["run_id"] == run_id) & (m["name"] == name)].sort_values("step")[["step", "value"]]


def load(folder: str | Path) -> Results:
    """Read a results folder (JSON, Parquet, safetensors only; nothing is unpickled). Only finished groups whose
    files match DONE's checksums and whose rows are what ``sweep.json`` plans are read; ``Results.left_out`` names
    the others and why."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such results folder")
    sweep, meta = _stored_sweep(folder)
    # The groups' own tables are the source of truth (the top-level copies may lag behind a running sweep).
    instances, metrics, left_out = collect_tables(folder, sweep)
    return Results(folder=folder, sweep=sweep, meta=meta, instances=instances, metrics=metrics, left_out=left_out)


def holds_tensors(results: Results, names: tuple[str, ...], run_id: str | None = None) -> bool:
    """Whether an instance's checkpoint (default: the first instance's) holds every tensor in ``names``: how the
    report and the dashboard tell which per-instance views apply without naming a model family. Reads only
    ``results.instances`` and ``results.params``."""
    if run_id is None:
        if results.instances.empty:
            return False
        run_id = str(results.instances["run_id"].iloc[0])
    return set(names) <= set(results.params(run_id))
