"""Run a whole sweep into a results folder: check the folder, plan the groups, hand the unfinished ones to a
launcher, merge the tables. ``plan.py`` groups the instances, ``runner.py`` runs one group, ``launch.py`` decides
where groups run.
"""

from __future__ import annotations

from pathlib import Path

from . import store
from .config import ConfigError, SweepConfig
from .launch import get_launcher
from .plan import plan

def prepare_folder(sweep: SweepConfig, out: Path, resume: bool) -> None:
    """Check the folder before any work (an existing folder is never overwritten), then write sweep.json."""
    out = Path(out)
    existing = out / "sweep.json"
    if existing.exists():
        if not resume:
            raise ConfigError(f"results folder '{out}' already holds a sweep; pass --resume to continue it "
                              "or choose another --out")
        old, _ = store.read_sweep(out)
        if old != sweep:
            raise ConfigError(f"results folder '{out}' holds a different sweep ('{old.name}'); "
                              "--resume needs the same config, or choose another --out")
        return
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"'{out}' exists and is not a toymodels results folder; choose another --out")
    store.write_json(out / "sweep.json", store.sweep_meta(sweep))


def run_sweep(
    sweep: SweepConfig, out: str | Path, resume: bool = False, progress: bool = True,
    state_every_s: float | None = None, backend: str = "local", **backend_options,
) -> store.Results | None:
    """Train every unfinished group of ``sweep`` into ``out`` and return the loaded results.

    ``backend`` chooses where groups run (see ``toymodels.launch``): "local" trains them here, one after another.
    "slurm" submits them as a SLURM job array (``backend_options``: partition, gpus_per_task, cpus_per_task,
    max_parallel, timeout_min, detach); with ``detach=True`` it returns None right after submission. Drawing the
    figures and the report is the caller's choice (``toymodels.report.write_report``; the CLI and ``tm.run`` do).
    """
    out = Path(out)
    launcher = get_launcher(backend, **backend_options)  # fails fast, before any work, if unavailable
    groups = plan(sweep)
    launcher.check_devices({insts[0].cfg.run.device for insts in groups.values()})
    prepare_folder(sweep, out, resume)
    todo = {gid: insts for gid, insts in groups.items() if not store.group_done(out, gid)}
    try:
        launcher.run(out, todo, progress=progress, state_every_s=state_every_s, name=sweep.name)
    finally:  # what finished is merged even when a group or a SLURM task failed
        store.merge_tables(out)
    if getattr(launcher, "detach", False):
        return None  # submitted only: `toymodels status` / `--resume` pick it up
    return store.load(out)
