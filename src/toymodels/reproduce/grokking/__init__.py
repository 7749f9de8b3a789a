"""The grokking study (``toymodels reproduce GROK``; docs/grokking.md): the five claims of *Progress measures for
grokking via mechanistic interpretability* (Nanda et al. 2023) that toymodels' ``grokking`` family can check:
grokking itself, the few key frequencies, restricted loss before test loss, the weight norm in cleanup, and no
grokking without weight decay.

Modules: ``rules`` (every threshold, which model each claim reads, the rule modules the study registers),
``measure`` (the tables the judges read), ``judges``, ``study`` (end to end).
"""

from __future__ import annotations

from toymodels.reproduce.grokking.rules import RULE_MODULES
from toymodels.reproduce.grokking.study import CLAIMS, DOCUMENT, run_claims
from toymodels.reproduce.registration import RuleSet
from toymodels.reproduce.study import Study, register

register(Study("grokking", DOCUMENT, CLAIMS, run_claims, rank=60, in_all=False,
               rules=RuleSet("grokking", RULE_MODULES)))
