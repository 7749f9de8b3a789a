"""Process-wide settings a training loop may change while it runs, each scoped and restored: glibc's allocator (only
where the process is the tool's own: ``allow_allocator_tuning``), flushing denormals to zero, and the matmul precision
of the config field ``dtype``. Used as a library, the package leaves the caller's process as it found it.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from typing import Iterator

import torch

_TUNING = {"allowed": False}
#: mallopt's value is a C int
MALLOPT_INT_MAX = 2**31 - 1


def denormals_flushed() -> bool:
    """Whether the CPU flushes denormals now (torch has a setter but no getter): the smallest float32 denormal
    survives a multiplication by 1 only when it is off."""
    return bool(torch.tensor([1e-45], dtype=torch.float32).mul(1.0).item() == 0.0)


@contextlib.contextmanager
def flushing_denormals() -> Iterator[None]:
    """Denormals flushed to zero while training: dead neurons get exactly-zero gradients, so their Adam/LAMB moments
    decay geometrically through the denormal range, where every CPU float op is many times slower. A caller's own
    setting is left as it was found."""
    if denormals_flushed():
        yield
        return
    flushing = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushing:
            torch.set_flush_denormal(False)


@contextlib.contextmanager
def matmul_precision(dtype: str, device: torch.device):
    """The config field ``dtype``'s matmul mode while training: bfloat16 runs forward and backward under autocast
    (weights, optimizer state and the loss stay float32), tf32 lets CUDA matmuls use TF32 tensor cores."""
    if dtype == "bfloat16":
        # backward inside autocast too: the hand-written backward products (families/em/layers.py) then run in
        # bf16 like the forward ones, and autograd casts each gradient back to its float32 parameter
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    elif dtype == "tf32":
        before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    else:
        yield


def _mallopt(*settings: tuple[int, int], trim: bool = False) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        for option, value in settings:
            libc.mallopt(ctypes.c_int(option), ctypes.c_int(value))
        if trim:
            libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def tune_allocator() -> None:
    """Keep glibc from returning large temporaries to the OS every step (measured at 5-43% of a step on this
    project's 2-core machine). The settings are process-wide (glibc has no scoped ones): ``lean_allocator`` replaces
    them when the training loop ends."""
    # M_MMAP_MAX 0: big blocks from the heap; M_TRIM_THRESHOLD as high as mallopt's int takes (never trim). It
    # was 2^36 before, which ctypes passed as 0 (an int keeps the low 32 bits): the heap was trimmed on every
    # free, ~500 page faults per paper-size step
    _mallopt((-4, 0), (-1, MALLOPT_INT_MAX))


def lean_allocator() -> None:
    """Give freed memory back to the OS at once: big blocks (>= 256 KiB) mapped and unmapped one by one, the heap
    trimmed. Evaluation allocates many (instances, neurons, features) temporaries of varied sizes, which glibc's
    default (a threshold that rises to the largest block freed) kept in the heap: 2.5x the live peak, the largest
    part of a paper-size sweep's peak memory (193 -> 79 MB for a six-instance checkpoint)."""
    _mallopt((-4, 1 << 16), (-3, 1 << 18), (-1, 1 << 17), trim=True)  # M_MMAP_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD


@contextlib.contextmanager
def fast_allocator() -> Iterator[None]:
    """``tune_allocator`` for the training loop, ``lean_allocator`` after it (also when it is interrupted)."""
    tune_allocator()
    try:
        yield
    finally:
        lean_allocator()


def allow_allocator_tuning(allowed: bool = True) -> None:
    """Let training loops retune glibc's allocator (``fast_allocator``) from now on: for scripts that own their
    process (the benchmarks). The command line and the SLURM worker use ``allocator_tuning_allowed``; a library
    caller's process (a notebook kernel) is left as it is unless it asks."""
    _TUNING["allowed"] = allowed


@contextlib.contextmanager
def allocator_tuning_allowed() -> Iterator[None]:
    """``allow_allocator_tuning`` within a block (a command, a SLURM task), as it was after it."""
    before = _TUNING["allowed"]
    _TUNING["allowed"] = True
    try:
        yield
    finally:
        _TUNING["allowed"] = before


def training_allocator() -> contextlib.AbstractContextManager[None]:
    """``fast_allocator`` where allowed (``allow_allocator_tuning``), else nothing."""
    return fast_allocator() if _TUNING["allowed"] else contextlib.nullcontext()
