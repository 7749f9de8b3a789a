"""Dictionary learning on the toy models: can sparse autoencoders (the SAE family) find the true features? In a toy
model the true features are known, so every SAE is scored exactly against them. Four questions, one claim name each:
the engineering route against an SAE on the same models (``SAE-LR``), MCC against L0 and width per architecture
(``SAE-L0``), absorption under hierarchical features against a null baseline (``SAE-ABS``), recovery of the
represented features as the TMS model's superposition grows (``SAE-TMS``).

Modules: ``rules`` (every threshold and criterion, which model is read, the rule modules the study registers),
``sweeps`` (each question's sweeps, trained or reloaded; LR1 shared with the EM claims), ``measure`` (the tables
the judges read), ``judges`` (each question's verdict from its table and the rules), ``figures``, ``text`` (the
document's fixed text), ``study`` (end to end).

Document: docs/dictionary_learning.md. Claim names: ``SAE-LR``, ``SAE-L0``, ``SAE-ABS``, ``SAE-TMS`` (named one by
one: ``toymodels reproduce --all`` does not run them).
"""

from __future__ import annotations

from toymodels.reproduce.dictionary_learning.judges import DICTIONARY_LEARNING_CLAIMS
from toymodels.reproduce.dictionary_learning.rules import RULE_MODULES
from toymodels.reproduce.dictionary_learning.study import DOCUMENT, run_claims
from toymodels.reproduce.registration import RuleSet
from toymodels.reproduce.study import Study, register

register(Study("dictionary_learning", DOCUMENT, DICTIONARY_LEARNING_CLAIMS, run_claims, rank=30,
               rules=RuleSet("dictionary_learning", RULE_MODULES)))
