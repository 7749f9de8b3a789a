"""Local mid-group resume: a `toymodels run` killed with SIGKILL mid-group, then `--resume`, gives bit-identical
results to an uninterrupted run (the group's state file holds parameters, optimizer and RNG states, logs and
checkpoints), and finished groups are not re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from toymodels import store
from toymodels.cli import resolve_sweep
from toymodels.launch import state_step
from toymodels.plan import plan
from toymodels.sweep import run_sweep

# Two groups (steps is a group field): g000 trains 64 steps, g001 256 steps (long enough to be killed mid-run).
ARGS = ["LR1", "--scale", "smoke", "--set", "lr=0.01", "--sweep", "steps=64,256"]
NOT_DETERMINISTIC = {"train_seconds"}  # wall time


def toymodels_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "toymodels.cli", *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TOYMODELS_STATE_EVERY_S"}
    env["OMP_NUM_THREADS"] = "1"  # the test machine has 2 cores, shared
    return {**env, **extra}


def reference(args: list[str], out: Path) -> Path:
    """The same sweep run uninterrupted, in this process; returns its folder."""
    sweep = resolve_sweep(args[0], args[args.index("--scale") + 1],
                          [args[i + 1] for i, a in enumerate(args) if a == "--set"],
                          [args[i + 1] for i, a in enumerate(args) if a == "--sweep"], None, None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like the subprocesses (results do not depend on it at these sizes)
    try:
        run_sweep(sweep, out, progress=False)
    finally:
        torch.set_num_threads(threads)
    return out


def assert_same_results(a: Path, b: Path) -> None:
    """Every table value (but wall times) and every checkpoint tensor of two results folders are exactly equal."""
    ra, rb = store.load(a), store.load(b)
    assert ra.complete and rb.complete
    assert list(ra.instances.columns) == list(rb.instances.columns)
    cols = [c for c in ra.instances.columns if c not in NOT_DETERMINISTIC]
    pd.testing.assert_frame_equal(ra.instances[cols], rb.instances[cols], check_exact=True)
    key = ["run_id", "name", "step"]
    pd.testing.assert_frame_equal(ra.metrics.sort_values(key, ignore_index=True),
                                  rb.metrics.sort_values(key, ignore_index=True), check_exact=True)
    gids = sorted(ra.instances["group"].unique())
    assert gids == sorted(rb.instances["group"].unique())
    for gid in gids:
        ta, tb = ra.checkpoint_tensors(gid), rb.checkpoint_tensors(gid)
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{gid} {k} differs"


def test_sigkill_mid_group_then_resume_is_bit_identical(tmp_path):
    sweep_args = ARGS + ["--no-report", "--no-progress"]
    groups = plan(resolve_sweep("LR1", "smoke", ["lr=0.01"], ["steps=64,256"], None, None))
    assert [len(v) for v in groups.values()] == [1, 1] and groups["g001"][0].cfg.optim.steps == 256
    out = tmp_path / "killed"
    state = out / "groups" / "g001" / "state.safetensors"
    # a state file after every step, so that one exists soon after g001 starts
    proc = subprocess.Popen(toymodels_cmd("run", *sweep_args, "--out", str(out)),
                            env=subprocess_env(TOYMODELS_STATE_EVERY_S="0"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not state.exists():
            assert proc.poll() is None, "the run ended before g001 wrote a state file:\n" + proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no state file for g001 after 300 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # killed mid-group: g000 finished, g001 has a mid-run state and no DONE
    assert store.group_done(out, "g000") and not store.group_done(out, "g001")
    step = state_step(out, "g001")
    assert step is not None and 0 < step < 256
    g000_mtime = (out / "groups" / "g000" / "checkpoints.safetensors").stat().st_mtime_ns

    resumed = subprocess.run(toymodels_cmd("run", *sweep_args, "--out", str(out), "--resume"),
                             env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    # g001 continued from its saved state (at or after the step seen above), g000 was not trained again
    said = [ln for ln in resumed.stderr.splitlines() if "g001: continuing from its mid-run state at step" in ln]
    assert len(said) == 1 and int(said[0].split()[-1]) >= step, resumed.stderr
    assert "g000" not in resumed.stderr
    assert (out / "groups" / "g000" / "checkpoints.safetensors").stat().st_mtime_ns == g000_mtime
    assert store.group_done(out, "g001") and not state.exists()

    assert_same_results(reference(ARGS, tmp_path / "uninterrupted"), out)
    # the merged top-level table has both groups' rows
    assert sorted(store.read_parquet(out / "instances.parquet")["run_id"]) == ["r0000", "r0001"]
