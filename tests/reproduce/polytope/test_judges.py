"""The polytope judges on hand-made lens tables: a clear effect agrees, an interval straddling a margin is
inconclusive, no effect disagrees, families that differ are partly, and every verdict says how it moves with its
thresholds halved or doubled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toymodels.reproduce.polytope.judges import (
    judge,
    judge_all,
    judge_density,
    judge_purity,
    judge_validity,
)
from toymodels.reproduce.polytope.rules import FAMILIES, PREDICTIONS, RULES

SETTINGS = (0.001, 0.01, 0.1)
BINS = 10


def lens_rows(family: str, seeds: int = 3, code_f=0.6, neuron_f=0.4, between=2.0, within=1.0, validity=1.2,
              represented=1.0, jitter: float = 0.0) -> list[dict]:
    """One family's rows: ``code_f`` etc. a number or a function of (setting index, seed); ``jitter`` adds a
    seed-dependent offset (seed - mean seed) x jitter to code F."""
    def value(v, i, s):
        return v(i, s) if callable(v) else v

    rows = []
    for i, setting in enumerate(SETTINGS):
        for s in range(seeds):
            c = value(code_f, i, s) + jitter * (s - (seeds - 1) / 2)
            n = value(neuron_f, i, s)
            rows.append({
                "family": family, "run_id": f"{family}{i}{s}", "seed": s, "setting": setting, "axis": setting,
                "mono": float(i), "represented_share": represented, "code_purity": 0.9, "code_completeness": c,
                "neuron_purity": 0.5, "neuron_completeness": n, "code_match": c, "neuron_match": n,
                "origin_share": 0.0, "between_density": value(between, i, s), "within_density": value(within, i, s),
                **{f"between_profile_{b}": float(b == 5) for b in range(BINS)},
                **{f"within_profile_{b}": 0.1 for b in range(BINS)},
                "validity_upper": value(validity, i, s), "validity_lower": 0.8, "valid_to_horizon": 0.0,
                "ray_codes": 3.0})
    return rows


def table(**per_family) -> pd.DataFrame:
    """Rows of every family (``per_family[family]``: lens_rows' keywords; default: the clear effects)."""
    return pd.DataFrame([r for f in FAMILIES for r in lens_rows(f, **per_family.get(f, {}))])


def test_clear_effects_agree_and_say_their_threshold_sensitivity():
    rising = {"code_f": lambda i, s: 0.5 + 0.1 * i + 0.01 * s}  # the advantage grows along the axis
    verdicts = judge_all(table(EM=rising, TMS=rising, SAE=rising))
    assert [v.claim for v in verdicts] == list(PREDICTIONS)
    assert [v.verdict for v in verdicts] == ["agrees", "agrees", "agrees"]
    for v in verdicts:
        assert v.reason.endswith("Thresholds: unchanged with thresholds halved or doubled.")
        assert v.details["thresholds"] == "unchanged with thresholds halved or doubled"
        assert set(v.details["families"]) == set(FAMILIES) and all(f"{f}: " in v.numbers for f in FAMILIES)
        assert set(v.table["family"]) == set(FAMILIES)
    purity = verdicts[0]
    assert purity.details["growth"] == {f: "grows" for f in FAMILIES}
    assert "codes better" in purity.numbers and "F(codes) - F(neurons) +" in purity.numbers
    pooled = purity.table[purity.table["setting"] == "all (per-seed mean)"]
    assert len(pooled) == 3 and (pooled["code F"] > pooled["neuron F"]).all()
    assert "denser between features, between / along 2 [95% CI 2, 2]" in verdicts[1].numbers
    assert "peak at 0.55 of the way" in verdicts[1].numbers  # the profile's bin 5 of 10
    assert "valid only up to < 2 x top" in verdicts[2].numbers


def test_an_interval_straddling_the_margin_is_inconclusive():
    # EM: per-seed differences 0.0, 0.05, 0.1 -> mean 0.05 with an interval across +0.05
    straddle = {"code_f": 0.45, "neuron_f": 0.4, "jitter": 0.05}
    v = judge_purity(table(EM=straddle))
    assert v.verdict == "inconclusive" and v.details["families"]["EM"] == "inconclusive"
    assert v.reason.startswith("undecided for EM;") and "EM: unclear" in v.numbers
    assert v.details["families"]["TMS"] == v.details["families"]["SAE"] == "agrees"


def test_no_effect_disagrees_and_mixed_families_are_partly():
    as_good = {"code_f": lambda i, s: 0.4 + 0.001 * s, "neuron_f": 0.4}
    worse = {"code_f": 0.2, "neuron_f": 0.6}
    assert judge_purity(table(EM=as_good, TMS=worse, SAE=worse)).verdict == "disagrees"
    v = judge_purity(table(EM=as_good))
    assert v.verdict == "partly" and "EM: as good" in v.numbers and "TMS: codes better" in v.numbers
    flat = {"between": lambda i, s: 1.0 + 0.001 * s, "within": 1.0}
    d = judge_density(table(EM=flat, TMS=flat, SAE=flat))
    assert d.verdict == "disagrees" and d.numbers.count("as dense") == 3


def test_thresholds_halved_or_doubled_move_a_borderline_verdict():
    # EM's advantage is 0.04 (+-0.001): inside the margin 0.05 ("as good"), above the halved margin 0.025
    borderline = {"code_f": lambda i, s: 0.44 + 0.001 * s, "neuron_f": 0.4}
    v = judge("POLY-1", table(EM=borderline))
    assert v.verdict == "partly"
    assert v.details["thresholds"] == "thresholds halved: agrees; doubled: partly"
    assert v.reason.endswith("Thresholds: thresholds halved: agrees; doubled: partly.")
    assert judge_purity(table(EM=borderline), RULES.scaled(0.5)).verdict == "agrees"


def test_validity_beyond_the_bound_disagrees_and_unrepresented_tms_settings_do_not_count():
    far = {"validity": lambda i, s: 6.0 + 0.1 * s}
    v = judge_validity(table(EM=far, TMS=far, SAE=far))
    assert v.verdict == "disagrees" and v.numbers.count("valid beyond 2 x top") == 3
    # TMS representing a fifth of its features: no setting counts, so TMS (and the prediction) is undecided
    v = judge_validity(table(TMS={"represented": 0.2}))
    assert v.verdict == "inconclusive" and v.details["families"]["TMS"] == "inconclusive"
    assert "TMS: no setting where it represents at least 50% of its features" in v.numbers
    assert set(v.table[v.table["family"] == "TMS"]["counts"]) == {"no (most features unrepresented)"}
    # doubling the slack (bound 3) lets 2.5 agree; at the rules' bound 2 it disagrees
    mid = {"validity": lambda i, s: 2.5 + 0.01 * s}
    v = judge("POLY-3", table(EM=mid, TMS=mid, SAE=mid))
    assert v.verdict == "disagrees" and v.details["thresholds"] == "thresholds halved: disagrees; doubled: agrees"


@pytest.mark.parametrize("claim", PREDICTIONS)
def test_too_few_seeds_or_a_missing_family_are_inconclusive(claim):
    few = table(EM={"seeds": 2})
    v = judge(claim, few)
    assert v.verdict == "inconclusive" and "EM: 2 seeds, fewer than 3" in v.numbers
    missing = table()
    v = judge(claim, missing[missing["family"] != "SAE"])
    assert v.verdict == "inconclusive" and "SAE: not run" in v.numbers and v.reason.startswith("undecided for SAE")
    empty = judge(claim, pd.DataFrame(columns=["family", "seed"]))
    assert empty.verdict == "inconclusive" and empty.numbers.count("not run") == 3


def test_a_seed_without_boundaries_along_features_is_left_out_not_infinite():
    none_along = {"within": lambda i, s: 0.0 if s == 0 else 1.0, "seeds": 4}
    v = judge_density(table(EM=none_along))
    assert "1 seed(s) without a boundary along any feature left out" in v.numbers
    assert v.details["families"]["EM"] == "agrees"
    assert np.isfinite(v.table[v.table["family"] == "EM"]["between (per unit length)"]).all()
