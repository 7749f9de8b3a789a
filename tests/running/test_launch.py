"""Launchers: the local backend's options, the fail-fast without SLURM, and the SLURM backend against a REAL cluster.

The tests marked ``slurm`` need ``sbatch`` on PATH and a running cluster (``bash .ci/slurm.sh start``, as CI does);
they skip with the reason otherwise. Each sweep is tiny (smoke scale, one instance per
group, two groups); the tasks run with one thread each (the cluster has as many CPUs as the machine).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import torch
from helpers import assert_same_results, reference, subprocess_env, toymodels_cmd

from toymodels.results import store
from toymodels.config import ConfigError
from toymodels.running.launch import (
    _expand_ids,
    get_launcher,
    latest_tasks,
    state_step,
    task_log,
)

HAVE_SBATCH = shutil.which("sbatch") is not None
try:
    import submitit  # noqa: F401

    HAVE_SUBMITIT = True
except ImportError:
    HAVE_SUBMITIT = False

NEEDS_SLURM = [
    pytest.mark.slurm,
    pytest.mark.skipif(not HAVE_SBATCH, reason="SLURM is not installed here (no sbatch on PATH); "
                       "start a cluster with `bash .ci/slurm.sh start`"),
    pytest.mark.skipif(not HAVE_SUBMITIT, reason="submitit is not installed: pip install -e '.[slurm]'"),
]


def slurm_test(fn):
    for mark in NEEDS_SLURM:
        fn = mark(fn)
    return fn

# Two tiny groups of equal cost (k changes the shapes, so k=4 and k=8 are separate groups) that run at once.
SMOKE = ["LR1", "--scale", "smoke", "--set", "lr=0.01", "--set", "steps=64", "--sweep", "k=4,8"]
QUIET = ["--no-report", "--no-progress"]


def slurm_env(**extra: str) -> dict[str, str]:
    return subprocess_env(TOYMODELS_SLURM_POLL_S="0.5", **extra)


def toymodels(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(toymodels_cmd(*args), env=env or slurm_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def cancel_leftovers():
    """Folders whose SLURM jobs are cancelled after the test (a failing test leaves no job behind)."""
    folders: list[Path] = []
    yield folders
    for folder in folders:
        tasks = latest_tasks(folder) if (folder / "slurm" / "jobs.json").exists() else {}
        jobs = sorted({t.split("_")[0] for t in tasks.values()})
        if jobs:
            subprocess.run(["scancel", *jobs], capture_output=True)


# ---- no SLURM needed ------------------------------------------------------------------------------------------------
def test_without_sbatch_backend_slurm_fails_at_once(tmp_path):
    """PATH without sbatch: one clear line, exit 2, no folder, no training."""
    empty = tmp_path / "bin"
    empty.mkdir()
    out = tmp_path / "never"
    t0 = time.monotonic()
    res = toymodels("run", *SMOKE, *QUIET, "--out", str(out), "--backend", "slurm",
                    env=slurm_env(PATH=str(empty)), timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines == ["error: --backend slurm: no 'sbatch' on PATH (SLURM is not installed on this machine, "
                     "or not on PATH)"]
    assert not out.exists()
    assert time.monotonic() - t0 < 60  # an import and a check, no training (the smoke sweep is not run)


def test_without_submitit_backend_slurm_fails_at_once(monkeypatch):
    monkeypatch.setattr("toymodels.running.launch.shutil.which", lambda cmd: f"/usr/bin/{cmd}")  # as if SLURM were here
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    with pytest.raises(ConfigError, match=r"needs submitit: pip install 'toymodels\[slurm\]'"):
        get_launcher("slurm")


def test_local_backend_rejects_slurm_options_and_unknown_backends(tmp_path):
    # a Python call is told its arguments, the command line its flags (below)
    with pytest.raises(ConfigError, match="^partition, detach: only with backend='slurm'$"):
        get_launcher("local", partition="gpu", detach=True)
    with pytest.raises(ConfigError, match="must be one of local, slurm"):
        get_launcher("pbs")
    from typer.testing import CliRunner

    from toymodels.cli import app

    res = CliRunner().invoke(app, ["run", *SMOKE, *QUIET, "--out", str(tmp_path / "x"), "--max-parallel", "2"])
    assert res.exit_code == 2 and "--max-parallel: only with --backend slurm" in res.output
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_task_on_a_node_without_the_device_says_so(tmp_path):
    # a cuda sweep whose task lands on a node without a GPU (e.g. submitted without --slurm-gpus-per-task)
    from toymodels.config.presets import preset
    from toymodels.running.sweep import open_folder
    from toymodels.running.worker import run_task

    sweep = preset("LR1", scale="smoke")
    sweep = sweep.model_copy(update={"base": sweep.base.replace(device="cuda")})
    open_folder(sweep, tmp_path / "r", resume=False, say=print).release()
    with pytest.raises(ConfigError, match=r"g000: field 'device': 'cuda' is not available here"):
        run_task(tmp_path / "r", "g000")
    assert not (tmp_path / "r" / "groups").exists()


def test_slurm_job_ids_are_expanded():
    assert _expand_ids("17") == ["17"]
    assert _expand_ids("17_3") == ["17_3"]
    assert _expand_ids("17_[0-2,5%2]") == ["17_0", "17_1", "17_2", "17_5"]


# ---- a real SLURM cluster -------------------------------------------------------------------------------------------
def _require_cluster() -> None:
    if not (HAVE_SBATCH and HAVE_SUBMITIT):
        pytest.skip("needs SLURM and submitit")
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        pytest.fail("SLURM is installed but its controller does not answer (`scontrol ping`: "
                    f"{(ping.stdout + ping.stderr).strip()}); start it with `bash .ci/slurm.sh start`")


@pytest.fixture(scope="module")
def slurm_smoke(tmp_path_factory):
    """The smoke sweep on SLURM: submitted with --detach, then `run --resume` waits for the same tasks."""
    _require_cluster()
    out = tmp_path_factory.mktemp("slurm") / "smoke"
    try:
        sub = toymodels("run", *SMOKE, *QUIET, "--out", str(out), "--backend", "slurm", "--detach", timeout=120)
        assert sub.returncode == 0, sub.stdout + sub.stderr
        assert "submitted" in sub.stdout and "2 group(s) submitted to SLURM as job" in sub.stderr
        jobs = json.loads((out / "slurm" / "jobs.json").read_text())
        assert len(jobs["submissions"]) == 1 and set(jobs["submissions"][0]["tasks"]) == {"g000", "g001"}
        status = toymodels("status", str(out), timeout=120)
        assert status.returncode == 0 and "/2 groups done" in status.stdout, status.stdout + status.stderr
        waited = toymodels("run", *SMOKE, *QUIET, "--out", str(out), "--backend", "slurm", "--resume")
        assert waited.returncode == 0, waited.stdout + waited.stderr
    finally:
        tasks = latest_tasks(out) if (out / "slurm" / "jobs.json").exists() else {}
        subprocess.run(["scancel", *{t.split("_")[0] for t in tasks.values()}], capture_output=True)
    # the waiting run adopted the queued/running tasks (or found the groups done): nothing was submitted twice
    assert len(json.loads((out / "slurm" / "jobs.json").read_text())["submissions"]) == 1
    return out


@slurm_test
def test_slurm_smoke_sweep_matches_local_run(slurm_smoke, tmp_path):
    assert_same_results(reference(SMOKE, tmp_path / "local"), slurm_smoke)
    status = toymodels("status", str(slurm_smoke), timeout=120)
    assert status.returncode == 0 and "2/2 groups done, 2/2 instances merged" in status.stdout, status.stdout


def _sacct_times(task_ids: list[str]) -> dict[str, tuple[datetime, datetime]]:
    jobs = ",".join(sorted({t.split("_")[0] for t in task_ids}))
    out = subprocess.run(["sacct", "-n", "-P", "-X", "-o", "JobID,Start,End", "-j", jobs], capture_output=True,
                         text=True, check=True).stdout
    times = {}
    for line in out.splitlines():
        jid, start, end = line.split("|")
        times[jid] = (datetime.fromisoformat(start), datetime.fromisoformat(end))
    return {t: times[t] for t in task_ids}


@slurm_test
def test_simultaneous_array_tasks_leave_a_consistent_folder(slurm_smoke):
    tasks = latest_tasks(slurm_smoke)
    # the premise: both array tasks ran at the same time (so they wrote into the folder concurrently)
    (s0, e0), (s1, e1) = _sacct_times([tasks["g000"], tasks["g001"]]).values()
    assert max(s0, s1) <= min(e0, e1), f"tasks did not overlap: {s0}-{e0} and {s1}-{e1}"
    # every group's files load, no state or temp file is left, and the merged tables hold every row
    rows, metric_rows = 0, 0
    for gid in ("g000", "g001"):
        gdir = store.group_dir(slurm_smoke, gid)
        assert sorted(p.name for p in gdir.iterdir()) == ["DONE", "checkpoints.safetensors", "instances.parquet",
                                                          "metrics.parquet"]
        assert store.read_tensors(gdir / "checkpoints.safetensors")
        inst = store.read_parquet(gdir / "instances.parquet")
        assert list(inst["group"]) == [gid]
        rows += len(inst)
        metric_rows += len(store.read_parquet(gdir / "metrics.parquet"))
    merged = store.read_parquet(slurm_smoke / "instances.parquet")
    assert sorted(merged["run_id"]) == ["r0000", "r0001"] and rows == 2
    assert len(store.read_parquet(slurm_smoke / "metrics.parquet")) == metric_rows > 0
    assert not [p for p in slurm_smoke.rglob("*.tmp")]
    # each task's log says it trained its group to the end
    for gid, task in tasks.items():
        log = task_log(slurm_smoke, task).read_text()
        assert f"{gid}: DONE" in log


def _calibrated_steps(target_s: float) -> int:
    """Steps that take about ``target_s`` seconds of training for the long group on this machine right now."""
    from toymodels.config import ExperimentConfig
    from toymodels.config.presets import preset
    from toymodels.engine.train import train_group

    cfg = ExperimentConfig.from_flat({**preset("LR1", scale="smoke").base.flat(), "lr": 0.01, "steps": 128})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the tasks
    try:
        train_group([cfg])  # warm up
        t0 = time.perf_counter()
        train_group([cfg])
        per_step = (time.perf_counter() - t0) / 128
    finally:
        torch.set_num_threads(threads)
    return int(min(16384, max(1024, target_s / per_step)) // 16 * 16)


@pytest.fixture(scope="module")
def long_sweep(tmp_path_factory):
    """A sweep whose g001 trains long enough to be interrupted mid-run (~12 s here, calibrated; g000 is short),
    and its uninterrupted local run: (args, reference folder)."""
    _require_cluster()
    args = ["LR1", "--scale", "smoke", "--set", "lr=0.01", "--sweep", f"steps=64,{_calibrated_steps(12.0)}"]
    return args, reference(args, tmp_path_factory.mktemp("long") / "uninterrupted")


def _start_and_wait_for_state(args: list[str], out: Path) -> tuple[subprocess.Popen, str]:
    """`toymodels run ... --backend slurm` in the background, until g001's task has saved a mid-run state."""
    state = out / "groups" / "g001" / "state.safetensors"
    proc = subprocess.Popen(toymodels_cmd("run", *args, *QUIET, "--out", str(out), "--backend", "slurm"),
                            env=slurm_env(TOYMODELS_STATE_EVERY_S="0.2"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not state.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("g001 saved no state (within 180 s):\n" + proc.communicate()[1])
        time.sleep(0.1)
    return proc, latest_tasks(out)["g001"]


def _squeue_state(task: str) -> str:
    return subprocess.run(["squeue", "-h", "-o", "%T", "-j", task], capture_output=True, text=True).stdout.strip()


@slurm_test
def test_scancel_mid_run_is_reported_and_resume_completes_identically(long_sweep, tmp_path, cancel_leftovers):
    # g001 must still be training when SLURM kills it: scancel sends SIGTERM, which submitit ignores (it waits for
    # USR2), and SIGKILL follows after the cluster's KillWait (5 s); g001 trains ~12 s
    args, ref = long_sweep
    long = int(args[-1].split(",")[1])
    out = tmp_path / "cancelled"
    cancel_leftovers.append(out)
    proc, task = _start_and_wait_for_state(args, out)
    try:
        subprocess.run(["scancel", task], check=True)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    # the parent reports the cancelled task with its state and log, after merging what finished; exit 1
    assert proc.returncode == 1, stdout + stderr
    log = task_log(out, task)
    assert f"g001  task {task}  CANCELLED  log: {log}" in stderr, stderr
    assert "SIGTERM" in log.read_text()  # the log is the task's
    assert store.group_done(out, "g000") and not store.group_done(out, "g001")
    assert list(store.read_parquet(out / "instances.parquet")["group"]) == ["g000"]
    saved = state_step(out, "g001")
    assert saved is not None and 0 < saved < long
    status = toymodels("status", str(out), timeout=120)
    assert "1/2 groups done" in status.stdout and f"g001  task {task}  CANCELLED" in status.stdout, status.stdout

    # --resume re-submits only g001, which continues from its saved state
    resumed = toymodels("run", *args, *QUIET, "--out", str(out), "--backend", "slurm", "--resume", timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    subs = json.loads((out / "slurm" / "jobs.json").read_text())["submissions"]
    assert [list(s["tasks"]) for s in subs] == [["g000", "g001"], ["g001"]]
    new_log = task_log(out, subs[1]["tasks"]["g001"]).read_text()
    cont = [ln for ln in new_log.splitlines() if "continuing from its mid-run state at step" in ln]
    assert len(cont) == 1 and int(cont[0].split()[-1]) >= saved, new_log
    assert_same_results(ref, out)


@slurm_test
def test_preempted_task_requeues_and_continues_from_its_state(long_sweep, tmp_path, cancel_leftovers):
    """USR2 is what SLURM sends a submitit task before its time limit (--signal=USR2@90) and what submitit's own
    preemption test sends: GroupTask.checkpoint requeues the task, which continues from the state file."""
    args, ref = long_sweep
    out = tmp_path / "preempted"
    cancel_leftovers.append(out)
    proc, task = _start_and_wait_for_state(args, out)
    try:
        subprocess.run(["scancel", "--signal=USR2", task], check=True)
        # SLURM holds a requeued job for ~2 minutes (BeginTime); let it start sooner, but not within the second its
        # old attempt was killed: slurmd refuses a credential no newer than its revocation ("Job credential
        # revoked") and the task would end FAILED, a race of this shortcut that the real 2-minute hold avoids
        deadline = time.monotonic() + 60
        while _squeue_state(task) != "PENDING":
            assert time.monotonic() < deadline, f"task {task} was not requeued: {_squeue_state(task)}"
            time.sleep(0.2)
        subprocess.run(["scontrol", "update", f"JobId={task}", "StartTime=now+3"], check=True)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = task_log(out, task).read_text() if task_log(out, task).exists() else "(no task log)"
    assert proc.returncode == 0, stdout + stderr + "\ntask log:\n" + log
    requeued = [ln for ln in log.splitlines() if "g001: preempted or near its time limit; requeued" in ln]
    cont = [ln for ln in log.splitlines() if "continuing from its mid-run state at step" in ln]
    assert len(requeued) == 1 and len(cont) == 1, log
    assert int(cont[0].split()[-1]) > 0
    # the same task, not a new submission
    assert len(json.loads((out / "slurm" / "jobs.json").read_text())["submissions"]) == 1
    assert_same_results(ref, out)
