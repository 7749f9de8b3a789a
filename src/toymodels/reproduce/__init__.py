"""Reproduce the papers' claims with toymodels and write what we find, with its numbers, into documents.

``reproduce(names, scale, seeds, out_dir, docs_dir, steps)`` (``toymodels reproduce``) runs the studies that
answer ``names``, each training (or resuming: an existing results folder of the same sweep is never retrained) the
sweeps it needs, judging each claim and writing one document into ``docs_dir``: by default ``out_dir/docs``
(``study.default_docs``), so the shipped documents in the repository's docs/ change only when that folder is given.
Each sweep says on stderr what it trains, its estimated time and the time it took (``study.train_sweep``). A study
is one sub-package that registers its :class:`~toymodels.reproduce.study.Study` in ``study.STUDIES`` (its name,
document, claim names, run function and rank); every sub-package is imported here, so adding a study is one folder
plus its registration. The studies now (their documents: docs/ in the repository, the last paper-scale runs):

* ``optimizer``: the optimizer x schedule study (OPT1) -> docs/optimizer_study.md;
* ``superposition``: the claims of *Toy Models of Superposition* and *Polysemanticity and Capacity* (the TMS-*/PC-*
  presets, docs/papers.md §4 rows 8-12) -> docs/superposition.md;
* ``dictionary_learning``: sparse autoencoders on the toy models and on synthetic dictionaries, scored against the
  true features (SAE-LR SAE-L0 SAE-ABS SAE-TMS) -> docs/dictionary_learning.md;
* ``em_claims``: the claims of *Engineering Monosemanticity in Toy Models* (LR1 LR2 LR3 B K1 MECH RG1,
  docs/papers.md §4 rows 1-7) -> docs/reproduction.md;
* ``polytope``: the three predictions of the polytope lens tested where the features are known (POLY) ->
  docs/polytope_lens.md;
* ``grokking``: the progress measures of grokking (GROK, named on its own: not in ``--all``) -> docs/grokking.md.

Every claim ends in one :class:`~toymodels.reproduce.verdict.Verdict` (``verdict``: agrees / partly / disagrees /
inconclusive, or answered for a question; at smoke scale always ``inconclusive (scale)``, ``verdict.at_scale``);
every document starts with the provenance of ``writer.provenance``
(command, toymodels version, git commit, date, machine). ``steps`` cuts training short; the EM claims' primary runs
keep the paper's per-step bias decay, and ``em_claims.sweeps`` says which sensitivity runs rescale it.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from toymodels.config import ConfigError
from toymodels.reproduce.confirmation import (
    FIRST_FRESH_SEED,
    StudyRun,
    check_seeds,
    confirmatory_paths,
    exploratory_paths,
    study_run,
)
from toymodels.reproduce.dictionary_learning.judges import DICTIONARY_LEARNING_CLAIMS
from toymodels.reproduce.dictionary_learning.study import run_dictionary_learning
from toymodels.reproduce.em_claims.grid_judges import judge_bias, judge_l1, judge_neurons
from toymodels.reproduce.em_claims.judges import judge_lr, judge_negative_bias, judge_power_law
from toymodels.reproduce.em_claims.mechanism import judge_mechanism
from toymodels.reproduce.em_claims.sweeps import B_BIASES, EM_CLAIMS, claim_sweeps, parse_steps
from toymodels.reproduce.optimizer.study import judge_opt_cell, optimizer_study, run_optimizer_study
from toymodels.reproduce.study import (
    STUDIES,
    Study,
    StudyOptions,
    canonical_command,
    claim_names,
    default_docs,
    ranked,
    register,
    studies_of,
)
from toymodels.reproduce.superposition.study import CLAIMS as SUPERPOSITION_CLAIMS
from toymodels.reproduce.superposition.study import reproduce_superposition
from toymodels.reproduce.verdict import VERDICTS, Check, Verdict


def import_studies() -> None:
    """Import every sub-package of ``toymodels.reproduce``: each is a study and registers itself in ``STUDIES``."""
    for found in pkgutil.iter_modules(__path__):
        if found.ispkg:
            importlib.import_module(f"{__name__}.{found.name}")


import_studies()


def reproduce(
    names: Sequence[str] | None = None, scale: str = "quick", seeds: int = 3, out_dir: str | Path = "runs/reproduce",
    docs_dir: str | Path | None = None, steps: int | str | None = None, progress: bool = True,
    command: str | None = None, train: bool = True, confirm: int = 0,
) -> list[Verdict]:
    """Check the claims ``names`` (default: the EM claims, rows 1-7) and write their documents.

    ``names`` may mix the claim names of every registered study (``claim_names()``: ``OPT1``, the TMS-*/PC-*
    presets, the SAE-* studies, the EM claims ``EM_CLAIMS``); ``steps`` (EM claims only) is ``N`` or
    ``N,CLAIM=N,...`` (``em_claims.sweeps.parse_steps``); ``train=False`` writes the EM report from the results
    already in ``out_dir`` (unfinished claims are reported as inconclusive, not run to the end); ``command`` is the
    command named in the documents (default: the equivalent ``toymodels reproduce`` line); ``docs_dir``: where the
    documents and their figures go (default ``out_dir/docs``: the repository's docs/ only when given);
    ``progress``: the training's progress bars (a line per sweep is always said). Each study runs once, with
    its names in the order given, and the Verdicts come study by study in rank order: OPT1's first, then the
    superposition claims', the dictionary-learning studies', then the EM claims' in the report's order. ConfigError
    (naming the claim) for an unknown name, before anything runs.

    Every study runs inside a ``confirmation.study_run``: a new results folder records the study's rules before it
    trains, and a verdict whose data was trained under other (or uncommitted) rules is ``post hoc``
    (``registration``). ``confirm`` > 0: each study runs first on the exploratory seeds (documents in
    ``docs_dir/exploratory``), then on ``confirm`` fresh seeds from ``confirmation.FIRST_FRESH_SEED`` on (folders in
    ``out_dir/confirm``, documents in ``docs_dir``), whose verdicts decide and are returned.
    """
    names = list(names or EM_CLAIMS)
    parsed_steps = parse_steps(steps)
    available = claim_names()
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(f"unknown claim '{unknown[0]}'; available: {', '.join(available)}")
    docs_dir = default_docs(out_dir) if docs_dir is None else Path(docs_dir)
    command = command or canonical_command(names, scale, seeds, out_dir, docs_dir, steps, train, confirm)
    check_seeds(seeds, confirm)
    options = StudyOptions(scale=scale, seeds=seeds, out_dir=Path(out_dir), docs_dir=Path(docs_dir), command=command,
                           steps=parsed_steps, progress=progress, train=train)
    verdicts: list[Verdict] = []
    for study, claims in studies_of(names):
        if not confirm:
            with study_run(StudyRun(study.rules, 0, seeds)):
                verdicts += study.run(claims, options)
            continue
        out, docs = exploratory_paths(options.out_dir, options.docs_dir)
        with study_run(StudyRun(study.rules, 0, seeds)):
            exploratory = study.run(claims, replace(options, out_dir=out, docs_dir=docs))
        out, docs = confirmatory_paths(options.out_dir, options.docs_dir)
        with study_run(StudyRun(study.rules, FIRST_FRESH_SEED, confirm, tuple(exploratory))):
            verdicts += study.run(claims, replace(options, out_dir=out, docs_dir=docs, seeds=confirm))
    return verdicts


__all__ = [
    "B_BIASES", "Check", "DICTIONARY_LEARNING_CLAIMS", "EM_CLAIMS", "STUDIES", "SUPERPOSITION_CLAIMS", "Study",
    "StudyOptions", "VERDICTS", "Verdict", "canonical_command", "claim_names", "claim_sweeps", "default_docs",
    "import_studies",
    "judge_bias", "judge_l1", "judge_lr", "judge_mechanism", "judge_negative_bias", "judge_neurons", "judge_opt_cell",
    "judge_power_law", "optimizer_study", "parse_steps", "ranked", "register", "reproduce", "reproduce_superposition",
    "run_dictionary_learning", "run_optimizer_study", "studies_of",
]
