"""The ``toymodels`` command line (typer).

    toymodels presets                       every named experiment
    toymodels run LR1 --scale quick         train a sweep, write results, figures and report
    toymodels run my.toml --sweep lr=0.001,0.01 --seeds 2 --dry-run
    toymodels report runs/LR1-quick         redraw figures and report.html
    toymodels run LR1 --backend slurm --detach; toymodels status runs/LR1   a SLURM job array
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

from toymodels.app import SCRIPT
from toymodels.config import ConfigError, SweepConfig, one_line, parse_assignment
from toymodels.families.sae.export import export_sae
from toymodels.running.interrupts import EXIT_CODES
from toymodels.running.launch import LaunchError, latest_tasks, task_log, task_states
from toymodels.running.plan import estimate_seconds, instance_records, instance_steps, plan
from toymodels.config.presets import PRESETS, SCALES, preset
from toymodels.report.html import summary_text, write_report
from toymodels.running.runner import state_step
from toymodels.results.store import ResultsError, done_groups, load, merge_tables, read_sweep
from toymodels.running.sweep import run_sweep
from toymodels.running.tracking import mirror_for
from toymodels.engine.train import TrainingInterrupted

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Superposition and monosemanticity in toy models: sweeps, metrics, figures.")


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def resolve_sweep(target: str, scale: str, sets: list[str], sweeps: list[str], seeds: Optional[int],
                  device: Optional[str]) -> SweepConfig:
    """Preset name or config file, then --set (fixes a field, dropping it from the grid) and --sweep (grid)."""
    path = Path(target)
    if path.is_dir():
        raise ConfigError(f"'{target}' is a folder; give a preset name (see `toymodels presets`) or a .toml/.json "
                          "sweep file")
    if path.suffix in (".toml", ".json") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"config file '{target}' not found")
        sweep = SweepConfig.from_file(path)
    else:
        sweep = preset(target, scale=scale)
    base_values, grid, swept = {}, dict(sweep.grid), set()
    for item in sets:
        key, value = parse_assignment(item)
        if key in base_values:
            raise ConfigError(f"field '{key}' is given twice ({base_values[key]} and {value}; --set, --threads); "
                              "give it once")
        base_values[key] = value
        grid.pop(key, None)
    if device is not None:
        if "device" in base_values:
            raise ConfigError("field 'device' is given by both --device and --set; give it once")
        base_values["device"] = device
        grid.pop("device", None)
    for item in sweeps:
        key, value = parse_assignment(item)
        if key in base_values or key in swept:
            raise ConfigError(f"field '{key}' is given twice (--set and --sweep, or two --sweep); give it once")
        swept.add(key)
        grid[key] = [v.strip() for v in value.split(",") if v.strip()]
    base = sweep.base.replace(**base_values) if base_values else sweep.base
    try:
        return SweepConfig(name=sweep.name, base=base, grid=grid, seeds=sweep.seeds if seeds is None else seeds)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        raise ConfigError(one_line(err) if hasattr(err, "errors") else str(err)) from None


def resume_command(folder: Path, argv: list[str] | None = None) -> str:
    """The command line that continues this run: the same arguments with ``--out FOLDER --resume``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--out" not in args and not any(a.startswith("--out=") for a in args):
        args += ["--out", str(folder)]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["toymodels", *args])


def _interrupted(stop: TrainingInterrupted) -> str:
    what = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}.get(stop.signum, "a stop request")
    if stop.group and stop.step:
        return f"stopped by {what} at step {stop.step} of {stop.steps} in group {stop.group}; its state is saved"
    return f"stopped by {what} between groups; every finished group is saved"


