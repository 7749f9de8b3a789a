"""The ``toymodels`` command line (typer).

    toymodels presets                       every named experiment
    toymodels run LR1 --scale quick         train a sweep, write results, figures and report
    toymodels run my.toml --sweep lr=0.001,0.01 --seeds 2 --dry-run
    toymodels report runs/LR1-quick         redraw figures and report.html
    toymodels run LR1 --backend slurm --detach; toymodels status runs/LR1   a SLURM job array

Every command that cannot finish ends in one line on stderr: exit 2 for bad input, 1 for the environment (a full
disk, no permission) or anything unexpected, with the command that resumes a run (``running/exits.py``;
TOYMODELS_DEBUG=1 shows a traceback).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import signal
import sys
import traceback
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Optional

import typer
import typer.core
from pydantic import ValidationError

from toymodels.app.serve import check_address, serve
from toymodels.config import ConfigError, one_line
from toymodels.config.messages import did_you_mean
from toymodels.config.wording import command_line
from toymodels.families.sae.export import export_sae
from toymodels.running.exits import EnvironmentStop, check_path, debugging, error_line, exit_status, single_line
from toymodels.running.interrupts import EXIT_CODES
from toymodels.running.launch import latest_tasks, task_log, task_states
from toymodels.running.plan import estimate_seconds, instance_records, instance_steps, plan
from toymodels.config.presets import PRESETS, SCALES, resolve_sweep  # noqa: F401  (tests build sweeps with it)
from toymodels.report.html import summary_text, write_report
from toymodels.api import preset_lines
from toymodels.report.parts import find_study
from toymodels.report.study import study_text, write_study_report
from toymodels.running.runner import state_step
from toymodels.results.store import ResultsError, done_groups, load, merge_tables, read_sweep
from toymodels.running.sweep import run_sweep
from toymodels.running.tracking import mirror_for
from toymodels.engine.train import TrainingInterrupted
from toymodels.engine.process import allocator_tuning_allowed

FOLDER_HELP = "a results folder, or the folder of a multi-part preset's parts (toymodels run OPT1)"
#: the arguments of the command being run (``resume_command`` repeats them)
_ARGV: ContextVar["list[str] | None"] = ContextVar("toymodels_argv", default=None)


class OneLineErrors(typer.core.TyperGroup):
    """The command group: whatever a command raises, or whatever click refuses in its arguments, ends in one line on
    stderr and the exit status of ``running/exits.py`` (2 bad input, 1 the environment), never a traceback."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        token = _ARGV.set(argv)
        try:
            # messages name flags (--out), not Python arguments (out=); the process is ours: glibc's allocator
            # may be tuned for training (engine/process.py)
            with command_line(), allocator_tuning_allowed():
                code = super().main(args=argv, prog_name=prog_name, complete_var=complete_var,
                                    standalone_mode=False, **extra)
            code = code if isinstance(code, int) else 0
        except KeyboardInterrupt:
            code = _line("error: interrupted (Ctrl-C)", 130)
        except Exception as err:  # noqa: BLE001 -- the one place every failure becomes one line
            code = _ended(err)
        finally:
            _ARGV.reset(token)
        if standalone_mode:
            sys.exit(code)
        return code

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # typer would end with 130 and say nothing
            raise Interrupted() from None


class Interrupted(Exception):
    """Ctrl-C outside training (training's own stop saves its state and says how to resume)."""


def _ended(err: Exception) -> int:
    """Say ``err`` in one line; its exit status. Click's errors are recognised by their shape: typer vendors its
    own copy of click (``typer._click``) in some versions, and uses click itself in others."""
    ctx = getattr(err, "ctx", None)
    if type(err).__name__ == "NoArgsIsHelpError" and ctx is not None:  # `toymodels` alone: the help, then the line
        typer.echo(ctx.get_help())
        return _line("error: name a command (listed above)", 2)
    if hasattr(err, "format_message") and isinstance(getattr(err, "exit_code", None), int):  # a flag click refuses
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        return _line(f"error: {single_line(err.format_message())}{where}", err.exit_code)
    if isinstance(err, Interrupted) or type(err).__name__ == "Abort":  # Ctrl-C (click's, at a prompt)
        return _line("error: interrupted (Ctrl-C)", 130)
    if debugging():
        traceback.print_exc()
    return _line(error_line(err), exit_status(err))


def _line(text: str, code: int) -> int:
    typer.echo(text, err=True)
    return code


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, cls=OneLineErrors,
                  help="Superposition and monosemanticity in toy models: sweeps, metrics, figures.")


def _fail(msg: str) -> None:
    typer.echo(f"error: {single_line(msg)}", err=True)
    raise typer.Exit(2)


