"""Writing only inside a results folder: no write ever goes through a symbolic link or a hard link to a file
outside it, and nothing but a regular file is written in place.

``refuse_links(folder)`` is asked before a command writes into a folder; ``open_in_place`` opens the files written in
place (the folder's lock, a group's checkpoint file filled as it trains). Every other file is written by
``store.atomic_write``, which replaces the directory entry and so never writes through a link.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from toymodels.results.store import ResultsError


#: sub-folders of a results folder that toymodels does not write itself: submitit's job files and logs (``slurm/``,
#: where submitit keeps links of its own)
NOT_OURS = ("slurm",)


def refuse_links(folder: Path) -> None:
    """ResultsError when anything inside ``folder`` (but what ``NOT_OURS`` holds) is a symbolic link, or a file with another
    hard link: the tool writes only inside a results folder, and a link would carry a write (a truncation, a
    checkpoint written in place) to a file outside it. The folder itself may be reached through a link (e.g. ``runs/``
    on another disk)."""
    folder = Path(folder)
    for root, dirs, files in os.walk(folder, followlinks=False):
        entries = dirs + files  # NOT_OURS itself is checked, what is inside it is not
        if Path(root) == folder:
            dirs[:] = [d for d in dirs if d not in NOT_OURS]
        for name in entries:
            path = Path(root) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise ResultsError(f"results folder '{folder}': {path.relative_to(folder)} is a symbolic link; "
                                   "toymodels never writes through links (remove it, or copy the folder without "
                                   "links: cp -rL)")
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                raise ResultsError(f"results folder '{folder}': {path.relative_to(folder)} has another hard link; "
                                   "a write would change the other file too (copy the folder: cp -r)")


def open_in_place(path: Path, flags: int, mode: int = 0o666) -> int:
    """``os.open`` for a file written in place (a lock, a checkpoint file filled as it trains): never through a
    symbolic link, and only a regular file with no other hard link (ResultsError naming it otherwise)."""
    truncate = bool(flags & os.O_TRUNC)  # only once the file is known to be ours: O_TRUNC would act before the check
    try:
        fd = os.open(path, (flags & ~os.O_TRUNC) | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ResultsError(f"{path}: is a symbolic link; toymodels never writes through links") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
        os.close(fd)
        why = "has another hard link" if stat.S_ISREG(st.st_mode) else "is not a regular file"
        raise ResultsError(f"{path}: {why}; toymodels writes only its own files")
    os.set_blocking(fd, True)
    if truncate:
        os.ftruncate(fd, 0)
    return fd