@app.command()
def run(
    target: str = typer.Argument(..., help="preset name (see `toymodels presets`) or a .toml/.json sweep file"),
    scale: str = typer.Option("quick", help="smoke | quick | paper"),
    set_: list[str] = typer.Option([], "--set", help="field=value, fixes a field (repeatable)"),
    sweep_: list[str] = typer.Option([], "--sweep", help="field=v1,v2,... adds a grid axis (repeatable)"),
    seeds: Optional[int] = typer.Option(None, help="number of seeds per setting"),
    out: Optional[Path] = typer.Option(None, help="results folder (default runs/<name>)"),
    device: Optional[str] = typer.Option(None, help="cpu | cuda | cuda:N"),
    threads: Optional[int] = typer.Option(None, help="CPU threads per group (the field `threads`; default: "
                                          "automatic, fewer while other processes keep the cores busy)"),
    resume: bool = typer.Option(False, help="continue a sweep in --out, skipping finished groups"),
    dry_run: bool = typer.Option(False, help="print the resolved instances as JSON and the cost; train nothing"),
    report: bool = typer.Option(True, help="write figures and report.html at the end"),
    progress: bool = typer.Option(True, help="show a progress bar"),
    backend: str = typer.Option("local", help="where groups run: local | slurm (one SLURM array task per group)"),
    slurm_partition: Optional[str] = typer.Option(None, help="SLURM partition (--backend slurm)"),
    slurm_gpus_per_task: Optional[int] = typer.Option(None, help="GPUs per SLURM task (--backend slurm)"),
    slurm_cpus_per_task: Optional[int] = typer.Option(None, help="CPUs per SLURM task (--backend slurm)"),
    slurm_time: Optional[int] = typer.Option(None, help="time limit per SLURM task in minutes (default 1440); "
                                             "a task near it requeues and continues from its saved state"),
    max_parallel: Optional[int] = typer.Option(None, help="most SLURM tasks running at once (--backend slurm)"),
    detach: bool = typer.Option(False, help="submit to SLURM and return; follow with `toymodels status DIR`"),
    wandb: Optional[str] = typer.Option(None, "--wandb", metavar="PROJECT",
                                        help="mirror each instance to this Weights & Biases project (or env "
                                        "TOYMODELS_WANDB_PROJECT; needs toymodels[wandb]; WANDB_MODE=offline "
                                        "runs without network)"),
) -> None:
    """Train a preset or a config file's sweep and write its results folder."""
    if target in PRESETS and PRESETS[target].parts:  # multi-part preset (OPT1): one folder per part under --out
        root = out or Path("runs") / f"{target}-{scale}"
        for part in PRESETS[target].part_names():
            typer.echo(f"== {part} -> {root / part}", err=True)
            run(part, scale, set_, sweep_, seeds, root / part, device, threads, resume, dry_run, report, progress,
                backend, slurm_partition, slurm_gpus_per_task, slurm_cpus_per_task, slurm_time, max_parallel, detach,
                wandb)
        return

    if threads is not None:
        set_ = [*set_, f"threads={threads}"]
    try:
        sweep = resolve_sweep(target, scale, set_, sweep_, seeds, device)
        if dry_run:
            typer.echo(json.dumps(instance_records(sweep), indent=1))
            typer.echo(f"{len(sweep.instances())} instances, {instance_steps(sweep):,} instance-steps, "
                       f"about {estimate_seconds(sweep) / 60:.1f} min on this machine's CPU", err=True)
            return
        folder = out or Path("runs") / sweep.name
        options = {k: v for k, v in dict(
            partition=slurm_partition, gpus_per_task=slurm_gpus_per_task, cpus_per_task=slurm_cpus_per_task,
            timeout_min=slurm_time, max_parallel=max_parallel, detach=detach or None).items() if v is not None}
        mirror = mirror_for(wandb)  # before any training: without the wandb extra this fails in one line
        results = run_sweep(sweep, folder, resume=resume, progress=progress, backend=backend,
                            on_group_done=mirror.group_done if mirror else None, **options)
        if results is not None and report:
            write_report(results)
        if results is not None and mirror is not None:  # after the report: its figures go along
            mirror.finish(folder)
    except (ConfigError, ResultsError) as err:
        _fail(str(err))
    except TrainingInterrupted as stop:
        typer.echo(f"{_interrupted(stop)}; continue with: {resume_command(folder)}", err=True)
        raise typer.Exit(EXIT_CODES.get(stop.signum, 130))
    except LaunchError as err:  # SLURM tasks that failed or were cancelled; the finished groups are merged
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1)
    if results is None:  # --detach
        typer.echo(f"submitted: {folder}  (`toymodels status {folder}` follows the tasks)")
        return
    typer.echo(summary_text(results))
    n_div = int((results.instances["status"] != "ok").sum())
    typer.echo(f"results: {folder}  ({len(results.instances)} instances, {n_div} diverged)")
    if (folder / "report.html").exists():
        typer.echo(f"report:  {folder / 'report.html'}")


