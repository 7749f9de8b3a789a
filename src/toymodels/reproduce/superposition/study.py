"""The superposition claims end to end (docs/papers.md §4 rows 8-12): train the TMS and P&C presets, judge each
claim (``checks``, ``seed_checks``, by the rules of ``rules``), draw its figure (``figures``) and write
docs/superposition.md.

Seeds are restarts: where the papers keep the lowest-loss restart the seeds are raised to the claim's
``min_seeds``; an existing results folder of the same sweep under ``out_dir`` is resumed, not retrained. Inside
``reproduce`` the verdicts go through ``confirmation.finalize`` before the document is written: a verdict whose
folder was trained under other rules is ``post hoc``, and a confirmatory run shows the exploratory verdicts beside
its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from toymodels.config import ConfigError
from toymodels.config.presets import PRESETS, preset
from toymodels.families.quadratic import quadratic_capacity_theory
from toymodels.families.tms.presets import superposition_presets
from toymodels.reproduce.confirmation import finalize, side_by_side
from toymodels.reproduce.study import (
    StudyOptions,
    canonical_command,
    default_docs,
    load_for_study,
    train_sweep,
)
from toymodels.reproduce.superposition.checks import (
    check_capacity,
    check_intro,
    check_phase,
)
from toymodels.reproduce.superposition.data import EVAL_SAMPLES, final_weights
from toymodels.reproduce.superposition.figures import (
    plot_basic,
    plot_capacity,
    plot_dims,
    plot_intro,
    plot_phase,
)
from toymodels.reproduce.superposition.rules import DERIVED, HOLDS, RANK_BY_EVAL_LOSS
from toymodels.reproduce.superposition.rules import MIN_SEEDS as RULE_SEEDS
from toymodels.reproduce.superposition.seed_checks import check_basic, check_dims
from toymodels.reproduce.superposition.statements import STATEMENTS
from toymodels.reproduce.verdict import Verdict, at_scale
from toymodels.reproduce.writer import md_cell, provenance, write_document
from toymodels.results.store import write_json

TITLE = "Superposition and capacity: reproduction report"
DOCUMENT = "superposition.md"


def plot_capacity_with_theory(df: pd.DataFrame, path: Path) -> Path:
    """:func:`plot_capacity` with the theory's optimal allocation per kurtosis."""
    d = df[df["status"] == "ok"]
    D = np.asarray(d["W"].iloc[0]).shape[0]
    v = torch.as_tensor(np.asarray(d["importance"].iloc[0]))
    theory = {float(K): quadratic_capacity_theory(v, D, float(K))[0].numpy() for K in sorted(set(d["kurtosis"]))}
    return plot_capacity(df, theory, path)


@dataclass(frozen=True)
class SuperpositionClaim:
    """One claim: its preset, its row of docs/papers.md §4, how it is judged and drawn, and how it is run."""

    preset: str
    row: int
    check: Callable[[pd.DataFrame], Verdict]
    draw: Callable[[pd.DataFrame, Path], Path]
    figure_file: str
    #: the fewest seeds it runs (``rules.MIN_SEEDS``)
    min_seeds: int = 1
    #: rank restarts by the TMS model's loss on common fresh inputs (``rules.RANK_BY_EVAL_LOSS``)
    rank_by_eval_loss: bool = False


CLAIMS: dict[str, SuperpositionClaim] = {c.preset: c for c in [
    SuperpositionClaim(name, row, check, draw, figure, RULE_SEEDS[name], name in RANK_BY_EVAL_LOSS)
    for name, row, check, draw, figure in [
        ("TMS-intro", 8, check_intro, plot_intro, "tms_intro.png"),
        ("TMS-basic", 9, check_basic, plot_basic, "tms_basic.png"),
        ("TMS-dim", 10, check_dims, plot_dims, "tms_dim.png"),
        ("TMS-phase", 11, check_phase, plot_phase, "tms_phase.png"),
        ("PC-kurtosis", 12, check_capacity, plot_capacity_with_theory, "pc_kurtosis.png"),
    ]]}
