"""Ctrl-C and SIGTERM: the running group saves its state, the command prints one line with the exact --resume
command and exits 130 / 143, and the resumed run is bit-identical to an uninterrupted one. A second Ctrl-C stops
at once."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from helpers import assert_same_results, reference, subprocess_env, toymodels_cmd

from toymodels.results import store
from toymodels.running.interrupts import StopOnSignal
from toymodels.running.runner import state_step

# g000 is short; g001 is long enough (a few seconds) to be interrupted mid-group
ARGS = ["LR1", "--scale", "smoke", "--set", "lr=0.01", "--sweep", "steps=64,6000", "--no-report", "--no-progress"]


def start_and_interrupt(out, signum):
    proc = subprocess.Popen(toymodels_cmd("run", *ARGS, "--out", str(out)), env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not store.group_done(out, "g000"):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)  # inside g001
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_the_state_and_prints_the_resume_command(signum, code, tmp_path):
    out = tmp_path / "run"
    returncode, _, stderr = start_and_interrupt(out, signum)
    assert returncode == code, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "in group g001; its state is saved; continue with: toymodels run LR1" in lines[0]
    assert lines[0].endswith(f"--out {out} --resume")
    step = state_step(out, "g001")
    assert step is not None and 0 < step < 6000
    assert not list(out.rglob(".*.tmp"))
    assert store.group_done(out, "g000") and not store.group_done(out, "g001")
    if signum == signal.SIGTERM:  # the printed command finishes it, bit-identically
        resumed = subprocess.run(toymodels_cmd("run", *ARGS, "--out", str(out), "--resume"), env=subprocess_env(),
                                 capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr
        assert f"g001: continuing from its mid-run state at step {step}" in resumed.stderr
        assert_same_results(reference(ARGS, tmp_path / "uninterrupted"), out)


def test_the_second_ctrl_c_stops_at_once():
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert stop.requested() and stop.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