@app.command()
def presets() -> None:
    """List every named experiment: what it sweeps, its paper figure and its cost per scale."""
    for p in PRESETS.values():
        grid = "; ".join(f"{k} in {v}" for k, v in p.grid.items())
        if p.parts:  # multi-part preset (OPT1, SAE-*): its parts' grids (quick scale's when the scale sets them)
            grid = " | ".join(f"{n}: " + "; ".join(f"{k} in {v}" for k, v in (g or sweep.grid).items())
                              for n, (_, _, g), sweep in zip(p.part_names(), p.parts, p.sweeps("quick")))
        typer.echo(f"{p.name:5s} {p.base.get('task', ''):11s} {p.base.get('nonlinearity', ''):5s} "
                   f"{p.base.get('distribution', ''):9s} {p.summary}" + (f"  [{p.figure}]" if p.figure else ""))
        typer.echo(f"      sweeps {grid}")
        costs = []
        for scale in SCALES:
            parts = p.sweeps(scale)
            steps, secs = sum(instance_steps(s) for s in parts), sum(estimate_seconds(s) for s in parts)
            costs.append(f"{scale}: {steps:.2g} inst-steps ~{_human(secs)}")
        typer.echo("      " + " | ".join(costs))


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.0f}h"


@app.command()
def report(folder: Path = typer.Argument(..., help="a results folder")) -> None:
    """(Re)draw figures/*.png and report.html from a saved results folder and print its summary table."""
    try:
        results = load(folder)
        path = write_report(results)
    except (ConfigError, ResultsError) as err:
        _fail(str(err))
    typer.echo(summary_text(results))
    typer.echo(f"report: {path}")


@app.command()
def status(folder: Path = typer.Argument(..., help="a results folder")) -> None:
    """Groups done / total, each unfinished group's SLURM task with its state and log; merges the finished groups."""
    try:
        sweep, _ = read_sweep(folder)
        groups = plan(sweep)
        done = set(done_groups(folder)) & set(groups)
        tasks = latest_tasks(folder)
        left = [gid for gid in groups if gid not in done]
        states = task_states([tasks[g] for g in left if g in tasks])
        instances, _ = merge_tables(folder)
    except (ConfigError, ResultsError) as err:
        _fail(str(err))
    typer.echo(f"{sweep.name} ({folder}): {len(done)}/{len(groups)} groups done, "
               f"{len(instances)}/{sweep.size()} instances merged into instances.parquet")
    for gid in left:
        step = state_step(folder, gid)
        saved = f"  saved state at step {step}" if step is not None else ""
        if gid in tasks:
            typer.echo(f"  {gid}  task {tasks[gid]}  {states[tasks[gid]]}{saved}  log: {task_log(folder, tasks[gid])}")
        else:
            typer.echo(f"  {gid}  not submitted to SLURM{saved}")


