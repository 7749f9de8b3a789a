"""The superposition claims of *Toy Models of Superposition* and *Polysemanticity and Capacity* (docs/papers.md §4
rows 8-12), checked with the TMS and quadratic model families: the TMS-* and PC-kurtosis presets are trained (seeds
are restarts; the lowest-loss restart is judged where the papers keep it) and each claim is judged criterion by
criterion.

Modules: ``study`` (trains or reloads each preset, judges it, writes the document), ``checks`` (one ``check_*`` per
claim, its criteria fixed before the runs), ``data`` (the instances table with final weights, and the geometry the
claims are judged by), ``figures`` (one figure per claim).

Document: docs/superposition.md. Claim names: ``TMS-intro``, ``TMS-basic``, ``TMS-dim``, ``TMS-phase``,
``PC-kurtosis``.
"""

from __future__ import annotations

from toymodels.reproduce.study import Study, register
from toymodels.reproduce.superposition.study import CLAIMS, DOCUMENT, run_claims

register(Study("superposition", DOCUMENT, tuple(CLAIMS), run_claims, rank=20))
