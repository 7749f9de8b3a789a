"""The optimizer x schedule study: does the paper's learning-rate effect (EM claim 1) need LAMB and its oscillating
schedule? Not a claim of the paper but a question about it: preset ``OPT1`` trains the LR1 and LR3 settings with
four optimizers x three (paper: four) schedules x a low and a high lr, and each cell is judged at paper_cosine's last
lr peak and at its last trough.

Modules: ``study`` (trains or reloads OPT1's parts, derives the answer from the judged cells, writes the document),
``judges`` (the rule of one (setting, optimizer, schedule) cell, fixed before the runs; peak against trough),
``figures`` (the effect per cell, peak vs trough, curves, matched loss).

Document: docs/optimizer_study.md. Claim names: ``OPT1`` (one question, answered with one Verdict).
"""

from __future__ import annotations

from toymodels.reproduce.optimizer.study import DOCUMENT, run_claims
from toymodels.reproduce.study import Study, register

register(Study("optimizer", DOCUMENT, ("OPT1",), run_claims, rank=10))
