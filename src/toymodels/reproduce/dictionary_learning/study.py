"""The dictionary-learning study end to end: train (or reload) each question's sweeps, measure them (``measure``),
judge them (``judges``, under ``rules``), draw the figures and write docs/dictionary_learning.md with every question
found under ``out_dir``.

One command per question (``toymodels reproduce SAE-L0 --scale quick``); each run rewrites the whole document from
all the questions' results folders, so running the four commands in any order gives the full report. Inside
``reproduce`` each question is registered on its own (a nested ``confirmation.study_run`` with the study's rules
and seeds): a question whose folders are post hoc does not make the others post hoc.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from toymodels.config import ConfigError
from toymodels.families.sae.figures import best_instance, decoder_truth
from toymodels.reproduce import confirmation
from toymodels.reproduce.dictionary_learning import measure
from toymodels.reproduce.dictionary_learning.figures import (
    plot_absorption,
    plot_cosines,
    plot_lr,
    plot_mcc_l0,
    plot_tms,
)
from toymodels.reproduce.dictionary_learning.judges import (
    DICTIONARY_LEARNING_CLAIMS,
    absorption_points,
    judge,
)
from toymodels.reproduce.dictionary_learning.rules import RULES, coverage_column
from toymodels.reproduce.dictionary_learning.sweeps import run_study
from toymodels.reproduce.dictionary_learning.text import (
    LEAD,
    NOTES,
    TITLE,
    methods,
    scale_text,
)
from toymodels.reproduce.study import StudyOptions, canonical_command, default_docs
from toymodels.reproduce.verdict import Verdict, at_scale
from toymodels.reproduce.writer import md_table, provenance, write_document
from toymodels.results.store import Results

DOCUMENT = "dictionary_learning.md"
FIGURES = "figures"
#: the measured table of each question
TABLES = {"SAE-LR": measure.lr_table, "SAE-L0": measure.l0_table, "SAE-ABS": measure.absorption_table,
          "SAE-TMS": measure.tms_table}
#: columns of the measured table a section shows (SAE-LR, SAE-L0 and SAE-ABS show their judge's summary instead)
TMS_COLUMNS = ["eps", "source_seed", "l1", "represented", coverage_column("cover_rep", RULES.selectivity),
               "recovered_rep", "features_recovered", "mcc", "l0", "true_l0", "explained_variance"]


@contextmanager
def question_run() -> Iterator[None]:
    """Inside ``reproduce``: one question's own study run (the study's rules, seeds and exploratory verdicts, its
    own ledger), so that ``confirmation.finalize`` judges its registration by its folders alone."""
    outer = confirmation.current()
    if outer is None:
        yield
        return
    with confirmation.study_run(confirmation.StudyRun(outer.rules, outer.first_seed, outer.seeds,
                                                      outer.exploratory)):
        yield


def lr_panels(results: dict[str, Results]) -> list:
    """Heatmap panels of SAE-LR: the best SAE on h (by MCC) and the best on x."""
    panels = []
    for key, res in results.items():
        if key.startswith("source:") or key[-2:] not in ("-h", "-x"):
            continue
        rid = best_instance(res)
        if rid:
            row = res.row(rid)
            panels.append((*decoder_truth(res, rid), (f"SAE on {row['source_layer']} of {row['source_run']}: "
                                                      f"MCC {row['mcc']:.3f}")))
    return panels[:2]


def l0_panels(results: dict[str, Results], table: pd.DataFrame) -> list:
    """Heatmap panels of SAE-L0: the best SAE of width N of each architecture."""
    panels = []
    N = int(table["N"].iloc[0]) if len(table) else 0
    for arch, g in table[table["sae_width"] == N].groupby("sae_arch", sort=False):
        row = g.sort_values("mcc", ascending=False).iloc[0]
        panels.append((*decoder_truth(results[row["sweep"]], row["run_id"]),
                       f"{arch}, width {N}, L0 {row['l0']:.1f}: MCC {row['mcc']:.3f}"))
    return panels


def figures_of(name: str, table: pd.DataFrame, results: dict[str, Results], figures_dir: Path) -> list[Path | None]:
    """The figures of question ``name`` from its measured table (none without one)."""
    if table is None or table.empty:
        return []
    if name == "SAE-LR":
        return [plot_lr(table, figures_dir / "sae_lr.png", RULES.selectivity),
                plot_cosines(lr_panels(results), figures_dir / "sae_lr_cosines.png")]
    if name == "SAE-L0":
        return [plot_mcc_l0(table, figures_dir / "sae_mcc_l0.png"),
                plot_cosines(l0_panels(results, table), figures_dir / "sae_l0_cosines.png")]
    if name == "SAE-ABS":
        points = absorption_points(table, RULES) if len(table) and "gap" in table else None
        return [plot_absorption(points, figures_dir / "sae_absorption.png")]
    return [plot_tms(table, figures_dir / "sae_tms.png", coverage_column("cover_rep", RULES.selectivity))]


def study_section(name: str, verdict: Verdict, table: pd.DataFrame, results: dict[str, Results],
                  figures_dir: Path) -> list[str]:
    """The markdown of one question: what it asks, its verdict with the thresholds line and registration, its
    figures, its table."""
    paths = figures_of(name, table, results, figures_dir)
    fig_lines = [line for p in paths if p is not None for line in (f"![{name}]({FIGURES}/{p.name})", "")]
    shown = verdict.table if name != "SAE-TMS" else (
        table[[c for c in TMS_COLUMNS if c in table.columns]] if len(table) else None)
    registration = verdict.details.get("registration")
    return [f"## {name}: {verdict.title}", "", NOTES[name], "", f"**Verdict: {verdict.verdict}.** {verdict.reason}",
            "", *([f"Registration: {registration}.", ""] if registration else []), *fig_lines,
            md_table(shown if isinstance(shown, pd.DataFrame) else None), ""]


def registration_lines(verdicts: Sequence[Verdict]) -> list[str]:
    """``confirmation.side_by_side``'s lines, its registration line naming each question's own (the questions are
    registered one by one, ``question_run``)."""
    lines = confirmation.side_by_side(verdicts)
    if lines and lines[0].startswith("**Pre-registration.**"):
        lines[0] = "**Pre-registration.** " + "; ".join(
            f"{v.claim}: {v.details.get('registration', 'not registered')}" for v in verdicts) + "."
    return lines


def write_report(found: dict[str, tuple[Verdict, pd.DataFrame, dict[str, Results]]], docs_dir: Path, command: str,
                 scale: str, seeds: int) -> Path:
    """docs/dictionary_learning.md from the questions ``found`` (name -> (verdict, table, results)); the others
    'not run yet'."""
    figures_dir = docs_dir / FIGURES
    summary = pd.DataFrame([{"study": n, "question": found[n][0].title if n in found else "",
                             "verdict": found[n][0].verdict if n in found else "not run yet",
                             "numbers": found[n][0].numbers if n in found else ""}
                            for n in DICTIONARY_LEARNING_CLAIMS])
    verdicts = [found[n][0] for n in DICTIONARY_LEARNING_CLAIMS if n in found]
    body = [*registration_lines(verdicts), "## Verdicts", "", md_table(summary), "", scale_text(scale, seeds), "",
            methods()]
    for name in DICTIONARY_LEARNING_CLAIMS:
        if name in found:
            verdict, table, results = found[name]
            body += study_section(name, verdict, table, results, figures_dir)
    trained = [r for _, _, results in found.values() for r in results.values()]
    return write_document(docs_dir / DOCUMENT, TITLE, provenance(command, trained), LEAD, body)


def run_dictionary_learning(names: Sequence[str], scale: str = "quick", seeds: int = 3,
                            out_dir: str | Path = "runs/dictionary", docs_dir: str | Path | None = None,
                            progress: bool = True, command: str | None = None,
                            steps: dict[str, int] | int | None = None, train: bool = True) -> list[Verdict]:
    """Train (or resume; ``train=False``: only reload) the questions ``names`` on ``seeds`` seeds, reload every
    other question already under ``out_dir``, and write ``docs_dir/dictionary_learning.md`` (default
    ``out_dir/docs``); returns the verdicts of ``names`` (at smoke scale ``inconclusive (scale)``), registered and
    confirmed as ``confirmation.finalize`` says. ConfigError for an unknown name, first."""
    unknown = [n for n in names if n not in DICTIONARY_LEARNING_CLAIMS]
    if unknown:
        raise ConfigError(f"unknown study '{unknown[0]}'; available: {', '.join(DICTIONARY_LEARNING_CLAIMS)}")
    out_dir = Path(out_dir)
    docs_dir = default_docs(out_dir) if docs_dir is None else Path(docs_dir)
    command = command or canonical_command(names, scale, seeds, out_dir, docs_dir, train=train)
    found = {}
    for name in DICTIONARY_LEARNING_CLAIMS:
        with question_run():
            results = run_study(name, scale, seeds, out_dir, train=train and name in names, progress=progress,
                                steps=steps)
            trained = any(not k.startswith("source:") for k in results)
            if not trained and name not in names:  # never run (a shared source alone is not this question)
                continue
            table = TABLES[name](results) if trained else pd.DataFrame()
            verdict = confirmation.finalize([at_scale(judge(name, table), scale)])[0]
        found[name] = (verdict, table, results)
    write_report(found, docs_dir, command, scale, seeds)
    return [found[n][0] for n in names if n in found]


def run_claims(claims: Sequence[str], options: StudyOptions) -> list[Verdict]:
    """The dictionary-learning questions ``claims`` as ``reproduce()`` runs them (the study registry's signature)."""
    return run_dictionary_learning(claims, scale=options.scale, seeds=options.seeds, out_dir=options.out_dir,
                                   docs_dir=options.docs_dir, progress=options.progress, command=options.command,
                                   steps=options.steps, train=options.train)
