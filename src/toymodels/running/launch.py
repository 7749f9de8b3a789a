"""Where groups run: ``local`` (default) trains them in this process; ``slurm`` submits them as a SLURM job array.

A launcher takes the results folder and the unfinished groups ({gid: [Instance]}) and must leave each group it
finished with its files and DONE (``runner.run_group`` does that); the caller merges the tables afterwards (also when
the launcher raises, so that what finished is merged).

SLURM (``--backend slurm``, needs ``pip install 'toymodels[slurm]'`` and ``sbatch`` on PATH): every unfinished group
becomes one task of a job array submitted with submitit. A task gets only ``(folder, gid)``: it reads the sweep back
from ``sweep.json``, re-plans it and runs ``run_group`` for its group, which writes into the shared results folder
atomically (tmp + ``os.replace``) and ``DONE`` last. The submitting process (the parent) waits with a progress bar
over the tasks, merges the finished groups' tables as they come (it is the single writer of the top-level tables)
and reports every task that failed or was cancelled with its SLURM state and log. Job ids are kept in
``<folder>/slurm/jobs.json``; submitit's files and the tasks' logs (``<jobid>_<task>_0_log.out``) in
``<folder>/slurm/``.

Faults:

* A task that fails or is cancelled leaves its group without DONE; ``toymodels run ... --resume`` re-submits only
  such groups (groups whose task is still pending or running are waited for, not submitted twice).
* A group's full training state (parameters, optimizer state, RNG states, logged losses; the checkpoints so far
  are on disk already, in ``checkpoints.partial.safetensors``) is written to ``groups/<gid>/state.safetensors``
  every ``TOYMODELS_STATE_EVERY_S`` seconds (300 by default), and ``run_group`` continues from it: the final
  result is bit-identical to an uninterrupted run on CPU.
* Preemption and time-outs use submitit's checkpointing: SLURM signals the task (USR2, 90 s before its time limit
  or at preemption), ``GroupTask.checkpoint`` requeues the same ``(folder, gid)`` and the requeued task continues
  from the latest state file (so at most ``TOYMODELS_STATE_EVERY_S`` seconds of training are redone). A task that
  timed out too often (submitit's ``max_num_timeout``) or was killed without the signal ends as TIMEOUT/FAILED and
  ``--resume`` continues it from the same state file.
"""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from toymodels.results import store
from toymodels.config import ConfigError
from toymodels.config.wording import continue_hint, spelled
from toymodels.running.exits import EnvironmentStop, FolderWatch
from toymodels.running.interrupts import StopOnSignal
from toymodels.running.runner import device_missing, run_group, state_step
from toymodels.engine.train import TrainingInterrupted
from toymodels.running.worker import GroupTask


class LaunchError(EnvironmentStop):
    """Some groups did not finish (a SLURM task failed or was cancelled): names each task, its state and log."""


def mps_missing(device: str) -> str | None:
    """Why ``mps`` (Apple's GPU) cannot train here, or None (it passes the config's check on any machine)."""
    if device == "mps" and not torch.backends.mps.is_available():
        return (f"field 'device': 'mps' is not available here (torch {torch.__version__} sees no Apple GPU); "
                "use device=cpu")
    return None


class LocalLauncher:
    """Runs the groups in this process, in order; the top-level tables are merged after each group."""

    def check_devices(self, devices: set[str]) -> None:
        """Fail before any work when a sweep asks for a device this machine lacks."""
        for device in sorted(devices):
            why = device_missing(device) or mps_missing(device)
            if why:
                raise ConfigError(why)

    def run(self, folder: Path, todo: dict, progress: bool = True, state_every_s: float | None = None,
            name: str = "sweep", on_group_done: Callable[[Path, str], None] | None = None) -> None:
        total = sum(len(v) * v[0].cfg.optim.steps for v in todo.values())
        bar = tqdm(total=total, unit="inst-step", unit_scale=True, disable=not progress, dynamic_ncols=True,
                   desc=name)
        watch = FolderWatch(folder)
        with StopOnSignal() as stop:  # Ctrl-C / SIGTERM: the running group saves its state and stops
            try:
                for gid, insts in todo.items():
                    watch.check()
                    done = [0]
                    step = state_step(folder, gid)
                    if step is not None:
                        bar.write(f"{gid}: continuing from its mid-run state at step {step}", file=sys.stderr)
                    elif (store.group_dir(folder, gid) / "state.safetensors").exists():
                        bar.write(f"{gid}: its mid-run state cannot be continued (the checkpoints taken before it are "
                                  "missing or damaged); training it again from step 0", file=sys.stderr)

                    def on_progress(step: int, losses: torch.Tensor, n=len(insts), gid=gid) -> None:
                        watch.check(now=False)
                        bar.update((step - done[0]) * n)
                        done[0] = step
                        finite = losses[torch.isfinite(losses)]
                        bar.set_postfix(group=gid, loss=f"{finite.mean():.4g}" if finite.numel() else "nan")

                    run_group(folder, gid, insts, on_progress=on_progress, state_every_s=state_every_s,
                              should_stop=stop.requested)
                    store.merge_tables(folder)
                    if on_group_done is not None:
                        on_group_done(folder, gid)
                    if stop.requested():  # the signal came between two groups: nothing to save, stop here
                        raise TrainingInterrupted(step=0, steps=0, signum=stop.signum)
            except TrainingInterrupted as interrupted:
                interrupted.signum = stop.signum
                raise
            finally:
                bar.close()


