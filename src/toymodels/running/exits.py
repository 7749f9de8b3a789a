"""How a command ends when it cannot finish: one line on stderr, and an exit status saying whose problem it is.

* 2, the input: a config, a flag, a path the user typed or a results folder that cannot be used as it is (our own
  error classes: ``ConfigError``, ``RegistryError``, ``ResultsError``, ``FolderBusyError``; and an ``OSError`` about
  the path itself: a name too long, a folder where a file is expected, a file where a folder is);
* 1, the environment: a full disk, a file-size limit, no permission, a read-only file system, a results folder moved
  away during a run, SLURM tasks that failed (``EnvironmentStop``); and anything unexpected, said in one line
  (``TOYMODELS_DEBUG=1`` shows its traceback).

The CLI (``cli.py``) turns every exception into :func:`error_line` and :func:`exit_status`; a run stopped by the
environment adds the command that resumes it. :func:`check_path` refuses, before any work, a path the file system
cannot hold; :class:`FolderWatch` stops a run whose results folder was moved away.

Example:
    >>> exit_status(OSError(28, "No space left on device", "runs/x/sweep.json"))
    1
    >>> error_line(OSError(28, "No space left on device", "runs/x/sweep.json"))
    "error: cannot write 'runs/x/sweep.json': no space left on the device (ENOSPC); free some space"
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from toymodels.config import ConfigError
from toymodels.config.messages import shown
from toymodels.config.registry import RegistryError
from toymodels.config.wording import spelled
from toymodels.results.store import ResultsError
from toymodels.running.lock import FolderBusyError

#: set to 1 to see the traceback of an unexpected error (the one line still ends the output)
DEBUG_ENV = "TOYMODELS_DEBUG"


class EnvironmentStop(RuntimeError):
    """The machine or the cluster stopped the work, not the input (exit 1); the message is one line."""


class FolderGone(EnvironmentStop):
    """The results folder was moved or deleted while a command wrote it."""


#: errors in what the user gave (exit 2)
BAD_INPUT: tuple[type[BaseException], ...] = (ConfigError, RegistryError, ResultsError, FolderBusyError)

#: OSErrors about a path itself, not about the machine: the path the user gave is wrong (exit 2)
PATH_ERRNOS = {errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ELOOP, errno.ENOENT,
               errno.ENOTEMPTY}

#: what each OSError means to a user, and what to do
WHY = {
    errno.ENOSPC: "no space left on the device (ENOSPC); free some space",
    errno.EDQUOT: "the disk quota is used up (EDQUOT); free some space",
    errno.EFBIG: "the file grew past a file-size limit (EFBIG; see `ulimit -f`)",
    errno.EACCES: "no permission (EACCES)",
    errno.EPERM: "not permitted (EPERM)",
    errno.EROFS: "a read-only file system (EROFS)",
    errno.EIO: "an input/output error of the device (EIO)",
    errno.ENAMETOOLONG: "a name too long for the file system (ENAMETOOLONG)",
    errno.EISDIR: "is a folder where a file is expected (EISDIR)",
    errno.ENOTDIR: "a file stands where a folder is expected (ENOTDIR)",
    errno.EEXIST: "a file stands where a folder is needed (EEXIST)",
    errno.ENOENT: "does not exist (ENOENT)",
    errno.ELOOP: "too many symbolic links (ELOOP)",
    errno.EMFILE: "too many open files (EMFILE; see `ulimit -n`)",
}


def single_line(text: str) -> str:
    """``text`` as one line: its lines joined by "; " (a message must never span lines)."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def os_error_text(err: OSError) -> str:
    """What an OSError means, naming its path(s): "cannot write 'x': no space left on the device (ENOSPC); ..."."""
    why = WHY.get(err.errno, err.strerror or type(err).__name__)
    if err.filename is None and err.strerror and err.strerror != os.strerror(err.errno or 0):
        return err.strerror  # our own message, raised as an OSError for its exit status
    where = [str(p) for p in (err.filename, err.filename2) if p is not None]
    verb = "cannot write" if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS) else "cannot use"
    return f"{verb} {' -> '.join(repr(p) for p in where)}: {why}" if where else f"{why}"


class FolderWatch:
    """Whether the results folder is still where the run began writing it: moved or deleted mid-run, the next write
    would make a new folder at the old place. ``check()`` raises FolderGone (at most every ``every_s`` seconds)."""

    def __init__(self, folder: Path, every_s: float = 1.0):
        self.folder, self.every_s = Path(folder), every_s
        self.identity, self.last = self._identity(), time.monotonic()

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.folder)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def check(self, now: bool = True) -> None:
        if not now and time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        if self._identity() != self.identity:
            raise FolderGone(f"results folder '{self.folder}' was moved or deleted while the run wrote it; what "
                             f"finished is in it: give its new place as {spelled('out')} (or move it back) and "
                             f"continue with {spelled('resume', True)}")


def exit_status(err: BaseException) -> int:
    """2 for bad input, 1 for the environment and for anything unexpected (see the module docstring)."""
    if isinstance(err, BAD_INPUT):
        return 2
    if isinstance(err, OSError) and err.errno in PATH_ERRNOS:
        return 2
    return 1


def error_line(err: BaseException) -> str:
    """The one line a command ends with for ``err``: "error: ..."."""
    if isinstance(err, (*BAD_INPUT, EnvironmentStop)):
        text = str(err)
    elif isinstance(err, OSError):
        text = os_error_text(err)
    elif isinstance(err, MemoryError):
        text = "out of memory; use smaller sizes or fewer instances per setting"
    elif isinstance(err, RecursionError):
        text = "an input nested too deeply to read"
    else:
        text = (f"unexpected {type(err).__name__}: {err} (a bug of toymodels; {DEBUG_ENV}=1 shows where, please "
                "report it)")
    return "error: " + single_line(text)


def debugging() -> bool:
    """Whether ``TOYMODELS_DEBUG`` asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def check_path(path: str | os.PathLike, flag: str) -> Path:
    """``path`` (what the user typed for ``flag``) if the file system can hold it; ConfigError naming it otherwise:
    a NUL byte, a name longer than the file system allows (usually 255 bytes), or a path longer than PATH_MAX."""
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not isinstance(text, str) or not text or "\0" in text:
        raise ConfigError(f"{flag}: not a path (got {shown(path)})")
    ancestor = next((p for p in Path(text).absolute().parents if _is_dir(p)), Path("/"))
    name_max, path_max = _limits(ancestor)
    long = next((part for part in Path(text).parts if len(os.fsencode(part)) > name_max), None)
    if long is not None:
        raise ConfigError(f"{flag} {shown(text)}: a name of {len(os.fsencode(long))} bytes ({shown(long)}); this "
                          f"file system allows at most {name_max}")
    if len(os.fsencode(str(Path(text).absolute()))) >= path_max:
        raise ConfigError(f"{flag} {shown(text)}: longer than this file system's paths ({path_max} bytes)")
    return Path(text)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long, a loop of links: not a folder we can use
        return False


def _limits(folder: Path) -> tuple[int, int]:
    try:
        return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 255, 4096
