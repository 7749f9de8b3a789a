"""The polytope-lens study end to end: read (or train, under their owners' rules) the three sources (``sweeps``),
measure them with the lens at their final checkpoints (``measure``), judge the three predictions (``judges``, under
``rules``), draw the figures and write docs/polytope_lens.md.

``toymodels reproduce POLY`` answers with three verdicts, ``POLY-1`` .. ``POLY-3``, one per prediction; each
reports EM, TMS and the SAE separately (a table per family) and where toy models cannot answer the paper's
question. ``confirmation.finalize`` runs on the verdicts before the document is written (post hoc data cannot
decide).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from toymodels.config import ConfigError
from toymodels.reproduce import confirmation
from toymodels.reproduce.polytope.figures import (
    plot_density,
    plot_purity,
    plot_slice,
    plot_validity,
)
from toymodels.reproduce.polytope.judges import judge_all
from toymodels.reproduce.polytope.measure import study_table
from toymodels.reproduce.polytope.rules import CLAIM, FAMILIES, MONO, RULES
from toymodels.reproduce.polytope.sweeps import load_sources, slice_source, sources
from toymodels.reproduce.polytope.text import (
    CANNOT,
    CRITERIA,
    LEAD,
    LIMITS,
    TITLE,
    scale_text,
)
from toymodels.reproduce.study import StudyOptions, canonical_command, default_docs
from toymodels.reproduce.verdict import Verdict, at_scale
from toymodels.reproduce.writer import md_table, provenance, write_document
from toymodels.results.store import Results

DOCUMENT = "polytope_lens.md"
FIGURES = "figures"


def figures(table: pd.DataFrame, results: dict[str, Results], out_dir: Path, scale: str, docs_dir: Path
            ) -> dict[str, list[Path]]:
    """Each prediction's figures (paths under ``docs_dir/figures``): purity, density, validity, and POLY-1's 2D
    slice (TMS-intro when the superposition study trained it, else the TMS source)."""
    folder = docs_dir / FIGURES
    found = {"POLY-1": [plot_purity(table, folder / "poly_purity.png"),
                        plot_slice(slice_source(out_dir, scale, results.get("TMS")), folder / "poly_slice.png")],
             "POLY-2": [plot_density(table, folder / "poly_density.png")],
             "POLY-3": [plot_validity(table, folder / "poly_validity.png", RULES.validity_bound)]}
    return {k: [p for p in v if p is not None] for k, v in found.items()}


def family_tables(verdict: Verdict) -> list[str]:
    """The verdict's table split by family (columns empty for a family dropped), one markdown table each."""
    table = verdict.table
    if table is None or table.empty:
        return ["No model of any family could be measured.", ""]
    lines = []
    for family in FAMILIES:
        rows = table[table["family"] == family].drop(columns="family").dropna(axis=1, how="all")
        mono = [c for c in (MONO[family][0],) if c in rows.columns]
        rows = rows[[*[c for c in ("setting", "seeds") if c in rows], *mono,
                     *[c for c in rows.columns if c not in ("setting", "seeds", *mono)]]]
        lines += [f"**{family}**", "", md_table(rows) if len(rows) else "not run", ""]
    return lines


def section(v: Verdict, paths: list[Path]) -> list[str]:
    """The markdown of one prediction (the paper, our criterion, the verdict, thresholds, figures, tables, limits)."""
    registration = v.details.get("registration")
    figs = [line for p in paths for line in (f"![{v.claim}]({FIGURES}/{p.name})", "")]
    return [f"## {v.claim}: {v.title}", "", f"**The paper.** {v.paper[0].upper() + v.paper[1:]}.", "",
            f"**Our criterion.** {CRITERIA[v.claim]}", "", f"**Verdict: {v.verdict}.** {v.reason}", "",
            f"**Thresholds halved / doubled:** {v.details.get('thresholds', 'not judged')}.", "",
            *([f"Registration: {registration}.", ""] if registration else []), *figs, *family_tables(v),
            f"**Where toy models cannot answer.** {CANNOT[v.claim]}", ""]


