"""The Python API: ``preset``, ``presets``, ``run`` and ``load``.

Example:
    >>> import toymodels as tm
    >>> cfg = tm.preset("LR1", scale="quick")                  # a SweepConfig
    >>> res = tm.run(cfg, out="runs/LR1-quick")                # doctest: +SKIP
    >>> res.instances[["lr", "final_loss", "mono_per_feature"]]  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from toymodels.config import ConfigError, ExperimentConfig, SweepConfig
from toymodels.config.presets import PRESETS, Preset
from toymodels.config.presets import preset as preset
from toymodels.results.store import Results
from toymodels.results.store import load as load
from toymodels.running.sweep import run_sweep
from toymodels.running.tracking import mirror_for


def presets() -> list[Preset]:
    """Every named experiment (Table 1 batches and more)."""
    return list(PRESETS.values())


def run(
    cfg: SweepConfig | ExperimentConfig | str | dict, out: str | Path | None = None, resume: bool = False,
    progress: bool = True, report: bool = True, wandb: str | None = None,
) -> Results:
    """Train a sweep (or a single config, or a preset name at quick scale), save it and return the results.

    ``report=True`` also draws the figures and ``report.html`` into the results folder. ``wandb=PROJECT`` (or the
    environment variable TOYMODELS_WANDB_PROJECT) mirrors each instance, and then the figures, to that Weights &
    Biases project (needs ``pip install 'toymodels[wandb]'``; see ``toymodels.running.tracking``).
    """
    if isinstance(cfg, str):
        cfg = preset(cfg)
    elif isinstance(cfg, dict):  # the fields of a sweep file: {"N": 32, "grid": {"lr": [...]}}
        cfg = SweepConfig.from_dict({"name": "run", **cfg})
    if isinstance(cfg, ExperimentConfig):
        cfg = SweepConfig(name="run", base=cfg)
    if not isinstance(cfg, SweepConfig):
        raise ConfigError(f"tm.run needs a SweepConfig, an ExperimentConfig, a preset name or a dict of fields "
                          f"(got {type(cfg).__name__})")
    out = Path(out) if out is not None else Path("runs") / cfg.name
    mirror = mirror_for(wandb)  # before any training: without the wandb extra this fails in one line
    results = run_sweep(cfg, out, resume=resume, progress=progress,
                        on_group_done=mirror.group_done if mirror else None)
    if report:
        from toymodels.report.html import write_report  # matplotlib: loaded only when a report is written

        write_report(results)
    if mirror is not None:  # after the report: its figures go along
        mirror.finish(results.folder)
    return results
