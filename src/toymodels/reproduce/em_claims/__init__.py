"""The claims of *Engineering Monosemanticity in Toy Models* (docs/papers.md §4 rows 1-7): learning rate, power-law
features, negative bias with bias decay, the bias grid, the number of neurons, the mechanism of the residual
polysemantic neurons, and the L1 activation penalty. Each claim's verdict comes from its primary sweep; the same
judge reads each sensitivity run (the lr's last trough, a size-scaled LAMB clamp, a rescaled bias decay, longer
training) and the document shows those verdicts beside the primary one.

Modules: ``rules`` (every threshold, which model each claim reads, the rule modules the study registers),
``sweeps`` (each claim's sweeps, ``--steps``, running them), ``judges`` (claims 1-3 and what every judge
shares), ``grid_judges`` (claims 4, 5 and 7), ``oscillation`` (the lr's peaks and troughs), ``mechanism`` (claim 6),
``figures``, ``document`` (the document's text), ``study`` (end to end).

Document: docs/reproduction.md. Claim names: ``LR1``, ``LR2``, ``LR3``, ``B``, ``K1``, ``MECH``, ``RG1`` (the
default of ``reproduce()``).
"""

from __future__ import annotations

from toymodels.reproduce.em_claims.rules import RULE_MODULES
from toymodels.reproduce.em_claims.study import DOCUMENT, run_claims
from toymodels.reproduce.em_claims.sweeps import EM_CLAIMS
from toymodels.reproduce.registration import RuleSet
from toymodels.reproduce.study import Study, register

register(Study("em_claims", DOCUMENT, tuple(EM_CLAIMS), run_claims, rank=40, rules=RuleSet("em_claims", RULE_MODULES)))