MIN_SEEDS = {name: c.min_seeds for name, c in CLAIMS.items() if c.min_seeds > 1}


def reproduce_superposition(
    names: Sequence[str] | None = None, scale: str = "quick", seeds: int = 2, out_dir: str | Path = "runs",
    docs_dir: str | Path | None = None, progress: bool = True, threads: int | str | None = "auto",
    command: str | None = None, train: bool = True,
) -> list[Verdict]:
    """Train (or resume) the superposition presets, judge docs/papers.md §4 rows 8-12 and write the report.

    ``names``: presets to run (default: all of TMS-intro, TMS-basic, TMS-dim, TMS-phase, PC-kurtosis); ``seeds``
    per setting, raised to ``MIN_SEEDS`` (3 for TMS-intro, TMS-basic and TMS-dim, 5 for TMS-phase, 32 for
    PC-kurtosis) where the lowest-loss restart is judged or the rule needs 3 seeds; results go to
    ``out_dir/<preset>-<scale>``; figures to ``docs_dir/figures/``; the report to ``docs_dir/superposition.md``
    (``docs_dir`` default: ``out_dir/docs``; at smoke scale every verdict is ``inconclusive (scale)``)
    (rewritten after each preset, so an interrupted run keeps its verdicts) and the verdicts as JSON to
    ``out_dir/superposition-<scale>-verdicts.json``. ``threads``: torch intra-op threads while training; ``"auto"``
    = 1 at smoke and quick scale (these models are tiny: on a busy 2-core machine 2 threads made a TMS step ~14x
    slower than 1), torch's default at paper scale. ``command``: the
    command named in the report (default: the equivalent ``toymodels reproduce`` call). ``train`` False: only
    reload the folders that exist (a claim without one is reported as not run).
    Returns one Verdict per preset run, after ``confirmation.finalize``; ``details`` holds how it was run (row,
    scale, n_seeds, folder, seconds, ...).
    """
    names = list(names) if names else superposition_presets()
    unknown = [n for n in names if n not in CLAIMS]
    if unknown:
        raise ConfigError(f"not a superposition preset: {unknown[0]}; available: {', '.join(CLAIMS)}")
    out_dir = Path(out_dir)
    docs_dir = default_docs(out_dir) if docs_dir is None else Path(docs_dir)
    command = command or canonical_command(names, scale, seeds, out_dir, docs_dir)
    old_threads = torch.get_num_threads()
    n_threads = (1 if scale in ("smoke", "quick") else None) if threads == "auto" else threads
    verdicts: list[Verdict] = []
    missing: dict[str, str] = {}
    try:
        if n_threads:
            torch.set_num_threads(int(n_threads))
        for i, name in enumerate(names):
            v = _reproduce_one(CLAIMS[name], scale, seeds, out_dir, docs_dir, progress, train)
            if v is None:
                missing[name] = f"not run: no results folder under {out_dir} and training was not asked for"
            else:
                verdicts.append(v)
            pending = {n: "not run yet (the run was interrupted or is still going)" for n in names[i + 1:]}
            if pending:  # a partial report after each preset, so an interrupted run still leaves its verdicts
                write_report(finalize(verdicts), docs_dir / DOCUMENT, command, scale, seeds,
                             not_run={**missing, **pending})
    finally:
        torch.set_num_threads(old_threads)
    verdicts = finalize(verdicts)  # post hoc data cannot decide; the exploratory verdicts beside (confirmation)
    write_report(verdicts, docs_dir / DOCUMENT, command, scale, seeds, not_run=missing)
    write_json(out_dir / f"superposition-{scale}-verdicts.json", [verdict_record(v) for v in verdicts])
    return verdicts


def run_claims(claims: Sequence[str], options: StudyOptions) -> list[Verdict]:
    """The superposition claims ``claims`` as ``reproduce()`` runs them (the study registry's signature)."""
    return reproduce_superposition(claims, scale=options.scale, seeds=options.seeds, out_dir=options.out_dir,
                                   docs_dir=options.docs_dir, progress=options.progress, command=options.command,
                                   train=options.train)


