"""Which failure is whose (exit 2: the input; 1: the environment or a bug), said in one line; paths the file system
cannot hold are refused before any work; a results folder moved away is noticed."""

from __future__ import annotations

import errno
import os

import pytest

from toymodels.config import ConfigError
from toymodels.config.registry import RegistryError
from toymodels.results.store import ResultsError
from toymodels.running.exits import FolderGone, FolderWatch, check_path, error_line, exit_status
from toymodels.running.launch import LaunchError
from toymodels.running.lock import FolderBusyError


@pytest.mark.parametrize("err, status, words", [
    (ConfigError("field 'lr': bad"), 2, ["error: field 'lr': bad"]),
    (RegistryError("unknown colour 'x'"), 2, ["unknown colour"]),
    (ResultsError("x/sweep.json: missing"), 2, ["x/sweep.json"]),
    (FolderBusyError("in use"), 2, ["in use"]),
    (OSError(errno.ENOSPC, "No space left on device", "r/a.parquet"), 1, ["'r/a.parquet'", "ENOSPC", "free"]),
    (OSError(errno.EFBIG, "File too large", "r/c.safetensors"), 1, ["EFBIG", "ulimit -f"]),
    (PermissionError(errno.EACCES, "Permission denied", "r"), 1, ["'r'", "no permission"]),
    (OSError(errno.EROFS, "Read-only file system", "r"), 1, ["read-only"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "r/DONE"), 2, ["'r/DONE'", "folder where a file"]),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "r/groups"), 2, ["'r/groups'"]),
    (OSError(errno.ENAMETOOLONG, "File name too long", "x" * 300), 2, ["too long"]),
    (PermissionError(errno.EACCES, "results folder 'r' is read-only"), 1, ["results folder 'r' is read-only"]),
    (LaunchError("2 of 3 SLURM task(s) ended\n  g001  task 5_1  FAILED\nresume"), 1, ["ended; g001  task 5_1"]),
    (MemoryError(), 1, ["out of memory"]),
    (ZeroDivisionError("boom"), 1, ["unexpected ZeroDivisionError: boom", "TOYMODELS_DEBUG=1"]),
])
def test_each_failure_has_its_status_and_one_line(err, status, words):
    line = error_line(err)
    assert exit_status(err) == status
    assert line.startswith("error: ") and "\n" not in line
    for word in words:
        assert word in line, (word, line)


@pytest.mark.parametrize("path, words", [
    ("x" * 256, ["256 bytes", "at most"]), ("ok/" + "é" * 200 + "/x", ["400 bytes"]), ("a\0b", ["not a path"]),
    ("", ["not a path"]), (3, ["not a path"]), ("/" + "d/" * 3000, ["longer than"]),
])
def test_a_path_the_file_system_cannot_hold_is_refused_naming_the_flag(path, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        check_path(path, "--out")
    assert str(caught.value).startswith("--out") and all(w in str(caught.value) for w in words)
    assert list(tmp_path.iterdir()) == []


def test_a_path_it_can_hold_is_returned_as_typed(tmp_path):
    assert str(check_path(tmp_path / "runs" / "a-b.c", "--out")) == str(tmp_path / "runs" / "a-b.c")


def test_a_folder_moved_or_deleted_is_noticed(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    watch = FolderWatch(folder, every_s=3600)
    watch.check()
    os.rename(folder, tmp_path / "moved")
    watch.check(now=False)  # not yet: at most every every_s seconds
    folder.mkdir()  # a new folder at the old place is not the one the run began
    with pytest.raises(FolderGone, match="was moved or deleted"):
        watch.check()