# ---- SLURM ------------------------------------------------------------------------------------------------------
# Task states (first word of sacct's State, or squeue's %T) that mean the task will not run again by itself.
# COMPLETED counts here too: a task that completed without its group's DONE did not finish the group.
ENDED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED", "REVOKED", "SPECIAL_EXIT"}
UNKNOWN_GRACE_S = 120.0  # a task that neither squeue nor sacct knows for this long is reported as lost


def slurm_dir(folder: Path) -> Path:
    return Path(folder) / "slurm"


def task_log(folder: Path, task_id: str) -> Path:
    """The log of an array task (submitit's ``<jobid>_<index>_<rank>_log.out``, stderr included)."""
    return slurm_dir(folder) / f"{task_id}_0_log.out"


def read_jobs(folder: Path) -> dict[str, Any]:
    """``<folder>/slurm/jobs.json``: {"submissions": [{"job_id", "submitted", "tasks": {gid: task_id}}, ...]}."""
    path = slurm_dir(folder) / "jobs.json"
    if not path.exists():
        return {"submissions": []}
    jobs = store.read_json(path)
    if not isinstance(jobs, dict) or not isinstance(jobs.get("submissions"), list):
        raise store.ResultsError(f"{path}: not a toymodels jobs file (no 'submissions' list)")
    return jobs


def latest_tasks(folder: Path) -> dict[str, str]:
    """gid -> the SLURM task id of the latest submission that ran that group."""
    tasks: dict[str, str] = {}
    for sub in read_jobs(folder)["submissions"]:
        tasks.update(sub.get("tasks", {}))
    return tasks


