"""What one SLURM array task runs: one group of a sweep, found from nothing but (results folder, group id).

The task reads the sweep back from ``<folder>/sweep.json``, re-plans it (``sweep.plan`` is deterministic) and runs
``run_group`` for its group, which continues from ``groups/<gid>/state.safetensors`` if an earlier attempt left one.
``GroupTask`` is the callable that submitit pickles: it holds only the state interval, and its ``checkpoint`` method
(called by submitit on preemption or near the time limit) requeues the same (folder, gid).

Run by hand (e.g. to debug a failed task): ``python -m toymodels.running.worker RESULTS_DIR GID``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from toymodels.results import store
from toymodels.results.files import refuse_links
from toymodels.config import ConfigError
from toymodels.running.plan import plan
from toymodels.running.runner import device_missing, run_group, state_step
from toymodels.engine.process import allocator_tuning_allowed


def _say(msg: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[toymodels {stamp}] {msg}", flush=True)


def run_task(folder: str | Path, gid: str, state_every_s: float | None = None) -> str:
    """Train group ``gid`` of the sweep in ``folder`` (no-op if it is DONE); returns the gid."""
    with allocator_tuning_allowed():  # the SLURM task's process is ours (engine.process)
        return _run_task(Path(folder), gid, state_every_s)


def _run_task(folder: Path, gid: str, state_every_s: float | None) -> str:
    refuse_links(folder)  # planted since the sweep was submitted: a link would carry a write outside the folder
    sweep, _ = store.read_sweep(folder)
    groups = plan(sweep)
    if gid not in groups:
        raise store.ResultsError(f"{folder / 'sweep.json'}: the sweep has no group {gid!r} (groups: "
                                 f"{', '.join(groups)}); was it planned by another toymodels version?")
    if store.group_done(folder, gid):
        _say(f"{gid} is already DONE in {folder}; nothing to do")
        return gid
    insts = groups[gid]
    why = device_missing(insts[0].cfg.run.device)
    if why:  # e.g. a cuda sweep submitted without --slurm-gpus-per-task: say so in the task's log
        raise ConfigError(f"{gid}: {why}")
    steps = insts[0].cfg.optim.steps
    start = state_step(folder, gid)
    _say(f"{sweep.name} {gid}: {len(insts)} instances x {steps} steps on {insts[0].cfg.run.device}, "
         + (f"continuing from its mid-run state at step {start}" if start is not None else "from step 0"))
    last = [time.monotonic()]

    def on_progress(step: int, losses: torch.Tensor) -> None:
        if time.monotonic() - last[0] >= 30 or step == steps:
            finite = losses[torch.isfinite(losses)]
            _say(f"{gid}: step {step}/{steps}, mean loss {finite.mean():.4g}" if finite.numel()
                 else f"{gid}: step {step}/{steps}, every instance diverged")
            last[0] = time.monotonic()

    run_group(folder, gid, insts, on_progress=on_progress, state_every_s=state_every_s)
    _say(f"{gid}: DONE")
    return gid


class GroupTask:
    """The callable submitted for each array task: ``GroupTask(state_every_s)(folder, gid)``."""

    def __init__(self, state_every_s: float | None = None) -> None:
        self.state_every_s = state_every_s

    def __call__(self, folder: str, gid: str) -> str:
        return run_task(folder, gid, self.state_every_s)

    def checkpoint(self, folder: str, gid: str):
        """submitit calls this on preemption/time-out: requeue the same group, which continues from its state file
        (written every ``state_every_s`` seconds, so that much training at most is redone)."""
        from submitit.helpers import DelayedSubmission  # optional extra; only ever called inside a SLURM task

        step = state_step(Path(folder), gid)
        _say(f"{gid}: preempted or near its time limit; requeued, will continue from "
             + (f"step {step}" if step is not None else "step 0 (no state file yet)"))
        return DelayedSubmission(GroupTask(self.state_every_s), folder, gid)


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) != 3:
        sys.exit("usage: python -m toymodels.running.worker RESULTS_DIR GID")
    run_task(sys.argv[1], sys.argv[2])
