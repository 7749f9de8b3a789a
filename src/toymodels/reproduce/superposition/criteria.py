"""The criteria of the superposition claims: one :class:`Criterion` (kind, state, what was measured), how a 95%
interval over seeds is read against a mark (:func:`at_least`, :func:`at_most`, :func:`within`), and the
:class:`~toymodels.reproduce.verdict.Verdict` of a claim from its criteria (:func:`claim_verdict`) by the rule of
``rules.verdict_word``, with its threshold sensitivity.

Example:
    >>> from toymodels.reproduce.intervals import mean_interval
    >>> at_least(mean_interval([4, 4, 4]), 3), at_least(mean_interval([1, 4, 7]), 3)
    ('holds', 'cannot tell')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from toymodels.reproduce.intervals import Interval, threshold_sensitivity
from toymodels.reproduce.superposition.rules import (
    DERIVED,
    FAILS,
    HOLDS,
    UNCLEAR,
    Thresholds,
    verdict_word,
)
from toymodels.reproduce.verdict import Check, Verdict


@dataclass(frozen=True)
class Criterion:
    """One criterion of a claim: ``name``, ``kind`` (rules.CENTRAL / PAPER / DERIVED), ``state`` (rules.HOLDS /
    FAILS / UNCLEAR), ``detail`` (what was measured) and ``why`` (why it cannot tell, when it cannot)."""

    name: str
    kind: str
    state: str
    detail: str
    why: str = ""


def criterion(name: str, kind: str, passed: Any, detail: str) -> Criterion:
    """A criterion decided without an interval (the lowest-loss restart): holds or fails."""
    return Criterion(name, kind, HOLDS if bool(passed) else FAILS, detail)


def _defined(iv: Interval) -> bool:
    return math.isfinite(iv.low) and math.isfinite(iv.high)


def at_least(iv: Interval, floor: float) -> str:
    """holds when the whole interval is at or above ``floor``, fails when it is wholly below, else cannot tell
    (also when the interval is undefined: a single seed)."""
    if not _defined(iv):
        return UNCLEAR
    return HOLDS if iv.low >= floor else FAILS if iv.high < floor else UNCLEAR


def at_most(iv: Interval, ceiling: float) -> str:
    """holds when the whole interval is at or below ``ceiling``, fails when it is wholly above, else cannot tell."""
    if not _defined(iv):
        return UNCLEAR
    return HOLDS if iv.high <= ceiling else FAILS if iv.low > ceiling else UNCLEAR


def within(iv: Interval, low: float, high: float) -> str:
    """holds when the whole interval lies in [low, high], fails when it lies wholly outside, else cannot tell."""
    if not _defined(iv):
        return UNCLEAR
    if low <= iv.low and iv.high <= high:
        return HOLDS
    return FAILS if iv.high < low or iv.low > high else UNCLEAR


def excuse(c: Criterion, why: str) -> Criterion:
    """``c`` as *cannot tell* with reason ``why`` when it failed (a failure the runs cannot support); unchanged
    otherwise."""
    return Criterion(c.name, c.kind, UNCLEAR, c.detail, why) if c.state == FAILS else c


def _reason(criteria: list[Criterion]) -> str:
    paper = [c for c in criteria if c.kind != DERIVED]
    derived = [c for c in criteria if c.kind == DERIVED]
    failed = [c.name for c in paper if c.state == FAILS]
    unclear = [f"{c.name}" + (f" ({c.why})" if c.why else "") for c in paper if c.state == UNCLEAR]
    parts = []
    if failed:
        parts.append("fails: " + "; ".join(failed))
    if unclear:
        parts.append("cannot tell: " + "; ".join(unclear))
    if not parts:
        parts.append("every criterion of the paper holds")
    if derived:
        parts.append("derived marks (reported, never deciding): " + "; ".join(
            f"{c.name}: {c.state}" + (f" ({c.why})" if c.why else "") for c in derived))
    return "; ".join(parts)


def claim_verdict(claim: str, statement: tuple[str, str], judge: Callable[[Thresholds], list[Criterion]],
                  thresholds: Thresholds, ours: str, table: pd.DataFrame | None = None, **details: Any) -> Verdict:
    """The Verdict of ``claim`` from ``judge(thresholds)`` (its criteria) by ``rules.verdict_word``; the reason
    names what fails and cannot tell, the derived marks, and how the word moves with every threshold halved or
    doubled (``judge`` is called again with ``thresholds.scaled(0.5)`` and ``scaled(2)``)."""
    criteria = judge(thresholds)
    word = verdict_word([(c.kind, c.state) for c in criteria])
    sensitivity = threshold_sensitivity(
        lambda f: verdict_word([(c.kind, c.state) for c in judge(thresholds.scaled(f))]), word)
    title, paper = statement
    return Verdict(
        claim=claim, title=title, verdict=word, reason=f"{_reason(criteria)}; {sensitivity}", numbers=ours,
        paper=paper, table=table, checks=tuple(Check(c.name, c.state == HOLDS, c.detail) for c in criteria),
        details={**details, "criteria": {c.name: (c.kind, c.state) for c in criteria},
                 "undecided": tuple(c.name for c in criteria if c.state == UNCLEAR),
                 "threshold_sensitivity": sensitivity})
