"""Dictionary learning on the toy models: can sparse autoencoders (the SAE family) find the true features? In a toy
model the true features are known, so every SAE is scored exactly against them. Four questions, one claim name each:
the engineering route against an SAE on the same models (``SAE-LR``), MCC against L0 and width per architecture
(``SAE-L0``), absorption under correlated and hierarchical features (``SAE-ABS``), recovery as the TMS model's
superposition grows (``SAE-TMS``).

Modules: ``study`` (trains or reloads each question's sweeps, judges it, writes the whole document from every
question found under the results folder), ``judges`` (the sweeps and each question's rule, fixed before the runs),
``figures``.

Document: docs/dictionary_learning.md. Claim names: ``SAE-LR``, ``SAE-L0``, ``SAE-ABS``, ``SAE-TMS`` (named one by
one: ``toymodels reproduce --all`` does not run them).
"""

from __future__ import annotations

from toymodels.reproduce.dictionary_learning.judges import DICTIONARY_LEARNING_CLAIMS
from toymodels.reproduce.dictionary_learning.study import DOCUMENT, run_claims
from toymodels.reproduce.study import Study, register

register(Study("dictionary_learning", DOCUMENT, DICTIONARY_LEARNING_CLAIMS, run_claims, rank=30, in_all=False))
