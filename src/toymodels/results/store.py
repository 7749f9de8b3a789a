"""The results folder: atomic writes, safe loading (never unpickles) and the ``Results`` object.

Layout::

    runs/<name>/
      sweep.json                 resolved SweepConfig + versions, git commit, device
      instances.parquet          one row per instance (config fields, status, final loss and metrics)
      metrics.parquet            long table: run_id, step, name, value
      groups/<gid>/checkpoints.safetensors   "<step>/<tensor>" with the instance axis, embedders included
      groups/<gid>/instances.parquet, metrics.parquet   the group's own rows (merged into the top-level tables)
      groups/<gid>/state.safetensors         mid-run training state (only while unfinished)
      groups/<gid>/checkpoints.partial.safetensors   the checkpoints so far, written as they are taken (only while
                                 unfinished; ``checkpoint_stream``)
      groups/<gid>/DONE          written last, with each file's size and SHA-256: a group without it, or whose
                                 files no longer match it, is re-run on --resume
      figures/*.png, report.html
      .lock                      the lock of the process writing the folder (``toymodels.running.lock``)
      wandb.json                 with --wandb: the wandb runs already mirrored, per project (``toymodels.running.tracking``)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

if TYPE_CHECKING:
    import pandas as pd

from toymodels.config import ConfigError, SweepConfig, stored_configs

FORMAT_VERSION = 1


class ResultsError(RuntimeError):
    """A results folder that cannot be read: names the file and why."""


# ---- atomic writes ----------------------------------------------------------------------------------------------
def _current_umask() -> int:
    """The process umask (read without changing it for longer than this call; Linux exposes it in /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: read by setting and restoring at once
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then move it over ``path`` in one step.

    A crash leaves either the old file or the new one, never half of one; the temporary file is removed on failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


# ---- safe reads -------------------------------------------------------------------------------------------------
def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultsError(f"{path}: damaged JSON ({err})") from None


def read_parquet(path: Path) -> pd.DataFrame:
    import pandas as pd  # deferred: ~70 MB that a training process does not need

    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise ResultsError(f"{path}: damaged Parquet file ({type(err).__name__}: {err})") from None


@contextlib.contextmanager
def _safetensors_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ResultsError(f"{path}: damaged safetensors file ({err})") from None


@contextlib.contextmanager
def open_tensors(path: Path) -> Iterator[Any]:
    """safetensors' lazy reader of ``path`` (tensors read one by one), its errors as ``ResultsError``."""
    with _safetensors_errors(path), safe_open(str(path), framework="pt") as f:
        yield f


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    with _safetensors_errors(path):
        return load_file(str(path))


def iter_checkpoints(path: Path) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """A checkpoints file's checkpoints ("<step>/<tensor>") in step order, one at a time (one step in memory)."""
    with open_tensors(path) as f:
        by_step: dict[int, list[str]] = {}
        for key in f.keys():
            by_step.setdefault(int(key.split("/", 1)[0]), []).append(key)
        for step in sorted(by_step):
            yield step, {key.split("/", 1)[1]: f.get_tensor(key) for key in by_step[step]}


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
        raise ResultsError(f"{path}: invalid sweep config ({str(err).splitlines()[0]})") from None


# ---- group files ------------------------------------------------------------------------------------------------
def group_dir(folder: Path, gid: str) -> Path:
    return Path(folder) / "groups" / gid


GROUP_FILES = ("checkpoints.safetensors", "instances.parquet", "metrics.parquet")
TEMP_GLOB = ".*.tmp"  # what atomic_write leaves behind when a process is killed mid-write


def group_done(folder: Path, gid: str) -> bool:
    return (group_dir(folder, gid) / "DONE").exists()


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_done(folder: Path, gid: str) -> None:
    """Mark a group finished: DONE holds the size and SHA-256 of each of its files, so a resume can check them."""
    gdir = group_dir(folder, gid)
    manifest = {name: {"bytes": (gdir / name).stat().st_size, "sha256": _digest(gdir / name)}
                for name in GROUP_FILES}
    write_json(gdir / "DONE", {"files": manifest})


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
        if _digest(path) != expected.get("sha256"):
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


def collect_tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The finished groups' tables, concatenated (reads only)."""
    import pandas as pd  # deferred: ~70 MB that a training process does not need

    folder = Path(folder)
    inst, mets = [], []
    for gid in done_groups(folder):
        inst.append(_with_columns(group_dir(folder, gid) / "instances.parquet", INSTANCE_COLUMNS))
        mets.append(_with_columns(group_dir(folder, gid) / "metrics.parquet", METRIC_COLUMNS))
    instances = pd.concat(inst, ignore_index=True) if inst else pd.DataFrame({"run_id": pd.Series(dtype=str)})
    metrics = pd.concat(mets, ignore_index=True) if mets else pd.DataFrame(
        {"run_id": pd.Series(dtype=str), "step": pd.Series(dtype="int64"), "name": pd.Series(dtype=str),
         "value": pd.Series(dtype="float64")})
    if len(instances):
        instances = instances.sort_values("run_id", kind="stable").reset_index(drop=True)
    return instances, metrics


def merge_tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write the finished groups' tables as the top-level ones (one writer: the sweep's parent)."""
    folder = Path(folder)
    instances, metrics = collect_tables(folder)
    write_parquet(folder / "instances.parquet", instances)
    write_parquet(folder / "metrics.parquet", metrics)
    return instances, metrics


# ---- Results ----------------------------------------------------------------------------------------------------
@dataclass
class Results:
    """A results folder read back safely.

    Example:
        >>> res = load("runs/LR1-quick")                               # doctest: +SKIP
        >>> res.instances[["lr", "final_loss", "mono_per_feature"]]    # doctest: +SKIP
    """

    folder: Path
    sweep: SweepConfig
    meta: dict[str, Any]
    instances: pd.DataFrame
    metrics: pd.DataFrame
    _ckpt_keys: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def complete(self) -> bool:
        return len(self.instances) == self.sweep.size()

    def checkpoint_tensors(self, gid: str) -> dict[str, torch.Tensor]:
        """Every tensor of a group's checkpoints file ("<step>/<name>", instance axis first), read whole."""
        return read_tensors(group_dir(self.folder, gid) / "checkpoints.safetensors")

    def _checkpoint_keys(self, gid: str) -> list[str]:
        if gid not in self._ckpt_keys:
            with open_tensors(group_dir(self.folder, gid) / "checkpoints.safetensors") as f:
                self._ckpt_keys[gid] = list(f.keys())
        return self._ckpt_keys[gid]

    def _checkpoint_steps(self, gid: str) -> list[int]:
        return sorted({int(k.split("/")[0]) for k in self._checkpoint_keys(gid)})

    def checkpoint_steps(self, run_id: str) -> list[int]:
        return self._checkpoint_steps(self.row(run_id)["group"])

    def row(self, run_id: str) -> pd.Series:
        rows = self.instances[self.instances["run_id"] == run_id]
        if rows.empty:
            raise KeyError(f"no instance '{run_id}' in {self.folder}")
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
        with open_tensors(group_dir(self.folder, row["group"]) / "checkpoints.safetensors") as f:
            return {k[len(prefix):]: f.get_slice(k)[idx] for k in self._checkpoint_keys(row["group"])
                    if k.startswith(prefix)}

    def curve(self, run_id: str, name: str) -> pd.DataFrame:
        m = self.metrics
        return m[(m["run_id"] == run_id) & (m["name"] == name)].sort_values("step")[["step", "value"]]


def load(folder: str | Path) -> Results:
    """Read a results folder (JSON, Parquet, safetensors only; nothing is unpickled)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError(f"{folder}: no such results folder")
    try:
        sweep, meta = read_sweep(folder)
    except ConfigError as err:
        raise ResultsError(f"{folder / 'sweep.json'}: {err}") from None
    # The groups' own tables are the source of truth (the top-level copies may lag behind a running sweep).
    instances, metrics = collect_tables(folder)
    return Results(folder=folder, sweep=sweep, meta=meta, instances=instances, metrics=metrics)


def holds_tensors(results: Results, names: tuple[str, ...], run_id: str | None = None) -> bool:
    """Whether an instance's checkpoint (default: the first instance's) holds every tensor in ``names``: how the
    report and the dashboard tell which per-instance views apply without naming a model family. Reads only
    ``results.instances`` and ``results.params``."""
    if run_id is None:
        if results.instances.empty:
            return False
        run_id = str(results.instances["run_id"].iloc[0])
    return set(names) <= set(results.params(run_id))
