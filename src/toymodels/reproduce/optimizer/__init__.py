"""The optimizer x schedule study: does the paper's learning-rate effect (EM claim 1) need LAMB and its oscillating
schedule? Not a claim of the paper but a question about it: preset ``OPT1`` trains the LR1 and LR3 settings with
four optimizers x three (paper: four) schedules x a low and a high lr, and each cell is judged at paper_cosine's last
lr peak and at its last trough.

Modules: ``rules`` (every threshold, the checkpoints read, the cell rule and how the answer is derived: the study's
pre-registered rules), ``judges`` (one (setting, optimizer, schedule) cell, with 95% intervals over seeds; the
checkpoint tables), ``answer`` (the answer from the judged cells, the annealed-schedule finding, the oscillation,
the threshold sensitivity), ``study`` (trains or reloads OPT1's parts and writes the document), ``tables`` (its
tables and prose), ``figures`` (the effect per cell, peak vs trough, curves, matched loss).

Document: docs/optimizer_study.md. Claim names: ``OPT1`` (one question, answered with one Verdict).
"""

from __future__ import annotations

from toymodels.reproduce.optimizer.study import DOCUMENT, run_claims
from toymodels.reproduce.registration import RuleSet
from toymodels.reproduce.study import Study, register

#: the modules that hold the study's rules (recorded in a results folder before it trains: ``registration``)
RULES = RuleSet("optimizer", tuple(f"toymodels.reproduce.{m}" for m in (
    "optimizer.rules", "optimizer.judges", "optimizer.answer", "em_claims.oscillation", "intervals", "verdict")))

register(Study("optimizer", DOCUMENT, ("OPT1",), run_claims, rank=10, rules=RULES))