def _output(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _expand_ids(field: str) -> list[str]:
    """sacct/squeue job ids: "12", "12_3", or a pending array range "12_[0-2,5%2]" -> ["12_0", "12_1", ...]."""
    m = re.fullmatch(r"(\d+)_\[([^\]]*)\]", field)
    if not m:
        return [field]
    ids = []
    for part in m.group(2).split("%")[0].split(","):
        a, _, b = part.partition("-")
        if a.isdigit() and (not b or b.isdigit()):
            ids.extend(f"{m.group(1)}_{i}" for i in range(int(a), int(b or a) + 1))
    return ids


def task_states(task_ids: list[str]) -> dict[str, str]:
    """task id -> SLURM state (RUNNING, PENDING, COMPLETED, CANCELLED, FAILED, ...; UNKNOWN if neither squeue nor
    sacct knows it). squeue (live) wins over sacct (accounting, also for finished tasks; later records win)."""
    if not task_ids:
        return {}
    jobs = ",".join(sorted({t.split("_")[0] for t in task_ids}))
    states: dict[str, str] = {}
    for cmd in (["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", jobs],
                ["squeue", "-h", "-r", "-o", "%i|%T", "-j", jobs]):
        for line in (_output(cmd) or "").splitlines():
            jid, _, state = line.strip().partition("|")
            if not state:
                continue
            for t in _expand_ids(jid.strip()):
                states[t] = state.split()[0].upper()
    return {t: states.get(t, "UNKNOWN") for t in task_ids}


def slurm_missing() -> str | None:
    """Why ``--backend slurm`` cannot work here, or None."""
    if shutil.which("sbatch") is None:
        return (f"{spelled('backend', 'slurm')}: no 'sbatch' on PATH (SLURM is not installed on this machine, or not "
                "on PATH)")
    try:
        import submitit  # noqa: F401  (an optional extra: only --backend slurm needs it)
    except ImportError:
        return f"{spelled('backend', 'slurm')} needs submitit: pip install 'toymodels[slurm]'"
    return None


class SlurmLauncher:
    """Submits each unfinished group as one task of a SLURM job array (submitit) and waits for them.

    Options: ``partition``, ``gpus_per_task``, ``cpus_per_task``, ``max_parallel`` (array tasks running at once),
    ``timeout_min`` (per task; a task near its limit requeues itself and continues from its state file),
    ``mem_gb``, ``detach`` (return right after submission), ``poll_s`` (seconds between state queries; default 5
    or env TOYMODELS_SLURM_POLL_S).
    """

    def __init__(self, partition: str | None = None, gpus_per_task: int | None = None,
                 cpus_per_task: int | None = None, max_parallel: int | None = None, timeout_min: int = 24 * 60,
                 mem_gb: float | None = None, detach: bool = False, poll_s: float | None = None) -> None:
        why = slurm_missing()
        if why:
            raise ConfigError(why)
        for option, value in (("gpus_per_task", gpus_per_task), ("cpus_per_task", cpus_per_task),
                              ("max_parallel", max_parallel), ("timeout_min", timeout_min), ("mem_gb", mem_gb)):
            if value is not None and value <= 0:
                raise ConfigError(f"{spelled(option)} must be positive (got {value})")
        self.partition, self.gpus_per_task, self.cpus_per_task = partition, gpus_per_task, cpus_per_task
        self.max_parallel, self.timeout_min, self.mem_gb, self.detach = max_parallel, timeout_min, mem_gb, detach
        self.poll_s = poll_s if poll_s is not None else float(os.environ.get("TOYMODELS_SLURM_POLL_S", 5))

    def check_devices(self, devices: set[str]) -> None:
        """Nothing to check here: the tasks run on the cluster's nodes, which may have GPUs this machine lacks."""

    # -- submission
    def _executor(self, folder: Path, name: str, n_tasks: int):
        import submitit  # the optional slurm extra, checked by slurm_missing() first

        ex = submitit.SlurmExecutor(folder=slurm_dir(folder), max_num_timeout=10)
        params: dict[str, Any] = dict(job_name=f"toymodels-{name}", time=int(self.timeout_min),
                                      stderr_to_stdout=True, array_parallelism=self.max_parallel or n_tasks)
        if self.partition:
            params["partition"] = self.partition
        if self.gpus_per_task:
            params["gpus_per_task"] = self.gpus_per_task
        if self.cpus_per_task:
            params["cpus_per_task"] = self.cpus_per_task
        if self.mem_gb:
            params["mem"] = f"{int(self.mem_gb * 1024)}MB"
        ex.update_parameters(**params)
        return ex

    def submit(self, folder: Path, gids: list[str], state_every_s: float | None, name: str) -> dict[str, str]:
        """Submit one array task per group; record and return {gid: task id}."""
        ex = self._executor(folder, name, len(gids))
        try:
            jobs = ex.map_array(GroupTask(state_every_s), [str(folder)] * len(gids), gids)
        except Exception as err:  # submitit's FailedJobError carries sbatch's own message
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            why = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else type(err).__name__)
            raise LaunchError(f"sbatch did not accept the job array: {why}") from None
        tasks = {gid: job.job_id for gid, job in zip(gids, jobs)}
        record = read_jobs(folder)
        record["submissions"].append({
            "job_id": tasks[gids[0]].split("_")[0],
            "submitted": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tasks": tasks,
        })
        store.write_json(slurm_dir(folder) / "jobs.json", record)
        return tasks

    # -- the whole run
    def run(self, folder: Path, todo: dict, progress: bool = True, state_every_s: float | None = None,
            name: str = "sweep", on_group_done: Callable[[Path, str], None] | None = None) -> None:
        folder = Path(folder).resolve()  # the tasks may start in another directory
        if not todo:
            return
        devices = {insts[0].cfg.run.device for insts in todo.values()}
        if any(d.startswith("cuda") for d in devices) and not self.gpus_per_task:
            print(f"warning: the sweep runs on cuda but no {spelled('gpus_per_task')} was given", file=sys.stderr)
        # groups whose task from an earlier submission is still queued or running are waited for, not re-submitted
        earlier = {gid: t for gid, t in latest_tasks(folder).items() if gid in todo}
        states = task_states(list(earlier.values()))
        adopted = {gid: t for gid, t in earlier.items() if states[t] not in ENDED_STATES | {"UNKNOWN"}}
        fresh = [gid for gid in todo if gid not in adopted]
        tasks = dict(adopted)
        if fresh:
            tasks.update(self.submit(folder, fresh, state_every_s, name))
        job_ids = sorted({t.split("_")[0] for t in tasks.values()}, key=int)
        msg = (f"{name}: {len(fresh)} group(s) submitted to SLURM as job {', '.join(job_ids)}"
               + (f", {len(adopted)} still queued/running from before" if adopted else "")
               + f"; logs in {slurm_dir(folder)}")
        print(msg, file=sys.stderr)
        if self.detach:
            return
        self.wait(folder, {gid: tasks[gid] for gid in todo}, progress=progress, name=name,
                  on_group_done=on_group_done)

    def wait(self, folder: Path, tasks: dict[str, str], progress: bool = True, name: str = "sweep",
             on_group_done: Callable[[Path, str], None] | None = None) -> None:
        """Wait until every group is DONE or its task ended without finishing it; merge as groups finish.

        Raises LaunchError naming each unfinished group's task, SLURM state and log.
        """
        bar = tqdm(total=len(tasks), unit="task", disable=not progress, dynamic_ncols=True, desc=name)
        unknown_since: dict[str, float] = {}
        merged: set[str] = set()
        reported: set[str] = set()
        try:
            while True:
                done = {gid for gid in tasks if store.group_done(folder, gid)}
                if done - merged:
                    store.merge_tables(folder)
                    if on_group_done is not None:
                        for gid in sorted(done - merged):
                            on_group_done(folder, gid)
                    merged = set(done)
                left = {gid: t for gid, t in tasks.items() if gid not in done}
                states = task_states(list(left.values()))
                now = time.monotonic()
                ended = {}
                for gid, t in left.items():
                    st = states[t]
                    if st == "UNKNOWN":
                        if now - unknown_since.setdefault(t, now) > UNKNOWN_GRACE_S:
                            ended[gid] = st
                    else:
                        unknown_since.pop(t, None)
                        if st in ENDED_STATES:
                            ended[gid] = st
                # a task may have completed (and written DONE) since the check above
                ended = {gid: st for gid, st in ended.items() if not store.group_done(folder, gid)}
                for gid in sorted(set(ended) - reported):  # say it now; the summary comes when all have ended
                    bar.write(f"{gid}: task {tasks[gid]} ended {ended[gid]} without finishing the group; "
                              f"log: {task_log(folder, tasks[gid])}", file=sys.stderr)
                reported |= set(ended)
                bar.n = len(done)
                counts: dict[str, int] = {}
                for gid in left:
                    counts[states[left[gid]]] = counts.get(states[left[gid]], 0) + 1
                bar.set_postfix_str(" ".join(f"{k.lower()}={v}" for k, v in sorted(counts.items())), refresh=False)
                bar.refresh()
                if len(ended) == len(left):
                    break
                time.sleep(self.poll_s)
        except KeyboardInterrupt:
            bar.close()
            print(f"\nstopped waiting; the SLURM tasks keep running: `toymodels status {folder}` follows them, "
                  f"{continue_hint(folder)} waits again", file=sys.stderr)
            raise
        bar.close()
        if ended:
            raise LaunchError(failure_message(folder, {gid: (tasks[gid], ended[gid]) for gid in sorted(ended)},
                                              total=len(tasks)))