def resume_command(folder: Path, argv: list[str] | None = None) -> str:
    """The command line that continues this run: the same arguments with ``--out FOLDER --resume``."""
    args = list((_ARGV.get() or sys.argv[1:]) if argv is None else argv)
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
        if report and not dry_run and not detach and (study := find_study(root)) is not None:
            typer.echo(f"study report: {write_study_report(study, redraw=False)}")  # beside the parts' own
        return

    if threads is not None:
        set_ = [*set_, f"threads={threads}"]
    folder: Optional[Path] = None
    try:
        sweep = resolve_sweep(target, scale, set_, sweep_, seeds, device)
        if dry_run:
            typer.echo(json.dumps(instance_records(sweep), indent=1))
            typer.echo(f"{len(sweep.instances())} instances, {instance_steps(sweep):,} instance-steps, "
                       f"about {estimate_seconds(sweep) / 60:.1f} min on this machine's CPU", err=True)
            return
        folder = check_path(out or Path("runs") / sweep.name, "--out")
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
    except TrainingInterrupted as stop:
        typer.echo(f"{_interrupted(stop)}; continue with: {resume_command(folder)}", err=True)
        raise typer.Exit(EXIT_CODES.get(stop.signum, 130))
    except Exception as err:
        # bad input, a folder moved away, failed SLURM tasks: the message says it all (OneLineErrors prints it)
        if exit_status(err) == 2 or isinstance(err, EnvironmentStop) or not _started(folder):
            raise
        if debugging():
            traceback.print_exc()
        # the environment stopped a run that had started (disk full, no permission): what finished is saved
        typer.echo(f"{error_line(err)}; what finished is saved, continue with: {resume_command(folder)}", err=True)
        raise typer.Exit(1) from None
    if results is None:  # --detach
        typer.echo(f"submitted: {folder}  (`toymodels status {folder}` follows the tasks)")
        return
    typer.echo(summary_text(results))
    n_div = int((results.instances["status"] != "ok").sum())
    typer.echo(f"results: {folder}  ({len(results.instances)} instances, {n_div} diverged)")
    if (folder / "report.html").exists():
        typer.echo(f"report:  {folder / 'report.html'}")


def _started(folder: Optional[Path]) -> bool:
    """Whether a run began writing ``folder`` (it holds its sweep.json): a resume can continue it."""
    try:
        return folder is not None and (folder / "sweep.json").is_file()
    except OSError:
        return False


@app.command()
def presets() -> None:
    """List every named experiment: its family, what it sweeps, its paper figure and its cost per scale."""
    for line in preset_lines():
        typer.echo(line)


@app.command()
def report(folder: Path = typer.Argument(..., help=FOLDER_HELP)) -> None:
    """(Re)draw figures/*.png and report.html from a saved results folder and print its summary table."""
    study = find_study(folder)  # a multi-part preset's folder: every part's report, then the study's
    try:
        path = write_report(results := load(folder)) if study is None else write_study_report(study)
    except (ConfigError, ResultsError) as err:
        _fail(str(err))
    typer.echo(summary_text(results) if study is None else study_text(study))
    typer.echo(f"report: {path}")


