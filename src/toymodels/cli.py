"""The ``toymodels`` command line (typer).

    toymodels presets                       every named experiment
    toymodels run LR1 --scale quick         train a sweep, write results, figures and report
    toymodels run my.toml --sweep lr=0.001,0.01 --seeds 2 --dry-run
    toymodels report runs/LR1-quick         redraw figures and report.html
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from .config import ConfigError, SweepConfig, parse_assignment
from .store import ResultsError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Superposition and monosemanticity in toy models: sweeps, metrics, figures.")


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def resolve_sweep(target: str, scale: str, sets: list[str], sweeps: list[str], seeds: Optional[int],
                  device: Optional[str]) -> SweepConfig:
    """Preset name or config file, then --set (fixes a field, dropping it from the grid) and --sweep (grid)."""
    from .presets import preset

    path = Path(target)
    if path.suffix in (".toml", ".json") or path.exists():
        if not path.is_file():
            raise ConfigError(f"config file '{target}' not found")
        sweep = SweepConfig.from_file(path)
    else:
        sweep = preset(target, scale=scale)
    base_values, grid = {}, dict(sweep.grid)
    for item in sets:
        key, value = parse_assignment(item)
        base_values[key] = value
        grid.pop(key, None)
    if device is not None:
        base_values["device"] = device
        grid.pop("device", None)
    for item in sweeps:
        key, value = parse_assignment(item)
        grid[key] = [v.strip() for v in value.split(",") if v.strip()]
    base = sweep.base.replace(**base_values) if base_values else sweep.base
    try:
        return SweepConfig(name=sweep.name, base=base, grid=grid, seeds=seeds or sweep.seeds)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        from .config import _one_line

        raise ConfigError(_one_line(err) if hasattr(err, "errors") else str(err)) from None


@app.command()
def run(
    target: str = typer.Argument(..., help="preset name (see `toymodels presets`) or a .toml/.json sweep file"),
    scale: str = typer.Option("quick", help="smoke | quick | paper"),
    set_: list[str] = typer.Option([], "--set", help="field=value, fixes a field (repeatable)"),
    sweep_: list[str] = typer.Option([], "--sweep", help="field=v1,v2,... adds a grid axis (repeatable)"),
    seeds: Optional[int] = typer.Option(None, help="number of seeds per setting"),
    out: Optional[Path] = typer.Option(None, help="results folder (default runs/<name>)"),
    device: Optional[str] = typer.Option(None, help="cpu | cuda | cuda:N"),
    resume: bool = typer.Option(False, help="continue a sweep in --out, skipping finished groups"),
    dry_run: bool = typer.Option(False, help="print the resolved instances as JSON and the cost; train nothing"),
    report: bool = typer.Option(True, help="write figures and report.html at the end"),
    progress: bool = typer.Option(True, help="show a progress bar"),
) -> None:
    """Train a preset or a config file's sweep and write its results folder."""
    from .sweep import estimate_seconds, instance_records, instance_steps, run_sweep

    try:
        sweep = resolve_sweep(target, scale, set_, sweep_, seeds, device)
        if dry_run:
            typer.echo(json.dumps(instance_records(sweep), indent=1))
            typer.echo(f"{len(sweep.instances())} instances, {instance_steps(sweep):,} instance-steps, "
                       f"about {estimate_seconds(sweep) / 60:.1f} min on this machine's CPU", err=True)
            return
        folder = out or Path("runs") / sweep.name
        results = run_sweep(sweep, folder, resume=resume, progress=progress, report=report)
    except (ConfigError, ResultsError) as err:
        _fail(str(err))
    n_div = int((results.instances["status"] != "ok").sum())
    typer.echo(f"results: {folder}  ({len(results.instances)} instances, {n_div} diverged)")
    if (folder / "report.html").exists():
        typer.echo(f"report:  {folder / 'report.html'}")


@app.command()
def presets() -> None:
    """List every named experiment: what it sweeps, its paper figure and its cost per scale."""
    from .presets import PRESETS, SCALES
    from .sweep import estimate_seconds, instance_steps

    for p in PRESETS.values():
        grid = "; ".join(f"{k} in {v}" for k, v in p.grid.items())
        typer.echo(f"{p.name:5s} {p.base.get('task', ''):11s} {p.base.get('nonlinearity', ''):5s} "
                   f"{p.base.get('distribution', ''):9s} {p.summary}" + (f"  [{p.figure}]" if p.figure else ""))
        typer.echo(f"      sweeps {grid}")
        costs = []
        for scale in SCALES:
            s = p.config(scale)
            costs.append(f"{scale}: {instance_steps(s):.2g} inst-steps ~{_human(estimate_seconds(s))}")
        typer.echo("      " + " | ".join(costs))


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.0f}h"


@app.command()
def report(folder: Path = typer.Argument(..., help="a results folder")) -> None:
    """(Re)draw figures/*.png and report.html from a saved results folder."""
    from .report import write_report
    from .store import load

    try:
        results = load(folder)
        write_report(results)
    except (ConfigError, ResultsError) as err:
        _fail(str(err))
    if (folder / "report.html").exists():
        typer.echo(f"report: {folder / 'report.html'}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