def _reproduce_one(claim: SuperpositionClaim, scale: str, seeds: int, out_dir: Path, docs_dir: Path,
                   progress: bool, train: bool = True) -> Verdict | None:
    n_seeds = max(seeds, claim.min_seeds)
    sweep = preset(claim.preset, scale=scale, seeds=n_seeds)
    folder = out_dir / sweep.name
    t0 = time.perf_counter()
    if train:
        res = train_sweep(sweep, folder, progress)
    elif (folder / "sweep.json").exists():
        res = load_for_study(folder)
    else:
        return None
    wall = time.perf_counter() - t0
    # training time as recorded by the groups (also right when a finished folder was only resumed)
    seconds = float(res.instances["train_seconds"].sum()) if "train_seconds" in res.instances else wall
    df = final_weights(res, eval_samples=EVAL_SAMPLES if claim.rank_by_eval_loss else 0)
    fig = claim.draw(df, docs_dir / "figures" / claim.figure_file)
    v = at_scale(claim.check(df), scale)
    return replace(v, figure=str(fig.relative_to(docs_dir)) if fig.is_relative_to(docs_dir) else str(fig),
                   details={**v.details, "row": claim.row, "scale": scale, "n_seeds": n_seeds, "folder": str(folder),
                            "seconds": round(seconds, 1), "instances": len(res.instances),
                            "steps": sweep.base.optim.steps, "threads": torch.get_num_threads(),
                            "trained_at": str(res.meta.get("git_commit") or "unknown")[:12],
                            "batch_size": sweep.base.optim.batch_size})


def verdict_record(v: Verdict) -> dict:
    """A verdict as JSON-ready values: name, row, claim, paper, ours, checks, verdict, reason, figure and how it
    was run (the per-claim tables are left out)."""
    run = {k: x for k, x in v.details.items() if k not in ("per_seed", "exploratory")}
    if "exploratory" in v.details:  # a confirmatory verdict: the exploratory one's word beside it
        run["exploratory_verdict"] = v.details["exploratory"].verdict
    return {"name": v.claim, "row": CLAIMS[v.claim].row, "claim": v.title, "paper": v.paper, "ours": v.numbers,
            "checks": [asdict(c) for c in v.checks], "verdict": v.verdict, "reason": v.reason, "figure": v.figure,
            **run}


