"""The Python API: ``preset``, ``presets``, ``run``, ``load`` and ``load_parts``.

Bad input raises ``ConfigError`` (a config, an argument) or ``ResultsError`` (a results folder), each with a
one-line message naming what was given; the environment (a full disk, no permission) raises ``OSError``.

Example:
    >>> import toymodels as tm
    >>> cfg = tm.preset("LR1", scale="quick")                  # a SweepConfig
    >>> res = tm.run(cfg, out="runs/LR1-quick")                # doctest: +SKIP
    >>> res.instances[["lr", "final_loss", "mono_per_feature"]]  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from toymodels.config import ConfigError, ExperimentConfig, SweepConfig
from toymodels.config.presets import PRESETS, SCALES, Preset
from toymodels.config.registry import get_family
from toymodels.config.presets import preset as preset
from toymodels.report.parts import find_study
from toymodels.results import store
from toymodels.results.store import Results, ResultsError
from toymodels.running.exits import check_path
from toymodels.running.plan import estimate_seconds, instance_steps
from toymodels.running.sweep import run_sweep
from toymodels.running.tracking import mirror_for


def load(folder: str | Path) -> Results:
    """Read a results folder (JSON, Parquet, safetensors only; nothing is unpickled); ResultsError if it cannot be.
    The folder of a multi-part preset's parts (``toymodels run OPT1 --out DIR``) is refused in one line naming its
    parts: :func:`load_parts` reads them all."""
    if not isinstance(folder, (str, Path)):
        raise ResultsError(f"tm.load needs the path of a results folder (got {type(folder).__name__})")
    study = find_study(folder)
    if study is not None:
        raise ResultsError(f"{folder}: the folder of {study.preset}'s parts ({', '.join(p.name for p in study.parts)}),"
                           f" not one results folder; tm.load('{study.parts[0]}') reads one part, "
                           f"tm.load_parts('{folder}') all of them")
    return store.load(folder)


def load_parts(folder: str | Path) -> dict[str, Results]:
    """Every part of a multi-part preset's folder, by part name, in the preset's order (parts not started are left
    out); ResultsError when ``folder`` is not such a folder.

    Example:
        >>> parts = tm.load_parts("runs/OPT1-quick")          # doctest: +SKIP
        >>> list(parts)[:2]                                     # doctest: +SKIP
        ['OPT1-LR1-lamb', 'OPT1-LR1-adam']
    """
    study = find_study(folder) if isinstance(folder, (str, Path)) else None
    if study is None:
        raise ResultsError(f"{folder}: not the folder of a multi-part preset's parts (tm.load reads one results "
                           "folder)")
    return {part.name: store.load(part) for part in study.parts}


def presets() -> list[Preset]:
    """Every named experiment (Table 1 batches and more)."""
    return list(PRESETS.values())


def _human(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 90 else f"{seconds / 60:.0f}min" if seconds < 5400 else \
        f"{seconds / 3600:.0f}h"


def preset_lines() -> list[str]:
    """What ``toymodels presets`` prints: per preset its name, family and the family's own fields it sets (not
    another family's), its summary and paper figure; then what it sweeps (each part's grid for a multi-part
    preset); then its cost per scale."""
    lines = []
    for p in PRESETS.values():
        grid = "; ".join(f"{k} in {v}" for k, v in p.grid.items())
        if p.parts:  # multi-part preset (OPT1, SAE-*): its parts' grids (quick scale's when the scale sets them)
            grid = " | ".join(f"{n}: " + "; ".join(f"{k} in {v}" for k, v in (g or sweep.grid).items())
                              for n, (_, _, g), sweep in zip(p.part_names(), p.parts, p.sweeps("quick")))
        own = [f"{k}={p.base[k]}" for k in get_family(p.family).fields if k in p.base and k not in p.grid][:4]
        lines.append(f"{p.name:5s} [{p.family}] {p.summary}" + (f"  [{p.figure}]" if p.figure else ""))
        lines.append("      " + (f"{', '.join(own)}; " if own else "") + f"sweeps {grid}")
        costs = []
        for scale in SCALES:
            parts = p.sweeps(scale)
            steps, secs = sum(instance_steps(s) for s in parts), sum(estimate_seconds(s) for s in parts)
            costs.append(f"{scale}: {steps:.2g} inst-steps ~{_human(secs)}")
        lines.append("      " + " | ".join(costs))
    return lines


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
    if out is not None and not isinstance(out, (str, Path)):
        raise ConfigError(f"tm.run's out must be a path (got {type(out).__name__})")
    out = check_path(out if out is not None else Path("runs") / cfg.name, "out")
    mirror = mirror_for(wandb)  # before any training: without the wandb extra this fails in one line
    results = run_sweep(cfg, out, resume=resume, progress=progress,
                        on_group_done=mirror.group_done if mirror else None)
    if report:
        from toymodels.report.html import write_report  # matplotlib: loaded only when a report is written

        write_report(results)
    if mirror is not None:  # after the report: its figures go along
        mirror.finish(results.folder)
    return results
