"""Reproduce the papers' claims with toymodels and write what we find, with its numbers, into docs/.

``reproduce(names, scale, seeds, out_dir, docs_dir, steps)`` (``toymodels reproduce``) runs three studies, each
training (or resuming: an existing results folder of the same sweep is never retrained) the sweeps it needs, judging
each claim and writing one document:

* the EM claims, *Engineering Monosemanticity in Toy Models* (names LR1 LR2 LR3 B K1 MECH RG1, docs/papers.md
  §4 rows 1-7) -> docs/reproduction.md: ``em_claims`` (with ``em_sweeps``, ``em_judges``, ``em_grid_judges``,
  ``em_oscillation``, ``em_mechanism``, ``em_figures``, ``em_report``);
* the superposition claims, *Toy Models of Superposition* and *Polysemanticity and Capacity* (the TMS-*/PC-*
  presets, §4 rows 8-12) -> docs/superposition.md: ``superposition`` (with ``superposition_checks``,
  ``superposition_data``, ``superposition_figures``);
* the optimizer x schedule study (OPT1) -> docs/optimizer_study.md: ``optimizer_study`` (``optimizer_figures``);
* the dictionary-learning studies (SAE-LR SAE-L0 SAE-ABS SAE-TMS: sparse autoencoders on the toy models and on
  synthetic dictionaries, scored against the true features) -> docs/dictionary_learning.md: ``dictionary``
  (``dictionary_study``, ``dictionary_figures``).

Every claim ends in one :class:`~toymodels.reproduce.verdict.Verdict` (``verdict``: agrees / partly / disagrees /
inconclusive, or answered for the OPT1 question); every document starts with the provenance of
``writer.provenance`` (command, toymodels version, git commit, date, machine). ``steps`` cuts training short; the
primary runs keep the paper's per-step bias decay, and ``em_sweeps`` says which sensitivity runs rescale it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from toymodels.config import ConfigError
from toymodels.reproduce.dictionary_learning.study import run_dictionary_study
from toymodels.reproduce.dictionary_learning.judges import DICTIONARY_STUDIES
from toymodels.reproduce.em_claims.study import CLAIMS as EM_CLAIM_REGISTRY
from toymodels.reproduce.em_claims.study import reproduce_em_claims
from toymodels.reproduce.em_claims.grid_judges import judge_bias, judge_l1, judge_neurons
from toymodels.reproduce.em_claims.judges import judge_lr, judge_negative_bias, judge_power_law
from toymodels.reproduce.em_claims.mechanism import judge_mechanism
from toymodels.reproduce.em_claims.sweeps import B_BIASES, EM_CLAIMS, claim_sweeps, parse_steps
from toymodels.reproduce.optimizer.study import judge_opt_cell, optimizer_study, run_optimizer_study
from toymodels.reproduce.superposition.study import CLAIMS as SUPERPOSITION_CLAIMS
from toymodels.reproduce.superposition.study import reproduce_superposition
from toymodels.reproduce.verdict import VERDICTS, Check, Verdict

STUDIES = ("OPT1",)


def canonical_command(names: Sequence[str], scale: str, seeds: int, out_dir: str | Path, docs_dir: str | Path,
                      steps: int | str | None, train: bool) -> str:
    """The ``toymodels reproduce`` command line equivalent to a ``reproduce`` call."""
    return (f"toymodels reproduce {' '.join(names)} --scale {scale} --seeds {seeds} --out {out_dir} --docs {docs_dir}"
            + (f" --steps {steps}" if steps else "") + ("" if train else " --no-train"))


def reproduce(
    names: Sequence[str] | None = None, scale: str = "quick", seeds: int = 3, out_dir: str | Path = "runs/reproduce",
    docs_dir: str | Path = "docs", steps: int | str | None = None, progress: bool = False,
    command: str | None = None, train: bool = True,
) -> list[Verdict]:
    """Check the claims ``names`` (default: the EM claims, rows 1-7) and write their documents.

    ``names`` may mix EM claims (``EM_CLAIMS``), ``OPT1``, TMS-*/PC-* presets and the SAE-* studies; ``steps`` (EM claims only) is
    ``N`` or ``N,CLAIM=N,...`` (``em_sweeps.parse_steps``); ``train=False`` writes the EM report from the results
    already in ``out_dir`` (unfinished claims are reported as inconclusive, not run to the end); ``command`` is the
    command named in the documents (default: the equivalent ``toymodels reproduce`` line). Returns the Verdicts:
    OPT1's first, then the superposition claims', the dictionary studies', then the EM claims' in the report's
    order. ConfigError (naming
    the claim) for an unknown name, before anything runs.
    """
    names = list(names or EM_CLAIMS)
    parsed_steps = parse_steps(steps)
    unknown = [n for n in names if n not in EM_CLAIM_REGISTRY and n not in STUDIES and n not in SUPERPOSITION_CLAIMS
               and n not in DICTIONARY_STUDIES]
    if unknown:
        raise ConfigError(f"unknown claim '{unknown[0]}'; available: {', '.join(EM_CLAIMS)}, "
                          f"{', '.join(STUDIES)}, {', '.join(SUPERPOSITION_CLAIMS)}, {', '.join(DICTIONARY_STUDIES)}")
    command = command or canonical_command(names, scale, seeds, out_dir, docs_dir, steps, train)
    out_dir, docs_dir = Path(out_dir), Path(docs_dir)
    verdicts: list[Verdict] = []
    if "OPT1" in names:
        verdicts.append(run_optimizer_study(scale, seeds, out_dir, docs_dir, progress=progress, command=command))
    sup = [n for n in names if n in SUPERPOSITION_CLAIMS]
    if sup:
        verdicts += reproduce_superposition(sup, scale=scale, seeds=seeds, out_dir=out_dir, docs_dir=docs_dir,
                                            progress=progress, command=command)
    sae = [n for n in names if n in DICTIONARY_STUDIES]
    if sae:
        verdicts += run_dictionary_study(sae, scale=scale, seeds=seeds, out_dir=out_dir, docs_dir=docs_dir,
                                         progress=progress, command=command)
    em = [n for n in names if n in EM_CLAIM_REGISTRY]
    if em:
        verdicts += reproduce_em_claims(em, scale, seeds, out_dir, docs_dir, parsed_steps, command,
                                        progress=progress, train=train)
    return verdicts


__all__ = [
    "B_BIASES", "Check", "DICTIONARY_STUDIES", "EM_CLAIMS", "STUDIES", "SUPERPOSITION_CLAIMS", "VERDICTS", "Verdict", "canonical_command",
    "claim_sweeps", "judge_bias", "judge_l1", "judge_lr", "judge_mechanism", "judge_negative_bias", "judge_neurons",
    "judge_opt_cell", "judge_power_law", "optimizer_study", "parse_steps", "reproduce", "reproduce_superposition",
    "run_dictionary_study", "run_optimizer_study",
]
