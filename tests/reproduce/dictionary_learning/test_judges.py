"""The dictionary-learning rules and judges on hand-built tables: intervals over seeds decide, an interval that
straddles its floor is inconclusive, the null baseline decides absorption, trends use seed-level points, and every
verdict says how it moves with its thresholds halved or doubled."""

from __future__ import annotations

import pandas as pd
import pytest

from toymodels.families.tms import TMS_REPRESENTED_NORM
from toymodels.reproduce.dictionary_learning.judges import (
    judge,
    judge_absorption,
    judge_l0,
    judge_lr,
    judge_tms,
)
from toymodels.reproduce.dictionary_learning.rules import (
    RULES,
    SELECTIVITIES,
    coverage_column,
)
from toymodels.reproduce.study import STUDIES


def test_rules_scale_the_evidence_thresholds_and_register_with_the_study():
    assert SELECTIVITIES == (0.9995, 0.999, 0.998) and RULES.selectivity == 0.999
    half, double = RULES.scaled(0.5), RULES.scaled(2.0)
    assert (half.coverage_margin, double.coverage_margin) == (0.025, 0.1)
    assert double.l0_factor == pytest.approx(4.0) and half.l0_factor == pytest.approx(2 ** 0.5)
    assert half.represented_norm == double.represented_norm == RULES.represented_norm == TMS_REPRESENTED_NORM
    rules = STUDIES.get("dictionary_learning").rules
    assert rules is not None and {"toymodels.reproduce.dictionary_learning.rules",
                                  "toymodels.reproduce.dictionary_learning.judges", "toymodels.reproduce.intervals",
                                  "toymodels.reproduce.verdict"} <= set(rules.modules)
    assert len(rules.fingerprint()) == 64


def lr_rows(neurons: list[float], sae: list[float], lr: float = 0.01, mcc: float = 0.9) -> pd.DataFrame:
    """One LR1 lr: per seed, the neurons' and the SAE on h's covered fractions (the same at every selectivity)."""
    rows = []
    for seed, (n, s) in enumerate(zip(neurons, sae)):
        row = {"lr": lr, "seed": seed, "mcc_h": mcc, "recovered_h": 0.5, "best_cos_h": 0.8}
        for sel in SELECTIVITIES:
            row[coverage_column("cover_neurons", sel)] = n
            row[coverage_column("cover_h", sel)] = s
        rows.append(row)
    return pd.DataFrame(rows)


def test_judge_lr_decides_per_lr_on_the_paired_interval():
    more = lr_rows([0.1, 0.2, 0.15], [0.5, 0.61, 0.54])
    fewer = lr_rows([0.6, 0.7, 0.65], [0.1, 0.2, 0.14], lr=0.03)
    v = judge_lr(pd.concat([more, fewer], ignore_index=True))
    assert v.verdict == "answered" and v.numbers == "lr 0.01: more; lr 0.03: fewer"
    same = judge_lr(lr_rows([0.3, 0.31, 0.3], [0.3, 0.3, 0.31]))
    assert same.verdict == "answered" and same.numbers == "lr 0.01: as many"


def test_an_interval_straddling_the_floor_is_inconclusive():
    # mean difference +0.1 (above the 0.05 margin) but the seeds disagree: the interval straddles the margin
    v = judge_lr(lr_rows([0.3, 0.3, 0.3], [0.3, 0.6, 0.3]))
    assert v.verdict == "inconclusive" and v.reason.startswith("undecided at lr 0.01")
    assert "unclear" in v.numbers
    # one seed has no interval at all
    assert judge_lr(lr_rows([0.1], [0.9])).verdict == "inconclusive"
    # an SAE that learned nothing decides nothing, whatever it covers
    assert judge_lr(lr_rows([0.1, 0.2, 0.15], [0.5, 0.61, 0.54], mcc=0.2)).verdict == "inconclusive"


def l0_rows(best: dict[str, list[float]], true_l0: float = 4.0) -> pd.DataFrame:
    """Per architecture and seed, SAEs at L0 1, 4 and 16; the best MCC at that seed's entry of ``best``."""
    rows = []
    for arch, per_seed in best.items():
        for seed, b in enumerate(per_seed):
            rows += [{"sae_arch": arch, "sae_width": 128, "N": 128, "seed": seed, "l0": l0, "true_l0": true_l0,
                      "best_cos": 0.7, "mcc": 0.9 if l0 == b else 0.7} for l0 in (1.0, 4.0, 16.0)]
    return pd.DataFrame(rows)


