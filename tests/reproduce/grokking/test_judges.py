"""The grokking study's rules on hand-made tables (each judge: holds, fails, an interval straddling its threshold),
the threshold sensitivity, and the study end to end at smoke scale with its pre-registration record."""

from __future__ import annotations

import pandas as pd
import pytest

from toymodels.reproduce import reproduce
from toymodels.reproduce.grokking.judges import (
    judge_cleanup,
    judge_frequencies,
    judge_restricted,
    judge_saturation,
    judge_weight_decay,
    share_interval,
)
from toymodels.reproduce.grokking.rules import RULES
from toymodels.reproduce.registration import RECORD


def table(**cols) -> pd.DataFrame:
    """Three seeds of an instance table with sensible defaults, ``cols`` overriding per-seed lists."""
    base = {"seed": [0, 1, 2], "memorised": [300.0, 320.0, 280.0], "grokked": [3000.0, 3300.0, 2900.0],
            "grokked_within": [True] * 3, "cleanup_start": [2000.0] * 3, "n_key": [4, 5, 5],
            "gini": [0.85, 0.88, 0.9], "restricted_falls": [1500.0, 1600.0, 1400.0],
            "test_falls": [2500.0, 2600.0, 2400.0], "checkpoint_every": [100] * 3,
            "norm_start": [10.0, 11.0, 10.5], "norm_end": [7.0, 7.5, 7.2]}
    return pd.DataFrame({**base, **cols})


def test_each_claim_holds_on_a_textbook_run():
    t = table()
    assert [j(t).verdict for j in (judge_saturation, judge_frequencies, judge_restricted, judge_cleanup)] == \
        ["agrees"] * 4


@pytest.mark.parametrize("judge, cols, verdict", [
    (judge_saturation, {"grokked": [400.0, 420.0, 380.0]}, "disagrees"),           # groks right after memorising
    (judge_saturation, {"grokked": [400.0, 3000.0, 9000.0]}, "inconclusive"),      # the seeds disagree
    (judge_frequencies, {"n_key": [30, 28, 31]}, "disagrees"),                     # a dense spectrum
    (judge_frequencies, {"gini": [0.3, 0.9, 0.7]}, "inconclusive"),
    (judge_restricted, {"restricted_falls": [2600.0, 2700.0, 2500.0]}, "disagrees"),  # restricted falls after
    (judge_cleanup, {"norm_end": [10.0, 11.2, 10.4]}, "disagrees"),                # no fall
])
def test_a_claim_fails_or_stays_open(judge, cols, verdict):
    v = judge(table(**cols))
    assert v.verdict == verdict, v.reason
    assert "95% CI" in v.numbers


def test_a_never_grokked_seed_counts_at_the_budget_end():
    v = judge_saturation(table(grokked=[3000.0, 4000.0, 2900.0], grokked_within=[True, False, True]))
    assert v.verdict == "agrees" and "1 of 3 seeds never grokked" in v.numbers


def test_weight_decay_needs_its_positive_control():
    shares = pd.DataFrame({"weight_decay": [0.0, 0.0, 1.0, 1.0], "train_frac": [0.2, 0.4, 0.2, 0.4],
                           "n": [5, 5, 5, 5], "grokked": [0, 0, 1, 5], "test_acc": [0.1, 0.2, 0.3, 1.0]})
    v = judge_weight_decay(shares)
    assert v.verdict == "agrees" and "at the smaller fraction 0.2" in v.numbers  # 0/10 vs 5/5
    three_seeds = shares.assign(n=[3, 3, 3, 3], grokked=[0, 0, 0, 3])  # 3/3: lower end 0.29, too few to decide
    assert judge_weight_decay(three_seeds).verdict == "inconclusive"
    no_control = shares.assign(grokked=[0, 0, 0, 1])  # nothing groks at all: the budget, not the decay, decides
    assert judge_weight_decay(no_control).verdict == "inconclusive"
    groks_anyway = shares.assign(grokked=[5, 5, 5, 5])
    assert judge_weight_decay(groks_anyway).verdict == "disagrees"
    iv = share_interval(0, 10)
    assert iv.estimate == 0 and iv.low == 0 and 0.3 < iv.high < 0.31  # Clopper-Pearson: 0.308


def test_the_rules_scale_for_the_sensitivity_line():
    t = table(grokked=[1500.0, 1600.0, 1400.0])  # about 5x the memorising steps
    assert judge_saturation(t, RULES).verdict == "agrees"
    assert judge_saturation(t, RULES.scaled(2.0)).verdict == "disagrees"  # 6x needed


def test_the_study_runs_at_smoke_scale_and_records_its_rules(tmp_path):
    verdicts = reproduce(["GROK"], scale="smoke", seeds=2, out_dir=tmp_path / "runs", docs_dir=tmp_path / "docs",
                         progress=False)
    assert [v.claim for v in verdicts] == ["GROK-1", "GROK-2", "GROK-3", "GROK-4", "GROK-5"]
    assert {v.verdict for v in verdicts} == {"inconclusive (scale)"}
    assert all("thresholds" in v.details and v.details["role"] == "exploratory" for v in verdicts)
    assert (tmp_path / "runs" / "GROK-main-smoke" / RECORD).exists()
    doc = (tmp_path / "docs" / "grokking.md").read_text()
    assert "## Verdicts" in doc and "**Pre-registration.**" in doc and "figures/grokking_curves.png" in doc
