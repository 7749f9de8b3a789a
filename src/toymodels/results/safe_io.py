"""Reading and writing a results folder's files safely: every write is atomic (a crash leaves the old file or the
new one, never half of one), every read names the file and why it cannot be read, and nothing is ever unpickled
(JSON, Parquet, safetensors only). ``store`` re-exports these names: callers use ``store.write_json`` and so on.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

if TYPE_CHECKING:
    import pandas as pd


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
