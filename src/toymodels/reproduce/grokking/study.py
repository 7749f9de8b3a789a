"""The grokking study end to end (``toymodels reproduce GROK``): train (or reload) its two sweeps, measure them
(``measure``), judge the five claims (``judges``, under ``rules``), draw the figures and write docs/grokking.md.

Sweeps, both from the family's presets at the chosen scale, ``seeds`` seeds each:

* ``GROK-main-<scale>``: the paper's run (weight decay 1 at the scale's training fraction): claims 1-4;
* ``GROK-wd-<scale>``: weight decay 0 and 1 at the scale's fraction and at half of it: claim 5 (weight decay 0 is
  the claim, weight decay 1 its positive control; the smaller fraction is reported beside it).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import pandas as pd

from toymodels.config import SweepConfig
from toymodels.config.presets import preset
from toymodels.families.grokking.figures import curves_plot, phase_plot, progress_plot, spectrum_plot
from toymodels.reproduce.confirmation import finalize, side_by_side
from toymodels.reproduce.grokking.judges import JUDGES, STATEMENTS
from toymodels.reproduce.grokking.measure import instance_table, share_table
from toymodels.reproduce.grokking.rules import RULES, GrokRules
from toymodels.reproduce.intervals import threshold_sensitivity
from toymodels.reproduce.study import StudyOptions, load_for_study, train_sweep
from toymodels.reproduce.verdict import Verdict, at_scale
from toymodels.reproduce.writer import md_table, provenance, write_document
from toymodels.results.store import Results

DOCUMENT = "grokking.md"
CLAIMS = ("GROK",)
TITLE = "Reproduction of *Progress measures for grokking via mechanistic interpretability* (Nanda et al. 2023)"


def sweeps(scale: str, seeds: int) -> dict[str, SweepConfig]:
    """The study's two sweeps (module docstring)."""
    main = preset("GROK-main", scale, 1)
    grid = {k: v for k, v in main.grid.items() if k != "seed"}
    frac = float(main.base.grokking.train_frac)
    out = {"main": SweepConfig(name=f"GROK-main-{scale}", base=main.base, grid=grid, seeds=seeds)}
    wd = preset("GROK-phase", scale, 1)
    out["wd"] = SweepConfig(name=f"GROK-wd-{scale}", base=wd.base.replace(train_frac=frac),
                            grid={"weight_decay": [0.0, 1.0], "train_frac": [round(frac / 2, 3), frac]}, seeds=seeds)
    return out


def judge_all(table: pd.DataFrame | None, shares: pd.DataFrame | None, rules: GrokRules = RULES) -> list[Verdict]:
    """The five verdicts under ``rules`` from the measured tables (claims without finished results: inconclusive)."""
    out = []
    for claim, judge in JUDGES.items():
        data = shares if claim == "GROK-5" else table
        if data is None or data.empty:
            title, paper = STATEMENTS[claim]
            out.append(Verdict(claim, title, "inconclusive", "not run to the end: no finished results", paper=paper))
        else:
            out.append(judge(data, rules))
    return out


def judged(main: Results | None, wd: Results | None, scale: str) -> list[Verdict]:
    """The verdicts under the rules, each with its threshold-sensitivity line, read at ``scale``. The tables are
    measured once: the thresholds that move (``GrokRules.scaled``) are read off them, not measured into them."""
    table = instance_table(main, RULES) if main is not None and len(main.instances) else None
    shares = share_table(wd) if wd is not None and len(wd.instances) else None
    base = judge_all(table, shares, RULES)
    half, double = judge_all(table, shares, RULES.scaled(0.5)), judge_all(table, shares, RULES.scaled(2.0))
    out = []
    for v, h, d in zip(base, half, double):
        moved = threshold_sensitivity(lambda f, h=h, d=d: (h if f < 1 else d).verdict, v.verdict)
        out.append(at_scale(replace(v, details={**v.details, "thresholds": moved}), scale))
    return out


def figures(main: Results | None, wd: Results | None, docs_dir: Path) -> dict[str, str]:
    """The document's figures (the family's own) into ``docs_dir/figures``: name -> path relative to the docs."""
    folder = docs_dir / "figures"
    made: dict[str, list[Path]] = {}
    if main is not None and len(main.instances):
        for name, draw in (("curves", curves_plot), ("spectrum", spectrum_plot), ("progress", progress_plot)):
            made[name] = draw(main, None, folder)
    if wd is not None and len(wd.instances):
        made["phase"] = phase_plot(wd, folder)
    return {name: f"figures/{paths[0].name}" for name, paths in made.items() if paths}


def write(verdicts: Sequence[Verdict], results: dict[str, Results], figs: dict[str, str], options: StudyOptions,
          elapsed: float) -> Path:
    """docs/grokking.md: the verdict table, registration, what was run, then each claim."""
    lines = ["## Verdicts", "", "| claim | verdict | our numbers | thresholds halved / doubled |", "|---|---|---|---|"]
    lines += [f"| {v.title} | **{v.verdict}** | {v.numbers} | {v.details.get('thresholds', '')} |" for v in verdicts]
    lines += ["", *side_by_side(verdicts), "## What was run", ""]
    for label, res in results.items():
        b = res.sweep.base
        lines.append(f"- `{res.sweep.name}` ({label}): P = {b.grokking.modulus}, {b.grokking.operation}, "
                     f"{b.optim.steps} full-batch steps, grid {res.sweep.grid or 'none'}, {res.sweep.seeds} seeds, "
                     f"{len(res.instances)} instances")
    lines += ["", f"Scale `{options.scale}`; {elapsed / 60:.0f} min of this run. Thresholds and why: "
              "`toymodels.reproduce.grokking.rules`.", ""]
    for v in verdicts:
        lines += [f"## {v.title}", "", f"**Paper:** {v.paper}", "", f"**Verdict: {v.verdict}** — {v.reason}.", ""]
        lines += [md_table(v.table), ""] if v.table is not None else []
    for name, path in figs.items():
        lines += [f"![{name}]({path})", ""]
    return write_document(options.docs_dir / DOCUMENT, TITLE, provenance(options.command, results.values()),
                          lead=["Grokking on modular addition with toymodels' batched `grokking` family: each claim "
                                "judged on 95% intervals over seeds by rules committed before the runs."],
                          body=lines)


def run_claims(claims: Sequence[str], options: StudyOptions) -> list[Verdict]:
    """The study as ``reproduce()`` runs it (the registry's signature)."""
    t0 = time.time()
    results: dict[str, Results] = {}
    for label, sw in sweeps(options.scale, options.seeds).items():
        folder = options.out_dir / sw.name
        if options.train:
            results[label] = train_sweep(sw, folder, options.progress)
        elif (folder / "sweep.json").exists():
            results[label] = load_for_study(folder)
    verdicts = finalize(judged(results.get("main"), results.get("wd"), options.scale))
    figs = figures(results.get("main"), results.get("wd"), options.docs_dir)
    write(verdicts, results, figs, options, time.time() - t0)
    return verdicts

