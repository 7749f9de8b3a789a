"""The verdict on one claim, and the judging helpers every study shares.

Every study of the reproduction (the EM claims, the superposition claims, the optimizer study) ends in one
:class:`Verdict` per claim: the CLI prints them, the writer puts them in the documents, tests compare them. A verdict
word is one of :data:`VERDICTS`:

* ``agrees``: the paper's claim holds here;
* ``partly``: its direction (or some of its criteria) holds but a part of it does not;
* ``disagrees``: the opposite, or no effect where one was expected (the claim's central criteria fail);
* ``inconclusive``: the runs cannot tell (nothing became monosemantic, a sweep is unfinished, ...);
* ``answered``: a study that asks a question rather than checks a claim (OPT1) found its answer (in ``numbers``);
* ``inconclusive (scale)``: the runs are at a scale too small to judge anything (``smoke``: they show that the study
  runs end to end), whatever the rules say (:func:`at_scale`; the rules' word is kept in ``by_rules``);
* ``post hoc``: the runs were trained before the rules that judge them were committed (``registration``): they
  describe the runs and test nothing until fresh seeds confirm them (the rules' word is kept in ``by_rules``).

Example:
    >>> checks = [Check("dense: 2 features", True, "2"), Check("sparse: 5 features", False, "4")]
    >>> verdict_from_checks(checks, central=["sparse: 5 features"])
    ('disagrees', 'fails: sparse: 5 features')
    >>> spearman([1, 2, 3], [0.1, 0.5, 0.4])
    0.5
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

#: the verdict of every claim judged on runs at a scale in ``TOO_SMALL`` (:func:`at_scale`)
SCALE_VERDICT = "inconclusive (scale)"
#: the verdict of a claim whose data was trained before its rules were committed (``registration.enforce``)
POST_HOC = "post hoc"
VERDICTS = ("agrees", "partly", "disagrees", "inconclusive", "answered", SCALE_VERDICT, POST_HOC)
#: scales whose runs check that a study runs, not what it finds
TOO_SMALL = ("smoke",)


@dataclass(frozen=True)
class Check:
    """One criterion of a claim: what it asks, whether it holds, and what was measured."""

    criterion: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim (or study), the same shape for every study.

    * ``claim``: its id (``LR1``, ``TMS-intro``, ``OPT1``), the name the CLI takes;
    * ``title``: the heading it gets in its document;
    * ``verdict``: one of :data:`VERDICTS`;
    * ``reason``: why, in one paragraph (the rule that decided and the numbers behind it);
    * ``numbers``: our numbers in one line (the short column of a verdict table);
    * ``paper``: what the paper says;
    * ``table``: numbers per setting, shown under the verdict;
    * ``checks``: the criteria, for claims judged criterion by criterion;
    * ``figure``: its figure, relative to the documents folder;
    * ``details``: anything else a study's document needs (how it was run, intermediate tables);
    * ``by_rules``: for a verdict of ``inconclusive (scale)`` or ``post hoc``, the word the claim's rules gave.
    """

    claim: str
    title: str
    verdict: str
    reason: str
    numbers: str = ""
    paper: str = ""
    table: pd.DataFrame | None = field(default=None, compare=False)
    checks: tuple[Check, ...] = ()
    figure: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)
    by_rules: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict of {self.claim}: must be one of {', '.join(VERDICTS)} (got {self.verdict!r})")


def verdict_from_checks(checks: Sequence[Check], central: Sequence[str]) -> tuple[str, str]:
    """(verdict, reason) of a claim judged criterion by criterion: ``agrees`` if every criterion holds,
    ``disagrees`` if every ``central`` criterion (the core of the claim) fails, otherwise ``partly``;
    ``inconclusive`` without criteria. The reason names the failed criteria."""
    if not checks:
        return "inconclusive", "no criteria could be evaluated"
    failed = [c.criterion for c in checks if not c.passed]
    if not failed:
        return "agrees", "every criterion holds"
    if central and set(central) <= set(failed):
        return "disagrees", "fails: " + "; ".join(failed)
    return "partly", "fails: " + "; ".join(failed)


def at_scale(verdict: Verdict, scale: str) -> Verdict:
    """``verdict`` as runs at ``scale`` can support it: at a scale in ``TOO_SMALL`` it reads ``inconclusive
    (scale)`` whatever its rules gave, which ``by_rules`` and the reason keep; unchanged at other scales.

    >>> v = at_scale(Verdict("LR1", "lr", "disagrees", "no rise"), "smoke")
    >>> v.verdict, v.by_rules
    ('inconclusive (scale)', 'disagrees')
    >>> v.reason
    "smoke-scale runs are too small to judge the claim; its rules alone say 'disagrees': no rise"
    """
    if scale not in TOO_SMALL or verdict.verdict == SCALE_VERDICT:
        return verdict
    return replace(verdict, verdict=SCALE_VERDICT, by_rules=verdict.verdict,
                   reason=f"{scale}-scale runs are too small to judge the claim; its rules alone say "
                          f"'{verdict.verdict}': {verdict.reason}")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (ties get their mean rank); 0 when either side is constant."""
    rx, ry = pd.Series(list(x)).rank(), pd.Series(list(y)).rank()
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    rho = float(np.corrcoef(rx, ry)[0, 1])
    return rho if rho == rho else 0.0
