"""Local mid-group resume: a `toymodels run` killed with SIGKILL mid-group, then `--resume`, gives bit-identical
results to an uninterrupted run (the group's state file holds parameters, optimizer and RNG states and logs; its
checkpoints so far are in the partial checkpoints file), and finished groups are not re-run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest

from helpers import assert_same_results, reference, subprocess_env, toymodels_cmd

from toymodels.results import store
from toymodels.cli import resolve_sweep
from toymodels.running.plan import plan
from toymodels.running.runner import state_step
from toymodels.running.sweep import run_sweep

# Two groups (steps is a group field): g000 trains 64 steps, g001 256 steps (long enough to be killed mid-run).
ARGS = ["LR1", "--scale", "smoke", "--set", "lr=0.01", "--sweep", "steps=64,256"]


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


def _truncate(path):
    path.write_bytes(path.read_bytes()[:100])


def _random_bytes(path):
    path.write_bytes(os.urandom(path.stat().st_size))


def _huge_header(path):
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")


def _pickle(path):
    import pickle

    path.write_bytes(pickle.dumps({"W1": [1.0, 2.0]}))


# (a file replaced by a link is not damage to repair but a folder refused before any write: tests/results/test_files.py)
DAMAGE = {"truncated": _truncate, "random bytes": _random_bytes, "huge header": _huge_header, "a pickle": _pickle,
          "deleted": lambda path: path.unlink()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished two-group sweep and its uninterrupted twin."""
    root = tmp_path_factory.mktemp("damage")
    reference(ARGS, root / "reference")
    return root


@pytest.mark.parametrize("how", DAMAGE)
def test_resume_retrains_a_group_whose_files_are_damaged(how, finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished / "reference", out)
    DAMAGE[how](out / "groups" / "g001" / "checkpoints.safetensors")
    (out / "groups" / "g000" / ".checkpoints.safetensors.x1y2.tmp").write_bytes(b"half")
    (out / "figures").mkdir(exist_ok=True)
    (out / "figures" / ".training.png.abc.tmp").write_bytes(b"half")
    notes: list[str] = []
    sweep = resolve_sweep("LR1", "smoke", ["lr=0.01"], ["steps=64,256"], None, None)
    run_sweep(sweep, out, resume=True, progress=False, say=notes.append)
    said = "\n".join(notes)
    assert "g001: checkpoints.safetensors" in said and "training it again" in said
    assert "g000:" not in said  # the intact group is kept
    assert "removed groups/g000/.checkpoints.safetensors.x1y2.tmp" in said
    assert not list(out.rglob(".*.tmp"))
    assert_same_results(finished / "reference", out)
