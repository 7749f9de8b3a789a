"""Run a whole sweep into a results folder: check the folder, plan the groups, hand the unfinished ones to a
launcher, merge the tables. ``plan.py`` groups the instances, ``runner.py`` runs one group, ``launch.py`` decides
where groups run.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Callable

from toymodels.results import store
from toymodels.results.files import refuse_links
from toymodels.config import ConfigError, SweepConfig
from toymodels.config.wording import spelled
from toymodels.running.launch import get_launcher
from toymodels.running.lock import LOCK_NAME, FolderBusyError, FolderLock
from toymodels.running.plan import Instance, check_memory, input_change, input_fingerprints, plan

def check_folder(sweep: SweepConfig, out: Path, resume: bool) -> bool:
    """Check ``out`` without touching it: may this sweep be written (or resumed) there? True when resuming.

    An existing results folder is never overwritten; a file, a path under a file or an unwritable place is refused.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{spelled('out')} '{out}' is a file, not a folder; choose another {spelled('out')}")
    ancestor = next((p for p in out.parents if p.exists()), Path("."))
    if not ancestor.is_dir():
        raise ConfigError(f"{spelled('out')} '{out}': '{ancestor}' is a file, so no folder can be made under it")
    existing = out / "sweep.json"
    if existing.exists():
        if not resume:
            raise ConfigError(f"results folder '{out}' already holds a sweep; pass {spelled('resume', True)} to "
                              f"continue it or choose another {spelled('out')}")
        old, _ = store.read_sweep(out)
        if old != sweep:
            raise ConfigError(f"results folder '{out}' holds a different sweep ('{old.name}'); "
                              f"{spelled('resume', True)} needs the same config, or choose another {spelled('out')}")
        if not os.access(out, os.W_OK):  # the environment's doing (exit 1), not the input's
            raise PermissionError(errno.EACCES, f"results folder '{out}' is read-only (no permission to write in it)")
        return True
    # a study's pre-registration record is written just before its folder's first training (reproduce/registration)
    if out.exists() and any(p.name not in (LOCK_NAME, store.PREREGISTRATION) for p in out.iterdir()):
        raise ConfigError(f"'{out}' exists and is not a toymodels results folder; choose another {spelled('out')}")
    if not os.access(out if out.exists() else ancestor, os.W_OK):
        raise PermissionError(errno.EACCES, f"{spelled('out')} '{out}': no permission to write in "
                              f"'{out if out.exists() else ancestor}'")
    return False


def check_groups(out: Path, sweep: SweepConfig, groups: dict[str, list[Instance]]) -> None:
    """Refuse, in one line, a resume onto finished groups that are not what the sweep plans for them: a group copied
    from another folder or under another name, one repeating another's instances, or one that an edited sweep.json
    no longer plans. Training would skip the instances it stands for, and no table may count it."""
    trusted, left_out = store.trusted_groups(out, sweep)
    for gid, rows in trusted.items():
        planned = [inst.run_id for inst in groups.get(gid, [])]
        if sorted(map(str, rows["run_id"])) != planned:
            left_out[gid] = (f"not what sweep.json plans: it holds {', '.join(sorted(map(str, rows['run_id']))[:4])}"
                             + (f", the sweep plans {', '.join(planned[:4])} for it" if planned else
                                f", and the sweep has no group {gid} (groups: {', '.join(groups)})"))
    if left_out:
        gid, why = next(iter(left_out.items()))
        raise ConfigError(f"results folder '{out}': group {gid} is {why}; move groups/{gid} out of the folder to "
                          f"resume, or choose another {spelled('out')}")


def open_folder(sweep: SweepConfig, out: Path, resume: bool, say: Callable[[str], None],
                groups: dict[str, list[Instance]] | None = None) -> FolderLock:
    """Create (or reopen) the results folder and take its lock; on a resume, drop temp files left by a killed
    writer, mark damaged finished groups for retraining, and refuse in one line when an input the sweep reads (an
    SAE's source) changed since it started or a finished group is not what the sweep plans. A new folder's
    ``sweep.json`` records the inputs' fingerprints. The caller releases the lock."""
    groups = plan(sweep) if groups is None else groups
    resuming = check_folder(sweep, out, resume)
    if out.is_dir():
        refuse_links(out)  # a link inside the folder would carry a write outside it
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(out).acquire()
    except FolderBusyError as err:
        raise ConfigError(str(err)) from None
    except OSError as err:  # the errno says whose problem it is (running/exits.py)
        what = "write in the results folder" if resuming else "create the results folder"
        where = f" '{err.filename}'" if err.filename else ""
        raise OSError(err.errno, f"{spelled('out')} '{out}': cannot {what} ({err.strerror}{where})") from None
    try:
        if check_folder(sweep, out, resume) != resuming:  # another run wrote sweep.json before we held the lock
            raise ConfigError(f"results folder '{out}' was started by another run just now; choose another "
                              f"{spelled('out')}")
        cfgs = [inst.cfg for insts in groups.values() for inst in insts]
        if not resuming:
            store.write_json(out / "sweep.json", {**store.sweep_meta(sweep), "inputs": input_fingerprints(cfgs)})
            return lock
        changed = input_change(store.read_sweep(out)[1].get("inputs"), cfgs)
        if changed:
            raise ConfigError(f"results folder '{out}': {changed}")
        for path in store.remove_temp_files(out):
            say(f"removed {path.relative_to(out)} (a temporary file left by an interrupted write)")
        for gid in store.done_groups(out):
            why = store.group_damage(out, gid)
            if why:
                (store.group_dir(out, gid) / "DONE").unlink()
                say(f"{gid}: {why}; training it again")
        check_groups(out, sweep, groups)
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
    lock = open_folder(sweep, out, resume, say, groups)
    try:
        todo = {gid: insts for gid, insts in groups.items() if not store.group_done(out, gid)}
        try:
            launcher.run(out, todo, progress=progress, state_every_s=state_every_s, name=sweep.name,
                         on_group_done=on_group_done)
        finally:  # what finished is merged even when a group or a SLURM task failed
            if out.is_dir():  # not when it was moved away mid-run: the merge would make a new folder in its place
                store.merge_tables(out, say=say)
    finally:
        lock.release()
    if getattr(launcher, "detach", False):
        return None  # submitted only: `toymodels status` / `--resume` pick it up
    return store.load(out)
