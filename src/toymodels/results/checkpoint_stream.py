"""A group's ``checkpoints.safetensors`` written while it trains: each checkpoint goes to disk as it is taken.

A paper-scale sweep keeps hundreds of checkpoints (2^17 steps, one every 512: ~3.8 GB for a six-instance group),
and safetensors' own writer needs every tensor in memory at once (and a second, serialised copy). The library has no
incremental writer, so this module lays the file out itself, in the library's format: an 8-byte little-endian header
size, a JSON header giving each tensor's dtype, shape and byte range, then the bytes. The layout is fixed by the first
checkpoint (every checkpoint step, each with the same tensor names, shapes and dtypes), the header is written once
and the file sized; every later checkpoint's bytes are written in place. Until the last one is in, the file is
``checkpoints.partial.safetensors``; then it is moved over ``checkpoints.safetensors`` in one step, as every write in
a results folder is. Reading never needs this module: the result is an ordinary safetensors file
(``store.iter_checkpoints`` reads it a checkpoint at a time; ``tests/results/test_checkpoint_stream.py`` compares it with
``save_file``'s).

A resumed group (``runner.run_group`` from a mid-run state) reopens the partial file: the state is written only after
the file is synced (``sync``), so every checkpoint before the state's step is already in it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from toymodels.results.files import open_in_place

#: torch dtypes and their names in the safetensors format.
DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
    torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}
PARTIAL_NAME = "checkpoints.partial.safetensors"
_MAX_WRITE = 1 << 30  # Linux writes at most ~2 GiB per call


def partial_path(final: Path) -> Path:
    return Path(final).with_name(PARTIAL_NAME)


def _header(steps: Sequence[int], example: dict[str, Tensor], metadata: dict[str, str]
            ) -> tuple[bytes, dict[str, tuple[int, int]], int]:
    """The file's first bytes (size + JSON header, padded with spaces to a multiple of 8 as the library does), each
    tensor's byte range in the data section, and the data section's size."""
    entries: dict[str, object] = {"__metadata__": metadata}
    ranges: dict[str, tuple[int, int]] = {}
    offset = 0
    for step in steps:
        for name, t in example.items():
            if t.dtype not in DTYPE_NAMES:
                raise TypeError(f"checkpoint tensor {name!r}: dtype {t.dtype} has no safetensors name")
            size = t.numel() * t.element_size()
            ranges[f"{step}/{name}"] = (offset, offset + size)
            entries[f"{step}/{name}"] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                                         "data_offsets": [offset, offset + size]}
            offset += size
    text = json.dumps(entries, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    return len(text).to_bytes(8, "little") + text, ranges, offset


def partial_intact(path: Path) -> bool:
    """Whether a partial checkpoints file is whole: a readable header and every byte it lays out (a file cut short
    by a crash or by hand cannot be continued, and its group trains again from step 0)."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if size <= 0 or size > 100 * 2**20:  # safetensors' own bound on the header
                return False
            header = json.loads(f.read(size))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            return os.fstat(f.fileno()).st_size == 8 + size + end
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False


class CheckpointStream:
    """Writes one group's checkpoints into ``final``'s partial file as they come; ``finish`` moves it into place.

    >>> stream = CheckpointStream(path, steps=[0, 1, 3], metadata={"run_ids": "r0000"})  # doctest: +SKIP
    >>> stream.write(0, {"W1": W1, "b1": b1})  # ... once per step, in any order          # doctest: +SKIP
    >>> stream.finish()                          # doctest: +SKIP
    """

    def __init__(self, final: Path, steps: Sequence[int], metadata: dict[str, str] | None = None,
                 resume_step: int = 0):
        if sys.byteorder != "little":  # the format is little-endian and the bytes are written as they lie in memory
            raise RuntimeError("checkpoint streaming needs a little-endian machine")
        self.final, self.partial = Path(final), partial_path(final)
        self.steps = sorted(steps)
        self.metadata = dict(metadata or {})
        self.resume_step = resume_step
        self.written: set[int] = {s for s in self.steps if s < resume_step}
        self._fd: int | None = None
        self._ranges: dict[str, tuple[int, int]] = {}
        self._data_start = 0

    def _open(self, example: dict[str, Tensor]) -> None:
        head, self._ranges, data_size = _header(self.steps, example, self.metadata)
        self._data_start = len(head)
        if self.resume_step > 0:  # the checkpoints before the resume step are already in the partial file
            try:
                fd = open_in_place(self.partial, os.O_RDWR)
            except FileNotFoundError:
                raise RuntimeError(f"{self.partial}: missing, so the checkpoints before step {self.resume_step} "
                                   "are lost; remove the group's state.safetensors to train it again") from None
            if os.pread(fd, len(head), 0) != head or os.fstat(fd).st_size != len(head) + data_size:
                os.close(fd)
                raise RuntimeError(f"{self.partial}: laid out for other checkpoints than this run's (written by "
                                   "another version?); remove the group's state.safetensors to train it again")
        else:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            fd = open_in_place(self.partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC)  # the umask applies
            self._write_at(fd, head, 0)
            os.ftruncate(fd, len(head) + data_size)  # sparse until written: no disk space taken yet
        self._fd = fd

    @staticmethod
    def _write_at(fd: int, data, offset: int) -> None:
        view = memoryview(data).cast("B")
        while view.nbytes:
            n = os.pwrite(fd, view[:_MAX_WRITE], offset)
            view, offset = view[n:], offset + n

    def write(self, step: int, tensors: dict[str, Tensor]) -> None:
        """Write the checkpoint of ``step`` (tensors on the CPU; they may be live parameters: nothing is kept)."""
        if step not in self.steps:
            raise ValueError(f"step {step} is not a checkpoint step of this group")
        if self._fd is None:
            self._open(tensors)
        for name, t in tensors.items():
            begin, end = self._ranges.get(f"{step}/{name}", (0, -1))
            data = t.detach().contiguous().reshape(-1).view(torch.uint8)
            if data.numel() != end - begin:
                raise ValueError(f"checkpoint tensor {name!r} at step {step}: shape {tuple(t.shape)} or dtype "
                                 f"{t.dtype} differs from the first checkpoint's")
            self._write_at(self._fd, data.numpy(), self._data_start + begin)
        self.written.add(step)

    def sync(self) -> None:
        """Put what was written on disk (before a mid-run state that relies on it is written)."""
        if self._fd is not None:
            os.fsync(self._fd)

    def finish(self) -> None:
        """Check every step was written, then move the file over ``final`` in one step."""
        missing = [s for s in self.steps if s not in self.written]
        if missing or self._fd is None:
            raise RuntimeError(f"{self.partial}: checkpoints of steps {missing[:5]} were never written")
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        os.replace(self.partial, self.final)

    def close(self) -> None:
        """Close the file without finishing it (an interrupted group keeps it for its resume)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

