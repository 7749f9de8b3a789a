"""The study registry: every study of ``toymodels reproduce`` is one :class:`Study` in :data:`STUDIES`.

A study is one sub-package of ``toymodels.reproduce`` whose ``__init__.py`` registers its Study (``register``):
its name, the document it writes into the docs folder, the claim names it answers (in its document's order), its
run function and its rank (where its verdicts stand in ``reproduce()``'s answer). ``reproduce()`` and the CLI's
``toymodels reproduce`` find the studies here and nowhere else, so adding a study is one folder plus its
registration.

Example (a study defined outside the package, as the tests do):
    >>> from toymodels.reproduce.study import STUDIES, Study, register
    >>> toy = register(Study("toy", "toy.md", ("TOY1",), lambda claims, options: [], rank=99))
    >>> [(s.name, claims) for s, claims in studies_of(["TOY1", "OPT1"])]
    [('optimizer', ['OPT1']), ('toy', ['TOY1'])]
    >>> STUDIES.unregister("toy")
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from toymodels.config import SweepConfig
from toymodels.config.registry import Registry
from toymodels.results import store
from toymodels.reproduce.confirmation import before_training, note
from toymodels.reproduce.registration import RuleSet
from toymodels.reproduce.verdict import Verdict
from toymodels.running.plan import estimate_seconds, plan
from toymodels.running.sweep import run_sweep

if TYPE_CHECKING:
    from toymodels.results.store import Results

#: where the documents go when no docs folder is given: a folder of the results root, never the repository's docs/
DOCS_SUBFOLDER = "docs"


@dataclass(frozen=True)
class StudyOptions:
    """What ``reproduce()`` was asked, the same for every study: scale, seeds per setting, the folder of the results
    folders, the docs folder (``default_docs(out_dir)`` unless one was given), the command named in the documents,
    the parsed ``--steps`` ({claim or "*": steps}, ``em_claims.sweeps.parse_steps``), progress bars, and ``train``
    (False: only reload what ``out_dir`` holds)."""

    scale: str
    seeds: int
    out_dir: Path
    docs_dir: Path
    command: str
    steps: dict[str, int]
    progress: bool = False
    train: bool = True


#: a study's run function: train (or reload) what the claims need, judge them, write the document; one Verdict per
#: claim (a study with one question answers it with one Verdict)
RunStudy = Callable[[Sequence[str], StudyOptions], "list[Verdict]"]


@dataclass(frozen=True)
class Study:
    """One study: ``name`` (its sub-package), ``document`` (the file it writes under the docs folder), ``claims``
    (the names it answers, in its document's order), ``run`` (called with the claims asked of it, in the order
    asked, and the options), ``rank`` (lower ranks' verdicts come first in ``reproduce()``'s answer),
    ``in_all`` (whether ``toymodels reproduce --all`` runs it) and ``rules`` (the modules that hold its rules,
    recorded before its runs train: ``registration``; None: its verdicts are never pre-registered)."""

    name: str
    document: str
    claims: tuple[str, ...]
    run: RunStudy
    rank: int
    in_all: bool = True
    rules: RuleSet | None = None


#: the studies by name
STUDIES: Registry[Study] = Registry("study")


def register(study: Study) -> Study:
    """Add ``study`` under its name (a second study of the same name is refused); returns it."""
    return STUDIES.register(study.name, study)


def ranked() -> list[Study]:
    """Every study, lowest rank first (registration order among equal ranks)."""
    return sorted(STUDIES.values(), key=lambda s: s.rank)


def claim_names() -> list[str]:
    """Every claim name of every study, in ``ranked`` order."""
    return [c for s in ranked() for c in s.claims]


def studies_of(names: Sequence[str]) -> list[tuple[Study, list[str]]]:
    """The studies that answer some of ``names``, lowest rank first, each with its names in the order given."""
    chosen = [(s, [n for n in names if n in s.claims]) for s in ranked()]
    return [(s, claims) for s, claims in chosen if claims]


def canonical_command(names: Sequence[str], scale: str, seeds: int, out_dir: str | Path, docs_dir: str | Path,
                      steps: int | str | None = None, train: bool = True, confirm: int = 0) -> str:
    """The ``toymodels reproduce`` command line equivalent to a ``reproduce`` call."""
    return (f"toymodels reproduce {' '.join(names)} --scale {scale} --seeds {seeds} --out {out_dir} --docs {docs_dir}"
            + (f" --steps {steps}" if steps else "") + ("" if train else " --no-train")
            + (f" --confirm {confirm}" if confirm else ""))


def default_docs(out_dir: str | Path) -> Path:
    """The documents' folder when none is given: ``out_dir/docs``, beside the results folders, so that a reproduction
    run from a clone never rewrites the shipped documents (give ``docs`` explicitly to update them)."""
    return Path(out_dir) / DOCS_SUBFOLDER


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def train_sweep(sweep: SweepConfig, folder: Path, progress: bool = True) -> "Results":
    """Train (or resume, or only reload when finished) ``sweep`` into ``folder`` with one line on stderr before it
    (the instances left and their estimated time) and one after (the time it took): a reproduction runs for hours,
    and says where it is. ``progress``: the training's own progress bars too.

    Inside ``reproduce`` (a ``confirmation.study_run``) the sweep starts at the run's first seed, the rules in force
    are recorded in a new folder before it trains, and the folder joins the run's ledger (``confirmation``)."""
    sweep = before_training(sweep, folder)
    try:
        return _train(sweep, folder, progress)
    finally:
        note(folder)


def load_for_study(folder: Path) -> "Results":
    """``store.load(folder)`` for a study: the folder joins the current study run's ledger (its registration)."""
    note(folder)
    return store.load(folder)


def _train(sweep: SweepConfig, folder: Path, progress: bool) -> "Results":
    groups = plan(sweep)
    done = set(store.done_groups(folder)) if (folder / "sweep.json").exists() else set()
    left = sum(len(insts) for gid, insts in groups.items() if gid not in done)
    if left == 0:
        print(f"reproduce: {sweep.name}: finished earlier, reloaded from {folder}", file=sys.stderr, flush=True)
        return run_sweep(sweep, folder, resume=True, progress=False)
    estimate = estimate_seconds(sweep) * left / sum(len(insts) for insts in groups.values())
    print(f"reproduce: {sweep.name}: training {left} of {sweep.size()} instances into {folder}, about "
          f"{_minutes(estimate)} on a 2-core CPU", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    results = run_sweep(sweep, folder, resume=True, progress=progress)
    print(f"reproduce: {sweep.name}: done in {_minutes(time.perf_counter() - t0)}", file=sys.stderr, flush=True)
    return results
