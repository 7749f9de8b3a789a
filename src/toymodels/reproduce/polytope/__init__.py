"""The polytope lens tested where the features are known (issue 30; docs/papers.md §6): does the lens of Black,
Sharkey et al. (2022) hold up on toy models whose true features are known? Three predictions, one verdict each:
spline codes pick out monosemantic regions better than neurons (``POLY-1``), polytope boundaries are dense at
semantic boundaries (``POLY-2``), a feature direction is valid only within a region (``POLY-3``), each judged on EM
(the LR1 models), TMS (the ReLU model across sparsity) and ReLU SAEs (SAE-L0's relu_l1 part) separately.

Modules: ``rules`` (every threshold, which models and checkpoint, the rule modules the study registers),
``sweeps`` (the three shared source folders, read or trained under their owners' rules), ``measure`` (the lens
table the judges read), ``judges`` (each prediction's verdict), ``figures``, ``text`` (the document's fixed
text), ``study`` (end to end).

Document: docs/polytope_lens.md. Claim name: ``POLY`` (``toymodels reproduce POLY``), answered by three verdicts
``POLY-1``, ``POLY-2``, ``POLY-3``.
"""

from __future__ import annotations

from toymodels.reproduce.polytope.rules import CLAIM, RULE_MODULES
from toymodels.reproduce.polytope.study import DOCUMENT, run_claims
from toymodels.reproduce.registration import RuleSet
from toymodels.reproduce.study import Study, register

register(Study("polytope", DOCUMENT, (CLAIM,), run_claims, rank=50, rules=RuleSet("polytope", RULE_MODULES)))