@app.command()
def status(folder: Path = typer.Argument(..., help=FOLDER_HELP)) -> None:
    """Groups done / total, each unfinished group's SLURM task with its state and log; merges the finished groups."""
    if not folder.is_dir():
        _fail(f"{folder}: no such results folder")
    if (study := find_study(folder)) is not None:  # a multi-part preset's folder: each part's status in turn
        typer.echo(study.heading())
        for part in study.parts:
            status(part)
        return
    try:
        sweep, _ = read_sweep(folder)
        groups = plan(sweep)
        done = set(done_groups(folder)) & set(groups)
        tasks = latest_tasks(folder)
        left = [gid for gid in groups if gid not in done]
        states = task_states([tasks[g] for g in left if g in tasks])
        instances, _ = merge_tables(folder, say=lambda note: typer.echo(note, err=True))  # groups left out
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
                                      "DOCS/superposition.md), the dictionary-learning studies SAE-LR SAE-L0 "
                                      "SAE-ABS SAE-TMS (DOCS/dictionary_learning.md), POLY (the polytope lens, "
                                      "DOCS/polytope_lens.md) and/or GROK (grokking, DOCS/grokking.md)"),
    all_: bool = typer.Option(False, "--all", help="every study but GROK (hours at paper scale: name it): the EM "
                              "claims (rows 1-7), OPT1, the TMS-*/PC-* claims (rows 8-12), the SAE-* studies and POLY"),
    scale: str = typer.Option("quick", help="smoke | quick | paper"),
    seeds: int = typer.Option(3, min=1, help="seeds per setting"),
    out: Path = typer.Option(Path("runs/reproduce"), help="folder of the results folders (finished ones are reused)"),
    docs: Optional[Path] = typer.Option(None, help="where the documents go (default OUT/docs; --docs docs rewrites "
                                        "the repository's)"),
    steps: Optional[str] = typer.Option(None, help="train every sweep this many steps, e.g. 4096, or per claim: "
                                        "4096,B=2048,K1=2048 (bias decay: see toymodels.reproduce.em_claims.sweeps); "
                                        "default: the scale's"),
    progress: bool = typer.Option(True, help="progress bars (--no-progress: only a line per sweep)"),
    train: bool = typer.Option(True, help="--no-train: only reload what OUT already holds and write the report"),
    confirm: int = typer.Option(0, min=0, help="fresh seeds for a confirmation run: after the exploratory seeds, "
                                "train this many new seeds (from 1000) into OUT/confirm; their verdicts decide and the "
                                "exploratory ones go to DOCS/exploratory"),
) -> None:
    """Run the paper's checks, judge each claim and write docs/reproduction.md with figures.

    Each study records its rules (hash and commit) in a results folder before training it; a verdict of data
    trained under other or uncommitted rules is printed as 'post hoc'."""
    if not names and not all_:
        _fail("name the claims to check (e.g. LR1 LR3) or pass --all")
    # the studies (scipy, every judge) are loaded only by this command: a training run starts faster and smaller
    from toymodels.reproduce import ranked, reproduce, studies_of
    from toymodels.reproduce.em_claims.sweeps import parse_steps  # part of the same package
    from toymodels.reproduce.writer import typed_command  # part of the same package

    everything = [claim for study in ranked() if study.in_all for claim in study.claims] if all_ else []
    chosen = list(dict.fromkeys([*everything, *(names or [])]))
    known = [claim for study in ranked() for claim in study.claims]
    unknown = [name for name in chosen if name not in known]
    unknown += [name for name in parse_steps(steps) if name not in (*known, "*")]  # --steps B=2048 names one too
    if unknown:  # before any folder is made, with the closest name
        _fail(f"unknown claim {unknown[0]!r}{did_you_mean(unknown[0], known)}; available: {', '.join(known)}")
    docs = docs if docs is not None else out / "docs"  # study.default_docs: never the repository's unless asked
    for flag, path in (("--out", out), ("--docs", docs)):
        if check_path(path, flag).exists() and not path.is_dir():
            _fail(f"{flag} '{path}' is a file, not a folder; choose another {flag}")
    try:
        verdicts = reproduce(chosen, scale=scale, seeds=seeds, out_dir=out, docs_dir=docs, steps=steps,
                             progress=progress, command=typed_command(), train=train, confirm=confirm)
    except (ConfigError, ResultsError) as err:
        _fail(str(err))
    except ValidationError as err:
        _fail(one_line(err))
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
        path = export_sae(folder, run_id, check_path(out, "OUT"), step)
    except (ConfigError, ResultsError) as err:
        _fail(str(err))
    except KeyError as err:  # Results.row / Results.params: no such instance, no checkpoint at that step
        _fail(str(err.args[0]) if err.args else str(err))
    typer.echo(f"exported {run_id} of {folder} -> {path} (load with sae_lens.SAE.load_from_disk)")


@app.command("app")
def dashboard(
    folder: Path = typer.Argument(Path("runs"), help="a folder of results folders (or one results folder)"),
    port: Optional[int] = typer.Option(None, min=1, max=65535, help="port to serve on (default: streamlit's, 8501)"),
    host: str = typer.Option("127.0.0.1", help="address to listen on; 0.0.0.0 serves every network interface "
                             "(anyone who can reach this machine sees your results)"),
    headless: bool = typer.Option(False, help="do not open a browser (for servers)"),
) -> None:
    """Open the streamlit dashboard over the results folders in FOLDER (needs the optional `app` extra)."""
    if not folder.is_dir():  # what the user typed first, then the environment
        _fail(f"no folder '{folder}'; train a sweep first, e.g. "
              f"toymodels run LR1 --scale quick --out {folder}/LR1-quick")
    check_address(host, port)  # also typed by the user: before what the environment lacks
    missing = [m for m in ("streamlit", "plotly") if importlib.util.find_spec(m) is None]
    if missing:
        _fail(f"the dashboard needs {' and '.join(missing)}: pip install 'toymodels[app]'")
    raise typer.Exit(serve(folder, port, host, headless))


def main() -> None:  # pragma: no cover
    """The ``toymodels`` command (the console script and ``python -m toymodels``)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
