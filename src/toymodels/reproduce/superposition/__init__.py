"""The superposition claims of *Toy Models of Superposition* and *Polysemanticity and Capacity* (docs/papers.md §4
rows 8-12), checked with the TMS and quadratic model families: the TMS-* and PC-kurtosis presets are trained (seeds
are restarts where the papers keep the lowest-loss restart, replicates with 95% intervals where the claim is judged
across seeds) and each claim is judged criterion by criterion.

Modules: ``rules`` (every threshold, criterion kind, seed count and the verdict rule: the study's pre-registered
rules), ``criteria`` (a criterion's state from an interval, a claim's Verdict), ``checks`` (the claims judged on the
lowest-loss restart: TMS-intro, TMS-phase, PC-kurtosis), ``seed_checks`` (the claims judged across seeds:
TMS-basic, TMS-dim), ``statements`` (what each claim says), ``study`` (trains or reloads each preset, judges it,
writes the document), ``data`` (the instances table with final weights, and the geometry the claims are judged
by), ``figures`` (one figure per claim).

Document: docs/superposition.md. Claim names: ``TMS-intro``, ``TMS-basic``, ``TMS-dim``, ``TMS-phase``,
``PC-kurtosis``.
"""

from __future__ import annotations

from toymodels.reproduce.registration import RuleSet
from toymodels.reproduce.study import Study, register
from toymodels.reproduce.superposition.study import CLAIMS, DOCUMENT, run_claims

#: the modules that hold the study's rules (recorded in a results folder before it trains: ``registration``)
RULES = RuleSet("superposition", tuple(f"toymodels.reproduce.{m}" for m in (
    "superposition.rules", "superposition.criteria", "superposition.checks", "superposition.seed_checks",
    "superposition.data", "intervals", "verdict")))

register(Study("superposition", DOCUMENT, tuple(CLAIMS), run_claims, rank=20, rules=RULES))