def failure_message(folder: Path, failed: dict[str, tuple[str, str]], total: int) -> str:
    lines = [f"{len(failed)} of {total} SLURM task(s) ended without finishing their group:"]
    for gid, (task, state) in failed.items():
        what = "completed without writing DONE" if state == "COMPLETED" else state
        lines.append(f"  {gid}  task {task}  {what}  log: {task_log(folder, task)}")
    lines.append(f"the finished groups are merged; {continue_hint(folder)} re-submits the others "
                 "(each continues from its latest mid-run state, if it has one)")
    return "\n".join(lines)


LAUNCHERS = {"local": LocalLauncher, "slurm": SlurmLauncher}


def get_launcher(backend: str, **options):
    """The launcher for ``--backend``; raises ConfigError for an unknown or unavailable one, or an option that the
    backend does not take. Called before any work or folder creation."""
    if backend not in LAUNCHERS:
        raise ConfigError(f"field 'backend': must be one of {', '.join(LAUNCHERS)} (got {backend!r})")
    cls = LAUNCHERS[backend]
    accepted = inspect.signature(cls.__init__).parameters
    wrong = [k for k in options if k not in accepted]
    if wrong:
        flags = ", ".join(spelled(k) for k in wrong)
        raise ConfigError(f"{flags}: only with {spelled('backend', 'slurm')}" if backend == "local"
                          else f"{spelled('backend', backend)} does not take {flags}")
    return cls(**options)
