"""Fresh-seed confirmation: the exploratory runs found a result, the confirmatory runs on new seeds decide it.

``toymodels reproduce ... --seeds 3 --confirm 5`` runs each study twice:

1. **exploratory**, on seeds ``0 .. seeds-1`` (the seeds every earlier run of the project used), into ``OUT`` with
   its document in ``DOCS/exploratory/``;
2. **confirmatory**, on ``confirm`` seeds from :data:`FIRST_FRESH_SEED` on (disjoint from every exploratory seed),
   into ``OUT/confirm/`` with its document in ``DOCS``: its verdicts decide, and each carries the exploratory
   verdict of the same claim in ``details["exploratory"]`` so the document shows the two side by side.

Both runs happen inside a :func:`study_run` context, which ``study.train_sweep`` reads: it moves every sweep to the
run's first seed (:func:`with_first_seed`), writes the pre-registration record before a folder's first training
and notes every folder in the run's ledger. A study calls :func:`finalize` on its verdicts before it writes its
document: post hoc data cannot decide (``registration.enforce``), and the exploratory verdicts are attached.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

from toymodels.config import ConfigError, SweepConfig
from toymodels.reproduce.registration import Ledger, RuleSet, enforce, record
from toymodels.reproduce.verdict import Verdict

#: the first seed of a confirmation run: every exploratory seed is below it
FIRST_FRESH_SEED = 1000
CONFIRM_SUBFOLDER = "confirm"
EXPLORATORY_SUBFOLDER = "exploratory"


@dataclass
class StudyRun:
    """One run of one study: its rules and ledger, the first seed of its sweeps, and (for a confirmatory run) the
    exploratory verdicts to show beside its own."""

    rules: RuleSet | None
    first_seed: int = 0
    seeds: int = 0
    exploratory: tuple[Verdict, ...] = ()
    ledger: Ledger = field(default_factory=Ledger)

    @property
    def confirmatory(self) -> bool:
        return self.first_seed >= FIRST_FRESH_SEED

    def seed_range(self) -> str:
        return f"seeds {self.first_seed}-{self.first_seed + self.seeds - 1}" if self.seeds > 1 else \
            f"seed {self.first_seed}"


_CURRENT: contextvars.ContextVar[StudyRun | None] = contextvars.ContextVar("study_run", default=None)


@contextmanager
def study_run(run: StudyRun) -> Iterator[StudyRun]:
    """Make ``run`` the study run that ``train_sweep`` and :func:`finalize` see, for the ``with`` block."""
    run.ledger.rules = run.rules
    token = _CURRENT.set(run)
    try:
        yield run
    finally:
        _CURRENT.reset(token)


def current() -> StudyRun | None:
    """The study run in force (None outside ``reproduce``: a study function called directly, e.g. by a test)."""
    return _CURRENT.get()


def check_seeds(seeds: int, confirm: int) -> None:
    """Refuse exploratory seeds that would reach the fresh seeds, in one line naming the field."""
    if confirm < 0:
        raise ConfigError(f"field 'confirm': must be >= 0 fresh seeds (got {confirm})")
    if confirm and seeds > FIRST_FRESH_SEED:
        raise ConfigError(f"field 'seeds': at most {FIRST_FRESH_SEED} exploratory seeds with --confirm (the fresh "
                          f"seeds start at {FIRST_FRESH_SEED}); got {seeds}")


def with_first_seed(sweep: SweepConfig, first_seed: int) -> SweepConfig:
    """``sweep`` with its seeds moved to start at ``first_seed`` (a grid over ``seed`` shifted as a whole)."""
    if first_seed == 0:
        return sweep
    if "seed" in sweep.grid:
        return SweepConfig(name=sweep.name, base=sweep.base, seeds=sweep.seeds,
                           grid={**sweep.grid, "seed": [first_seed + int(s) for s in sweep.grid["seed"]]})
    return SweepConfig(name=sweep.name, base=sweep.base.replace(seed=sweep.base.run.seed + first_seed),
                       grid=sweep.grid, seeds=sweep.seeds)


def before_training(sweep: SweepConfig, folder: Path) -> SweepConfig:
    """What ``train_sweep`` trains into ``folder`` inside the current study run: the sweep at the run's first seed;
    the pre-registration record is written when the folder is new, and the folder joins the ledger."""
    run = current()
    if run is None:
        return sweep
    if run.rules is not None:
        record(folder, run.rules)
    return with_first_seed(sweep, run.first_seed)


def note(folder: Path) -> None:
    """Add a folder the current study run read (trained or only loaded) to its ledger."""
    run = current()
    if run is not None:
        run.ledger.add(Path(folder))


def finalize(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """The verdicts a study's document shows: post hoc data cannot decide (``registration.enforce`` over every
    folder the run read), each verdict names the run's seeds and registration, and a confirmatory verdict carries
    the exploratory verdict of its claim in ``details["exploratory"]``."""
    run = current()
    if run is None:
        return list(verdicts)
    out = enforce(verdicts, run.ledger.entries.values())
    earlier = {v.claim: v for v in run.exploratory}
    role = "confirmatory" if run.confirmatory else "exploratory"
    return [replace(v, details={**v.details, "role": role, "seeds": run.seed_range(),
                                "registration": run.ledger.summary(),
                                **({"exploratory": earlier[v.claim]} if v.claim in earlier else {})})
            for v in out]


def exploratory_paths(out_dir: Path, docs_dir: Path) -> tuple[Path, Path]:
    """(results folder root, documents folder) of the exploratory run when a confirmation follows."""
    return Path(out_dir), Path(docs_dir) / EXPLORATORY_SUBFOLDER


def confirmatory_paths(out_dir: Path, docs_dir: Path) -> tuple[Path, Path]:
    """(results folder root, documents folder) of the confirmatory run: its own folders, the main documents."""
    return Path(out_dir) / CONFIRM_SUBFOLDER, Path(docs_dir)


def side_by_side(verdicts: Sequence[Verdict]) -> list[str]:
    """Markdown lines for a document: how its verdicts were registered and, for a confirmatory run, each claim's
    exploratory verdict beside the confirmatory one that decides."""
    if not verdicts or "role" not in verdicts[0].details:
        return []
    first = verdicts[0].details
    lines = [f"**Pre-registration.** {first['registration']}.", ""]
    if first["role"] != "confirmatory":
        return lines + [f"These are exploratory runs ({first['seeds']}): the rules were written after looking at "
                        "runs on these seeds, so they describe, they do not confirm.", ""]
    lines += [f"**Confirmation on fresh seeds.** The verdicts below come from runs on {first['seeds']}, disjoint "
              f"from every seed the rules were developed on; the exploratory verdicts (earlier seeds; their document is in "
              f"`{EXPLORATORY_SUBFOLDER}/`) are shown beside them and decide nothing.", "",
              "| claim | exploratory | confirmatory (decides) |", "|---|---|---|"]
    for v in verdicts:
        earlier = v.details.get("exploratory")
        was = f"{earlier.verdict} ({earlier.details.get('seeds', '')})" if earlier is not None else "not run"
        lines.append(f"| {v.claim} | {was} | **{v.verdict}** ({v.details.get('seeds', '')}) |")
    return lines + [""]
