"""One writer per results folder: a second run or resume fails at once naming the holder's PID; the lock goes with
the process, however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from toymodels.cli import app
from toymodels.running.lock import FolderBusyError, FolderLock, lock_holder

SMOKE = ["LR1", "--scale", "smoke", "--set", "steps=16", "--no-progress", "--no-report"]


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    out = tmp_path / "X"
    assert CliRunner().invoke(app, ["run", *SMOKE, "--out", str(out)]).exit_code == 0
    assert lock_holder(out) is None  # released after the run
    with FolderLock(out):
        assert lock_holder(out) == os.getpid()
        res = CliRunner().invoke(app, ["run", *SMOKE, "--out", str(out), "--resume"])
        assert res.exit_code == 2
        assert f"results folder '{out}' is in use by process {os.getpid()}" in res.output
        with pytest.raises(FolderBusyError, match=str(os.getpid())):
            FolderLock(out).acquire()
    assert CliRunner().invoke(app, ["run", *SMOKE, "--out", str(out), "--resume"]).exit_code == 0


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    code = ("import sys, time; from toymodels.running.lock import FolderLock; FolderLock(sys.argv[1]).acquire(); "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert lock_holder(tmp_path) == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert lock_holder(tmp_path) is None
    FolderLock(tmp_path).acquire().release()