def test_judge_l0_reads_the_interval_of_log_l0_ratios():
    assert judge_l0(l0_rows({"topk": [4, 4, 4], "relu_l1": [4, 4, 4]})).verdict == "agrees"
    assert judge_l0(l0_rows({"topk": [4, 4, 4], "relu_l1": [16, 16, 16]})).verdict == "partly"
    assert judge_l0(l0_rows({"topk": [1, 1, 1], "relu_l1": [16, 16, 16]})).verdict == "disagrees"
    straddle = judge_l0(l0_rows({"topk": [4, 4, 4], "relu_l1": [1, 16, 4]}))
    assert straddle.verdict == "inconclusive" and "undecided for relu_l1" in straddle.reason
    assert "best mean best-|cos| (95% CI)" in straddle.table.columns  # widths compared over every feature


def abs_rows(hier: list[float], null: list[float], arch: str = "topk", mcc: float = 0.8) -> pd.DataFrame:
    rows = []
    for firing, gaps in (("hierarchical", hier), ("independent", null), ("correlated", [float("nan")] * len(hier))):
        rows += [{"sae_arch": arch, "sparsity": "k=1", "seed": s, "firing": firing, "gap": g, "mcc": mcc}
                 for s, g in enumerate(gaps)]
    return pd.DataFrame(rows)


def test_judge_absorption_measures_against_the_null_baseline():
    # a large gap that the same SAEs show without a hierarchy is not absorption
    chance = judge_absorption(abs_rows([0.40, 0.42, 0.41], [0.39, 0.43, 0.40]))
    assert chance.verdict == "answered" and chance.numbers == "topk: does not appear"
    beyond = judge_absorption(abs_rows([0.40, 0.42, 0.41], [0.02, 0.03, 0.01]))
    assert beyond.verdict == "answered" and beyond.numbers == "topk: appears"
    noisy = judge_absorption(abs_rows([0.40, 0.02, 0.41], [0.02, 0.03, 0.01]))
    assert noisy.verdict == "inconclusive" and noisy.numbers == "topk: unclear"


def tms_rows(values_per_seed: list[list[float]]) -> pd.DataFrame:
    eps = [1.0, 0.3, 0.1, 0.03, 0.01]
    column = coverage_column("cover_rep", RULES.selectivity)
    return pd.DataFrame([dict(source_seed=s, eps=e, S=1 - e, l1=l1, represented=10, **{column: v},
                              recovered_rep=v, features_recovered=v, N=20)
                         for s, vs in enumerate(values_per_seed) for e, v in zip(eps, vs) for l1 in (0.03, 0.3)])


def test_judge_tms_uses_seed_level_points_and_a_seed_bootstrap():
    rising = tms_rows([[0.1, 0.2, 0.4, 0.6, 0.8], [0.0, 0.3, 0.35, 0.7, 0.9], [0.1, 0.25, 0.5, 0.55, 0.85]])
    v = judge_tms(rising)
    assert v.verdict == "answered" and v.numbers.startswith("rises")
    assert "15 (seed, density) points" in v.reason and "Without the densest level" in v.reason
    seeds_disagree = tms_rows([[0.1, 0.2, 0.4, 0.6, 0.8], [0.8, 0.6, 0.4, 0.2, 0.1], [0.1, 0.2, 0.4, 0.6, 0.8]])
    assert judge_tms(seeds_disagree).verdict == "inconclusive"
    assert judge_tms(tms_rows([[0.1, 0.2, 0.4, 0.6, 0.8]])).verdict == "inconclusive"  # one seed


def test_every_verdict_says_how_it_moves_with_its_thresholds():
    v = judge("SAE-LR", lr_rows([0.1, 0.2, 0.15], [0.5, 0.61, 0.54]))
    assert v.details["thresholds"] == "unchanged with thresholds halved or doubled"
    assert v.reason.endswith("Thresholds: unchanged with thresholds halved or doubled.")
    # +0.10 [95% CI about +0.075, +0.125]: 'more' at the margin 0.05 and at 0.025; the doubled margin 0.1 lies
    # inside the interval: inconclusive
    edge = judge("SAE-LR", lr_rows([0.3, 0.3, 0.3], [0.39, 0.4, 0.41]))
    assert edge.verdict == "answered" and "doubled: inconclusive" in edge.details["thresholds"]