def source_lines(out_dir: Path, scale: str, seeds: int, results: dict[str, Results],
                 steps: dict[str, int] | int | None) -> list[str]:
    """Which folder each family was read from, its models, and whether it was there."""
    rows = []
    for s in sources(scale, seeds, out_dir, steps):
        res = results.get(s.family)
        rows.append({"family": s.family, "sweep": s.sweep.name, "owner": s.owner, "folder": str(s.folder),
                     "models": len(res.instances) if res is not None else 0,
                     "swept": ", ".join(f"{k} ({len(v)})" for k, v in s.sweep.grid.items())})
    return ["## The models", "", ("Each family's folder is shared with the study that owns it: read when it exists, "
            "else trained under that study's rules. The lens reads every model at its final checkpoint."), "",
            md_table(pd.DataFrame(rows)), ""]


def write_report(verdicts: list[Verdict], table: pd.DataFrame, results: dict[str, Results], options: StudyOptions
                 ) -> Path:
    """docs/polytope_lens.md (module docstring) from the finalized ``verdicts``."""
    paths = figures(table, results, options.out_dir, options.scale, options.docs_dir)
    summary = pd.DataFrame([{"prediction": v.claim, "question": v.title, "verdict": v.verdict,
                             "per family": v.numbers} for v in verdicts])
    body = [*confirmation.side_by_side(verdicts), "## Verdicts", "", md_table(summary), "",
            scale_text(options.scale, options.seeds), "",
            *source_lines(options.out_dir, options.scale, options.seeds, results, options.steps)]
    for v in verdicts:
        body += section(v, paths.get(v.claim, []))
    body += ["## What toy models can and cannot answer", "", LIMITS, ""]
    return write_document(options.docs_dir / DOCUMENT, TITLE, provenance(options.command, results.values()), LEAD,
                          body)


def run_polytope(options: StudyOptions) -> list[Verdict]:
    """Read or train the sources, judge the three predictions and write the document; the verdicts
    (``POLY-1`` .. ``POLY-3``, at smoke scale ``inconclusive (scale)``), registered as ``confirmation.finalize``
    says."""
    results = load_sources(options.scale, options.seeds, options.out_dir, options.train, options.progress,
                           options.steps)
    table = study_table(results)
    verdicts = confirmation.finalize([at_scale(v, options.scale) for v in judge_all(table)])
    write_report(verdicts, table, results, options)
    return verdicts


def run_claims(claims: Sequence[str], options: StudyOptions) -> list[Verdict]:
    """``POLY`` as ``reproduce()`` runs it (the study registry's signature): its three predictions' verdicts."""
    unknown = [c for c in claims if c != CLAIM]
    if unknown:
        raise ConfigError(f"unknown claim '{unknown[0]}'; available: {CLAIM}")
    return run_polytope(options)


def reproduce_polytope(scale: str = "quick", seeds: int = 3, out_dir: str | Path = "runs/reproduce",
                       docs_dir: str | Path | None = None, progress: bool = False, train: bool = True,
                       steps: dict[str, int] | int | None = None, command: str | None = None) -> list[Verdict]:
    """The study outside ``reproduce()`` (no pre-registration ledger): documents in ``docs_dir`` (default
    ``out_dir/docs``)."""
    out_dir = Path(out_dir)
    docs_dir = default_docs(out_dir) if docs_dir is None else Path(docs_dir)
    command = command or canonical_command([CLAIM], scale, seeds, out_dir, docs_dir, train=train)
    return run_polytope(StudyOptions(scale=scale, seeds=seeds, out_dir=out_dir, docs_dir=docs_dir, command=command,
                                     steps=steps if isinstance(steps, dict) else ({"*": steps} if steps else {}),
                                     progress=progress, train=train))
