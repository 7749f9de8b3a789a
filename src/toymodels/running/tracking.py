"""Optional Weights & Biases tracking: mirror a results folder to wandb.

Asked for with ``toymodels run ... --wandb PROJECT``, ``tm.run(..., wandb=PROJECT)`` or the environment variable
``TOYMODELS_WANDB_PROJECT``; needs the optional extra (``pip install 'toymodels[wandb]'``). Without it nothing here
imports wandb, and asking for it fails in one line before any training.

What goes where: one wandb run per instance (``job_type="instance"``), all runs of a results folder in one wandb
``group`` named after the folder (``runs/LR1-quick`` -> ``LR1-quick``):

* config: the instance's flat config fields (instances.parquet), plus its ``run_id`` and the sweep's name;
* history: metrics.parquet, every logged loss and checkpoint metric at its training step (wandb's ``step``);
* summary: the instance's outcome in instances.parquet (status, diverged_at, final_loss, train_seconds and the final
  metrics), which wins over the last history value of the same name.

One more run per sweep (``job_type="report"``) carries the results folder's ``figures/**/*.png`` as images and
instances.parquet as a table. The mirror reads back the files each group wrote, never the training process's
memory, so wandb shows exactly what the results folder holds, whichever launcher ran the group. A group is
mirrored as soon as it is DONE; ``finish`` (after the report) mirrors any group not mirrored yet, e.g. one finished
by an earlier ``--detach`` run, then the figures. What was mirrored is recorded per project in
``<folder>/wandb.json``, so ``--resume`` never logs an instance twice.

Clusters without network: set ``WANDB_MODE=offline`` on the compute nodes; the runs are written under ``./wandb``
(or ``$WANDB_DIR/wandb``) and ``wandb sync DIR/offline-run-*`` uploads them later
from a machine with network.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from toymodels.results import store
from toymodels.config import FIELDS, ConfigError
from toymodels.config.wording import continue_hint, spelled
from toymodels.results.tables import py_value

ENV_PROJECT = "TOYMODELS_WANDB_PROJECT"
RECORD_FILE = "wandb.json"
# instances.parquet columns that say where a row lives, not what the instance is or did
LOCATION_COLUMNS = ("run_id", "group", "index_in_group")


def missing() -> str:
    """The one line that says the wandb extra is missing, naming the argument or flag that asked for it."""
    return f"{spelled('wandb', 'PROJECT')} needs the optional wandb package: pip install 'toymodels[wandb]'"


def project_name(project: str | None = None) -> str | None:
    """The wandb project asked for: ``project``, else ``$TOYMODELS_WANDB_PROJECT``, else None (no tracking)."""
    return project or os.environ.get(ENV_PROJECT) or None


def mirror_for(project: str | None = None) -> WandbMirror | None:
    """A mirror to ``project_name(project)``, or None when no project is asked for.

    Raises ConfigError (one line) when a project is asked for but wandb is not installed: call it before training.
    """
    name = project_name(project)
    return WandbMirror(name) if name else None


def instance_config(row: dict[str, Any], sweep_name: str) -> dict[str, Any]:
    """The wandb config of one instances.parquet row: its flat config fields, run_id and sweep name."""
    config = {k: py_value(row[k]) for k in FIELDS if k in row}
    return {**config, "run_id": row["run_id"], "sweep": sweep_name}


def instance_summary(row: dict[str, Any]) -> dict[str, Any]:
    """The wandb summary of one instances.parquet row: every column that is neither config nor location."""
    return {k: py_value(v) for k, v in row.items() if k not in FIELDS and k not in LOCATION_COLUMNS}


def history_rows(metrics: pd.DataFrame) -> list[tuple[int, dict[str, float]]]:
    """One instance's long metrics table as (step, {name: value}) in increasing step order (wandb needs that)."""
    return [(int(step), dict(zip(part["name"], part["value"].astype(float))))
            for step, part in metrics.groupby("step", sort=True)]