@app.command("reproduce")
def reproduce_cmd(
    names: list[str] = typer.Argument(None, help="claims LR1 LR2 LR3 B K1 MECH RG1 (docs/papers.md §4 rows 1-7, "
                                      "written to DOCS/reproduction.md), OPT1 (the optimizer study, "
                                      "DOCS/optimizer_study.md; its parts in OUT/OPT1-<scale>/, the layout of "
                                      "`toymodels run OPT1`), TMS-*/PC-* presets (rows 8-12, "
                                      "DOCS/superposition.md) and/or the dictionary-learning studies SAE-LR SAE-L0 "
                                      "SAE-ABS SAE-TMS (DOCS/dictionary_learning.md)"),
    all_: bool = typer.Option(False, "--all", help="every claim of the three reproduction documents: the EM claims "
                              "(rows 1-7), OPT1 and the TMS-*/PC-* claims (rows 8-12); the SAE-* studies are named "
                              "one by one"),
    scale: str = typer.Option("quick", help="smoke | quick | paper"),
    seeds: int = typer.Option(3, help="seeds per setting"),
    out: Path = typer.Option(Path("runs/reproduce"), help="folder of the results folders (finished ones are reused)"),
    docs: Path = typer.Option(Path("docs"), help="where reproduction.md and figures/em_*.png go"),
    steps: Optional[str] = typer.Option(None, help="train every sweep this many steps, e.g. 4096, or per claim: "
                                        "4096,B=2048,K1=2048 (bias decay: see toymodels.reproduce.em_claims.sweeps); "
                                        "default: the scale's"),
    progress: bool = typer.Option(False, help="show progress bars"),
    train: bool = typer.Option(True, help="--no-train: only reload what OUT already holds and write the report"),
) -> None:
    """Run the paper's checks, judge each claim and write docs/reproduction.md with figures."""
    if not names and not all_:
        _fail("name the claims to check (e.g. LR1 LR3) or pass --all")
    # the studies (scipy, every judge) are loaded only by this command: a training run starts faster and smaller
    from toymodels.reproduce import ranked, reproduce, studies_of
    from toymodels.reproduce.writer import typed_command  # part of the same package

    everything = [claim for study in ranked() if study.in_all for claim in study.claims] if all_ else []
    chosen = list(dict.fromkeys([*everything, *(names or [])]))
    try:
        verdicts = reproduce(chosen, scale=scale, seeds=seeds, out_dir=out, docs_dir=docs, steps=steps,
                             progress=progress, command=typed_command(), train=train)
    except (ConfigError, ResultsError) as err:
        _fail(str(err))
    for v in verdicts:
        typer.echo(f"{v.claim:6s} {v.verdict:12s} {v.reason[:160]}")
    for study, _ in studies_of(chosen):
        typer.echo(f"report: {docs / study.document}")


@app.command("export-sae")
def export_sae_cmd(
    folder: Path = typer.Argument(..., help="a results folder of SAEs"),
    run_id: str = typer.Argument(..., help="the SAE's run id (a row of instances.parquet), e.g. r0003"),
    out: Path = typer.Argument(..., help="a new folder: cfg.json + sae_weights.safetensors, as SAELens saves"),
    step: Optional[int] = typer.Option(None, help="a checkpoint step (default: the final model)"),
) -> None:
    """Write one trained SAE in the layout SAELens loads (`sae_lens.SAE.load_from_disk(OUT)`)."""
    try:
        path = export_sae(folder, run_id, out, step)
    except (ConfigError, ResultsError) as err:
        _fail(str(err))
    typer.echo(f"exported {run_id} of {folder} -> {path} (load with sae_lens.SAE.load_from_disk)")


@app.command("app")
def dashboard(
    folder: Path = typer.Argument(Path("runs"), help="a folder of results folders (or one results folder)"),
    port: Optional[int] = typer.Option(None, help="port to serve on (default: streamlit's, 8501)"),
    host: str = typer.Option("127.0.0.1", help="address to listen on; 0.0.0.0 serves every network interface "
                             "(anyone who can reach this machine sees your results)"),
    headless: bool = typer.Option(False, help="do not open a browser (for servers)"),
) -> None:
    """Open the streamlit dashboard over the results folders in FOLDER (needs the optional `app` extra)."""
    if not folder.is_dir():  # what the user typed first, then the environment
        _fail(f"no folder '{folder}'; train a sweep first, e.g. "
              f"toymodels run LR1 --scale quick --out {folder}/LR1-quick")
    missing = [m for m in ("streamlit", "plotly") if importlib.util.find_spec(m) is None]
    if missing:
        _fail(f"the dashboard needs {' and '.join(missing)}: pip install 'toymodels[app]'")
    script = SCRIPT
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none",  # the app reruns on new results, not on edits of its source
           "--client.toolbarMode", "viewer"]
    cmd += ["--server.address", host]
    if port is not None:
        cmd += ["--server.port", str(port)]
    if headless:
        cmd += ["--server.headless", "true"]
    cmd += ["--", str(folder.resolve())]
    proc = subprocess.Popen(cmd)
    # Stop the server with us: forward SIGTERM; Ctrl-C reaches both processes (same process group).
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:
                continue  # streamlit got the Ctrl-C too and is shutting down
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    raise typer.Exit(code)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