def write_report(verdicts: list[Verdict], path: str | Path, command: str, scale: str, seeds: int,
                 not_run: dict[str, str] | None = None) -> Path:
    """docs/superposition.md: the verdict table, then per claim the paper's statement, our numbers, the figure,
    the verdict with its criteria, and how it was produced. ``not_run`` maps skipped presets to the reason."""
    lead = ("Claims of *Toy Models of Superposition* (Elhage et al. 2022) and *Polysemanticity and Capacity in "
            "Neural Networks* (Scherlis et al. 2022), checked with the toymodels TMS and quadratic model families "
            "against docs/papers.md §4 rows 8-12. Every threshold, criterion, seed count and the verdict rule are in "
            "`toymodels/reproduce/superposition/rules.py` (the judges: `checks.py`, `seed_checks.py`); whether "
            "they were fixed before the runs they judge is the pre-registration line below, not a claim of this "
            "text. Each criterion is the paper's (*central*: the core of the claim, or *paper*) or *derived* (a "
            "replication's number, a script's mark, our own derivation): derived marks are reported and never "
            "decide. Verdicts: **agrees** (every criterion of the paper holds), **partly** (a central criterion "
            "holds and another of the paper fails), **disagrees** (every central criterion fails), "
            "**inconclusive** (no central criterion holds without all failing, or nothing fails but a criterion "
            "cannot tell: an interval over seeds straddles its mark, or the runs cannot support it), **post hoc** "
            "(the folder was trained under other rules). Claims judged across seeds (TMS-basic, TMS-dim) read 95% "
            "intervals over seeds; the others judge the lowest-loss restart, the papers' recipe. Every verdict says "
            "how it changes with all its thresholds halved or doubled.")
    lines = [*side_by_side(verdicts),
             f"Run at scale `{scale}`, seeds={seeds} per setting (raised to "
             + ", ".join(f"{v} for {k}" for k, v in MIN_SEEDS.items()) + ").", "",
             "## Verdicts", "",
             "| docs/papers.md §4 row | preset | claim | verdict | reason |", "|---|---|---|---|---|"]
    lines += [f"| {v.details['row']} | {v.claim} | {md_cell(v.title)} | **{v.verdict}** | {md_cell(v.reason)} |"
              for v in verdicts]
    for name, why in (not_run or {}).items():
        row = CLAIMS[name].row if name in CLAIMS else ""
        lines.append(f"| {row} | {name} | {md_cell(STATEMENTS.get(name, ('', ''))[0])} | **inconclusive** | "
                     f"{md_cell(why)} |")
    lines.append("")
    if verdicts:
        total = sum(v.details["seconds"] for v in verdicts)
        each = ", ".join(f"{v.claim} {v.details['seconds']:.0f} s" for v in verdicts)
        lines += [f"Training time here: {total / 60:.0f} min in all ({each}).", ""]
    if scale != "paper" and verdicts:
        lines += [("How this scale differs from scale `paper` (the papers' settings where docs/papers.md §2.2 gives "
                  "them, i.e. for TMS; for PC-kurtosis our own large-batch choice). The model sizes n, m are the "
                  "papers' at every scale but smoke:"), ""]
        for v in verdicts:
            run, paper = v.details, preset(v.claim, scale="paper")
            ours = run["steps"] * run["batch_size"]
            theirs = paper.base.optim.steps * paper.base.optim.batch_size
            n_ours, n_paper = run["instances"] // max(1, run["n_seeds"]), len(paper.instances())
            lines.append(f"- {v.claim}: {run['steps']:,} steps × batch {run['batch_size']} "
                         f"({100 * ours / theirs:.0f}% of the {paper.base.optim.steps:,} × "
                         f"{paper.base.optim.batch_size} samples at scale `paper`)"
                         + (f", {n_ours} settings per seed instead of {n_paper}" if n_ours != n_paper else "")
                         + f", {run['n_seeds']} seeds/restarts.")
        lines.append("")
    for v in verdicts:
        run = v.details
        lines += [f"## {v.claim}: {v.title}", "", f"**Paper.** {v.paper}", "", f"**Ours.** {v.numbers}", "",
                  f"![{v.claim}]({v.figure})", "", f"**Verdict: {v.verdict}** — {v.reason}.", "",
                  "| criterion | kind | holds | measured |", "|---|---|---|---|"]
        states = v.details.get("criteria", {})
        for c in v.checks:
            kind, state = states.get(c.criterion, ("", HOLDS if c.passed else "fails"))
            held = {"holds": "yes", "fails": "no"}.get(state, state)
            lines.append(f"| {md_cell(c.criterion)} | {kind}{' (never decides)' if kind == DERIVED else ''} | "
                         f"{held} | {md_cell(c.detail)} |")
        seed_text = f" ({run['seeds']})" if isinstance(run.get("seeds"), str) else ""
        lines += ["", (f"Run: preset `{v.claim}` at scale `{run['scale']}`, {run['n_seeds']} seeds{seed_text}, "
                  f"{run['instances']} instances, {run['steps']:,} steps at batch {run['batch_size']}, "
                  f"{run['seconds']:.0f} s of training ({run.get('threads', '?')} torch thread(s)), folder created "
                  f"at commit `{run.get('trained_at', 'unknown')}` (`toymodels run {v.claim} --scale "
                  f"{run['scale']} --seeds {run['n_seeds']}`). {PRESETS[v.claim].notes}"), ""]
    for name, why in (not_run or {}).items():
        lines += [f"## {name}: not run", "", f"{why}", ""]
    # the header names the commits that trained the results folders (a finished folder is reloaded, not retrained)
    trained = [SimpleNamespace(meta={"git_commit": v.details.get("trained_at")}) for v in verdicts]
    return write_document(path, TITLE, provenance(command, trained), lead=[lead], body=lines)