class WandbMirror:
    """Mirrors the finished groups of results folders to one wandb project (see the module docstring)."""

    def __init__(self, project: str) -> None:
        if importlib.util.find_spec("wandb") is None:
            raise ConfigError(missing())
        self.project = project
        self.mirrored = 0  # instances mirrored by this object (the closing message counts them)
        self.where: str | None = None  # the offline runs' folder, for the `wandb sync` hint
        # the first failure stops the mirroring for this process: without network (or login) every wandb.init
        # would fail again, some only after wandb's time-out, and the sweep must not wait on that per instance
        self.failed = False

    # -- the hooks: run_sweep's on_group_done, and the caller after the report
    def group_done(self, folder: Path, gid: str) -> None:
        """Mirror a group that just finished; a wandb failure is reported, never allowed to stop the sweep."""
        if self.failed:
            return
        try:
            self.mirror_group(folder, gid)
        except Exception as err:  # the results are safe on disk; `--resume --wandb` mirrors what is missing
            self._warn(folder, f"{gid} not mirrored ({type(err).__name__}: {err})")

    def finish(self, folder: Path) -> None:
        """Mirror every finished group not mirrored yet, then the figures (once per new instances); say where."""
        folder = Path(folder)
        if self.failed:
            return  # said when it failed
        try:
            for gid in store.trusted_groups(folder, store.read_sweep(folder)[0])[0]:  # never a damaged or foreign one
                self.mirror_group(folder, gid)
            if self.mirrored or not self._record(folder).get("report"):
                self.mirror_report(folder)
        except Exception as err:  # as in group_done: never lose the finished sweep to a tracking failure
            self._warn(folder, f"not mirrored completely ({type(err).__name__}: {err})")
            return
        hint = f"; offline: `wandb sync {self.where}/offline-run-*` uploads them" if self.where else ""
        print(f"wandb: {self.mirrored} instance(s) of {folder} mirrored to project '{self.project}' "
              f"(group '{group_name(folder)}'){hint}", file=sys.stderr)

    # -- the work
    def mirror_group(self, folder: Path, gid: str) -> None:
        """Log one finished group's instances (read back from its own parquet files) that are not logged yet."""
        folder = Path(folder)
        record = self._record(folder)
        sent = record["groups"].setdefault(gid, {})
        gdir = store.group_dir(folder, gid)
        instances = store.read_parquet(gdir / "instances.parquet")
        rows = [row for row in instances.to_dict("records") if row["run_id"] not in sent]
        if not rows:
            return
        sweep, _ = store.read_sweep(folder)
        metrics = store.read_parquet(gdir / "metrics.parquet")
        by_run = dict(iter(metrics.groupby("run_id", sort=False)))
        for row in rows:
            history = history_rows(by_run.get(row["run_id"], metrics.iloc[:0]))
            sent[row["run_id"]] = self._log_run(
                folder, job_type="instance", name=f"{group_name(folder)}/{row['run_id']}",
                config=instance_config(row, sweep.name), history=history, summary=instance_summary(row))
            self._save(folder, record)  # after each run: a failure later in the group never sends this one twice
            self.mirrored += 1

    def mirror_report(self, folder: Path) -> None:
        """Log the sweep's figures as images and instances.parquet as a table, in one run of job_type "report"."""
        import wandb  # the optional extra: deferred so that toymodels never imports it unless --wandb is asked

        folder = Path(folder)
        results = store.load(folder)
        media: dict[str, Any] = {
            f"figures/{p.relative_to(folder / 'figures').with_suffix('').as_posix()}": wandb.Image(str(p))
            for p in sorted((folder / "figures").rglob("*.png"))}
        media["instances"] = wandb.Table(dataframe=results.instances)
        summary = {"instances": len(results.instances), "diverged": int((results.instances["status"] != "ok").sum())}
        record = self._record(folder)
        record["report"] = self._log_run(
            folder, job_type="report", name=f"{group_name(folder)}/report",
            config={"sweep": results.meta["sweep"], "toymodels_version": results.meta.get("toymodels_version")},
            history=[(0, media)], summary=summary)
        self._save(folder, record)

    def _log_run(self, folder: Path, job_type: str, name: str, config: dict[str, Any],
                 history: list[tuple[int, dict[str, Any]]], summary: dict[str, Any]) -> str:
        """One finished wandb run; returns its id."""
        import wandb  # the optional extra: deferred so that toymodels never imports it unless --wandb is asked

        run = wandb.init(
            project=self.project, group=group_name(folder), job_type=job_type, name=name, config=config,
            reinit="create_new",  # several runs from one process, none of them wandb's global run
            # the runs replay files after the fact: the process's console and system metrics say nothing about them
            settings=wandb.Settings(console="off", x_disable_stats=True, silent=True),
        )
        try:
            for step, values in history:
                run.log(values, step=step, commit=True)  # committed now, so the summary below is written last
            run.summary.update(summary)
        finally:
            run.finish()
        if run.offline:
            self.where = str(Path(run.dir).parents[1])
        return run.id

    def _record(self, folder: Path) -> dict[str, Any]:
        """This project's entry of ``<folder>/wandb.json``: {"groups": {gid: {run_id: wandb id}}, "report": id}."""
        path = Path(folder) / RECORD_FILE
        everything = store.read_json(path) if path.exists() else {}
        return everything.get(self.project, {"groups": {}})

    def _save(self, folder: Path, record: dict[str, Any]) -> None:
        path = Path(folder) / RECORD_FILE
        everything = store.read_json(path) if path.exists() else {}
        store.write_json(path, {**everything, self.project: record})

    def _warn(self, folder: Path, what: str) -> None:
        self.failed = True
        print(f"wandb: {folder}: {what}; mirroring stopped, the results folder is complete: "
              f"{continue_hint(folder, wandb=self.project)} mirrors what is missing",
              file=sys.stderr)


def group_name(folder: Path) -> str:
    """The wandb group of a results folder: the folder's name (a sweep's runs share it)."""
    return Path(folder).resolve().name
