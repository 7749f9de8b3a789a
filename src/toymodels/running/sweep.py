"""Run a whole sweep into a results folder: check the folder, plan the groups, hand the unfinished ones to a
launcher, merge the tables. ``plan.py`` groups the instances, ``runner.py`` runs one group, ``launch.py`` decides
where groups run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from toymodels.results import store
from toymodels.results.files import refuse_links
from toymodels.config import ConfigError, SweepConfig
from toymodels.running.launch import get_launcher
from toymodels.running.lock import LOCK_NAME, FolderBusyError, FolderLock
from toymodels.running.plan import check_memory, plan

def check_folder(sweep: SweepConfig, out: Path, resume: bool) -> bool:
    """Check ``out`` without touching it: may this sweep be written (or resumed) there? True when resuming.

    An existing results folder is never overwritten; a file, a path under a file or an unwritable place is refused.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file, not a folder; choose another --out")
    ancestor = next((p for p in out.parents if p.exists()), Path("."))
    if not ancestor.is_dir():
        raise ConfigError(f"--out '{out}': '{ancestor}' is a file, so no folder can be made under it")
    existing = out / "sweep.json"
    if existing.exists():
        if not resume:
            raise ConfigError(f"results folder '{out}' already holds a sweep; pass --resume to continue it "
                              "or choose another --out")
        old, _ = store.read_sweep(out)
        if old != sweep:
            raise ConfigError(f"results folder '{out}' holds a different sweep ('{old.name}'); "
                              "--resume needs the same config, or choose another --out")
        return True
    if out.exists() and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise ConfigError(f"'{out}' exists and is not a toymodels results folder; choose another --out")
    if not os.access(out if out.exists() else ancestor, os.W_OK):
        raise ConfigError(f"--out '{out}': no permission to write in '{out if out.exists() else ancestor}'")
    return False


def open_folder(sweep: SweepConfig, out: Path, resume: bool, say: Callable[[str], None]) -> FolderLock:
    """Create (or reopen) the results folder and take its lock; on a resume, drop temp files left by a killed
    writer and mark damaged finished groups for retraining. The caller releases the lock."""
    resuming = check_folder(sweep, out, resume)
    if out.is_dir():
        refuse_links(out)  # a link inside the folder would carry a write outside it
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(out).acquire()
    except FolderBusyError as err:
        raise ConfigError(str(err)) from None
    except OSError as err:
        raise ConfigError(f"--out '{out}': cannot create the results folder ({err.strerror})") from None
    try:
        if check_folder(sweep, out, resume) != resuming:  # another run wrote sweep.json before we held the lock
            raise ConfigError(f"results folder '{out}' was started by another run just now; choose another --out")
        if not resuming:
            store.write_json(out / "sweep.json", store.sweep_meta(sweep))
            return lock
        for path in store.remove_temp_files(out):
            say(f"removed {path.relative_to(out)} (a temporary file left by an interrupted write)")
        for gid in store.done_groups(out):
            why = store.group_damage(out, gid)
            if why:
                (store.group_dir(out, gid) / "DONE").unlink()
                say(f"{gid}: {why}; training it again")
    except BaseException:
        lock.release()
        raise
    return lock


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_sweep(
    sweep: SweepConfig, out: str | Path, resume: bool = False, progress: bool = True,
    state_every_s: float | None = None, backend: str = "local", say: Callable[[str], None] = _stderr,
    on_group_done: Callable[[Path, str], None] | None = None, **backend_options,
) -> store.Results | None:
    """Train every unfinished group of ``sweep`` into ``out`` and return the loaded results.

    Everything is checked before anything is written: the launcher, the devices, the memory the largest group needs
    (see :func:`toymodels.running.plan.check_memory`) and the folder. One process writes a folder at a time (a lock).
    ``backend`` chooses where groups run (see ``toymodels.running.launch``): "local" trains them here, one after another;
    Ctrl-C or SIGTERM saves the running group's state and raises ``TrainingInterrupted``. "slurm" submits them as
    a SLURM job array (``backend_options``: partition, gpus_per_task, cpus_per_task, max_parallel, timeout_min,
    detach); with ``detach=True`` it returns None right after submission. Drawing the figures and the report is
    the caller's choice (``toymodels.report.html.write_report``; the CLI and ``tm.run`` do). ``say`` receives one-line
    notes (e.g. which damaged groups a resume retrains). ``on_group_done(out, gid)`` is called in this process as
    each group finishes (``toymodels.running.tracking`` mirrors it to wandb).
    """
    out = Path(out)
    launcher = get_launcher(backend, **backend_options)  # fails fast, before any work, if unavailable
    groups = plan(sweep)
    launcher.check_devices({insts[0].cfg.run.device for insts in groups.values()})
    if backend == "local":  # on a cluster the nodes' memory is not this machine's
        check_memory(groups)
    lock = open_folder(sweep, out, resume, say)
    try:
        todo = {gid: insts for gid, insts in groups.items() if not store.group_done(out, gid)}
        try:
            launcher.run(out, todo, progress=progress, state_every_s=state_every_s, name=sweep.name,
                         on_group_done=on_group_done)
        finally:  # what finished is merged even when a group or a SLURM task failed
            store.merge_tables(out)
    finally:
        lock.release()
    if getattr(launcher, "detach", False):
        return None  # submitted only: `toymodels status` / `--resume` pick it up
    return store.load(out)
