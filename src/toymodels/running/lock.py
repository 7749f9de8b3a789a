"""One writer per results folder: an OS file lock, released by the kernel on any exit (even SIGKILL).

``FolderLock(folder)`` takes an exclusive, non-blocking ``flock`` on ``<folder>/.lock`` and writes the holder's
PID into it; a second run or resume of the same folder fails at once, naming that PID. ``lock_holder(folder)``
tells a reader (the dashboard, ``toymodels status``) whether a live process is writing the folder.

Example:
    >>> with FolderLock("runs/LR1-quick"):     # doctest: +SKIP
    ...     train_the_groups()
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from toymodels.results.files import open_in_place

LOCK_NAME = ".lock"


class FolderBusyError(RuntimeError):
    """Another process holds the folder's lock."""


class FolderLock:
    """Exclusive lock of a results folder (the folder must exist)."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        fd = open_in_place(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"process {holder}" if holder else "another process"
            raise FolderBusyError(f"results folder '{self.path.parent}' is in use by {who} (a run or resume of it); "
                                  "wait for it to finish or stop it, then try again") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a stale PID would mislead readers; the lock itself goes with the fd
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def lock_holder(folder: str | Path) -> int | None:
    """The PID of the live process writing ``folder``, 0 if one holds it without a readable PID, None if none."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a link or a FIFO is no lock
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        return pid or 0
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return None
