"""The EM verdict rules (claims 1-5 and 7) on hand-made results tables: the detection floor, no optimum from an
argmax over zeros, computed statements, and the same rule applied to the sensitivity runs."""

from __future__ import annotations

import pytest
from helpers import fake_results

from toymodels.reproduce import (
    B_BIASES,
    Verdict,
    judge_bias,
    judge_l1,
    judge_lr,
    judge_negative_bias,
    judge_neurons,
    judge_power_law,
)
from toymodels.reproduce.em_claims.study import EMRuns, sensitivity_lr1, sensitivity_lr3
from toymodels.reproduce.em_claims.judges import MIN_MONO_NEURONS, OTHER_SOURCES, STATEMENTS

N, K = 128, 256


def fake(field: str, rows, **fixed):
    """fake_results with N, k and the stored ``mono_neurons`` column (mono/feature x N), as the EM family writes."""
    res = fake_results(field, rows, **{"N": N, **({} if field == "k" else {"k": K}), **fixed})
    res.instances["mono_neurons"] = res.instances["mono_per_feature"] * res.instances["N"]
    return res


LOW = 0.9 * MIN_MONO_NEURONS / N  # mono/feature of a count just below the floor


@pytest.mark.parametrize("rows, verdict", [
    ([(0.001, 0.0, 1.0, 0.1), (0.01, 0.5, 0.9, -0.3), (0.03, 1.0, 0.9, -0.8)], "agrees"),
    ([(0.001, 0.0, 1.0, 0.1), (0.01, 0.1, 0.9, -0.3), (0.03, 0.3, 1.5, -0.8)], "partly"),
    ([(0.001, 0.3, 1.0, 0.1), (0.01, 0.2, 0.9, -0.3), (0.03, 0.1, 0.9, -0.8)], "disagrees"),
    ([(0.001, 0.0, 1.0, 0.1), (0.01, 0.0, 0.9, -0.3), (0.03, 0.0, 0.9, -0.8)], "inconclusive"),
    ([(0.001, 0.0, 1.0, 0.1), (0.01, 0.0, 0.9, -0.3), (0.03, LOW, 0.9, -0.8)], "inconclusive"),
])
def test_judge_lr(rows, verdict):
    v = judge_lr(fake("lr", rows))
    assert isinstance(v, Verdict) and v.verdict == verdict, v.reason
    assert (v.claim, v.title) == ("LR1", STATEMENTS["LR1"][0])
    assert list(v.table["lr"]) == ["0.001", "0.01", "0.03"] and v.numbers.startswith("mono/feature at ")
    if verdict == "inconclusive":
        assert v.reason.startswith("below the detection floor") and f"fewer than {MIN_MONO_NEURONS}" in v.reason


def test_a_rise_smaller_than_the_floor_is_no_rise():
    v = judge_lr(fake("lr", [(0.001, 0.5, 1.0, 0.1), (0.03, 0.5 + LOW, 1.0, -0.8)]))
    assert v.verdict == "disagrees" and "does not rise" in v.reason


def test_judge_power_law_needs_a_lower_ceiling_than_uniform():
    lr2 = fake("lr", [(0.001, 0.0, 1.0, 0.1), (0.01, 0.2, 0.9, -0.3), (0.03, 0.4, 0.9, -0.8)])
    higher = fake("lr", [(0.001, 0.0, 1.0, 0.1), (0.03, 0.9, 0.9, -0.8)])
    same = fake("lr", [(0.001, 0.0, 1.0, 0.1), (0.03, 0.4 + LOW, 0.9, -0.8)])  # higher, but by less than the floor
    v = judge_power_law(lr2, higher)
    assert v.verdict == "agrees" and "the power-law ceiling is lower, as the re-run found" in v.reason
    # the ceiling is a re-run's finding, not the paper's: reported beside the verdict, never changing its word
    v = judge_power_law(lr2, same)
    assert v.verdict == "agrees" and "the power-law ceiling is not lower" in v.reason and v.claim == "LR2"


def test_judge_negative_bias():
    lr1 = fake("lr", [(0.001, 0.0, 1.0, 0.1), (0.01, 0.2, 0.9, -0.3), (0.03, 0.6, 0.9, -0.8)])
    lr3 = fake("lr", [(0.001, 0.3, 1.0, -1), (0.01, 0.8, 0.9, -1), (0.03, 1.0, 0.9, -1)], bias_decay=0.03)
    assert judge_negative_bias(lr3, lr1).verdict == "agrees"
    assert judge_negative_bias(lr1.__class__(instances=lr1.instances.assign(bias_decay=0.03)), lr3).verdict \
        == "disagrees"
    v = judge_negative_bias(lr3, None)
    assert v.verdict == "inconclusive" and "LR1 was not run" in v.reason
    zero = fake("lr", [(0.001, 0.0, 1.0, -1), (0.03, LOW, 1.0, -1)], bias_decay=0.03)
    assert judge_negative_bias(zero, zero).verdict == "inconclusive"


def _bias_sweep(eps: float, mono_at: dict[float, float], dead_at_most_negative: float = 100.0):
    r = fake("bias_offset", [(b, mono_at.get(b, 0.0), 1.0, b) for b in B_BIASES], eps=eps)
    r.instances.loc[r.instances["bias_offset"] == min(B_BIASES), "dead_neurons"] = dead_at_most_negative
    return r


def test_judge_bias_moderate_optimum():
    res = {f"B-{eps}": _bias_sweep(eps, {b: 0.2 for b in B_BIASES} | {best: 1.0})
           for eps, best in [(1 / 16, -1.4), (1 / 64, -0.8), (1 / 256, -0.2)]}
    v = judge_bias(res)
    assert v.verdict == "agrees", v.reason
    # the √eps hypothesis is reported beside the verdict and attributed to a secondary source
    assert "secondary source (not the paper): |optimum| grows with eps" in v.reason
    res_bad = {k: _bias_sweep(float(r.instances["eps"].iloc[0]), {b: 0.1 for b in B_BIASES} | {1.0: 1.0})
               for k, r in res.items()}
    assert judge_bias(res_bad).verdict == "disagrees"


def test_judge_bias_names_no_optimum_below_the_floor():
    """All-zero rows: no argmax, no optimum, no growth statement; the dead neurons are counted, not assumed."""
    zeros = {f"B-{e}": _bias_sweep(e, {}, dead_at_most_negative=float(K)) for e in (1 / 16, 1 / 64, 1 / 256)}
    v = judge_bias(zeros)
    assert v.verdict == "inconclusive" and "below the floor" in v.reason and "peak at" not in v.reason
    assert f"dead at -2: {K}/{K}" in v.reason and not v.checks
    mixed = {"B-16": _bias_sweep(1 / 16, {-2.0: 0.1, -1.4: 0.6, 1.0: 0.1}),
             "B-64": _bias_sweep(1 / 64, {-2.0: 0.1, -0.8: 0.6, 1.0: 0.1}),
             "B-256": _bias_sweep(1 / 256, {-0.2: LOW}, dead_at_most_negative=float(K))}
    v = judge_bias(mixed)
    # judged per density: two agree, one is below the floor, so the claim across densities is not decided
    assert v.verdict == "inconclusive" and "not decided at every eps" in v.reason
    assert v.details["per_point"] == {1 / 16: "agrees", 1 / 64: "agrees", 1 / 256: "inconclusive"}
    assert f"eps 1/256: below the floor (at most {LOW * N:.1f} mono neurons), inconclusive; dead at -2: " \
           f"{K}/{K}" in v.reason
    assert not any("1/256" in c.criterion for c in v.checks)
    assert "|optimum| grows with eps" in v.reason  # over the two eps above the floor: 0.8 -> 1.4
    mixed["B-256"] = _bias_sweep(1 / 256, {b: 0.1 for b in B_BIASES} | {1.0: 0.6})  # the peak at +1: disagrees
    assert judge_bias(mixed).verdict == "partly"


def test_statements_attribute_their_sources():
    assert "√" not in STATEMENTS["B"][1] and "sqrt" not in STATEMENTS["B"][1]
    assert "[secondary source]" in OTHER_SOURCES["B"] and "√eps" in OTHER_SOURCES["B"]


def test_judge_l1():
    rg1 = fake("l1", [(1e-5, 0.1, 1.0, 0.0), (1e-3, 0.3, 1.0, 0.0), (1e-1, 0.6, 1.5, 0.0)], lr=0.005)
    v = judge_l1(rg1)
    assert v.verdict == "agrees" and "at l1 0.001" in v.reason  # a gain at no loss cost (at 0.1 the loss rises)
    only_costly = fake("l1", [(1e-5, 0.1, 1.0, 0.0), (1e-1, 0.6, 1.5, 0.0)], lr=0.005)
    assert judge_l1(only_costly).verdict == "inconclusive"  # the only gain comes with a loss cost
    none = fake("l1", [(1e-5, 0.3, 1.0, 0.0), (1e-3, 0.3, 1.0, 0.0), (1e-1, 0.3, 1.5, 0.0)], lr=0.005)
    assert judge_l1(none).verdict == "disagrees"  # the loss rising alone earns nothing
    below = fake("l1", [(1e-5, 0.0, 1.0, 0.0), (1e-1, LOW, 1.5, 0.0)], lr=0.005)
    assert judge_l1(below).verdict == "inconclusive"


@pytest.mark.parametrize("mono_per_neuron_falls, verdict", [(True, "agrees"), (False, "agrees")])
def test_judge_neurons(mono_per_neuron_falls, verdict):
    """Whether mono/neuron falls for k > N is another source's expectation: reported, never the verdict's word."""
    k1 = fake("k", [(16, 0.05, 2.0, 0), (64, 0.2, 1.0, 0), (256, 0.6, 0.5, 0), (512, 0.8, 0.5, 0)])
    inst = k1.instances
    inst["mono_per_neuron"] = inst["mono_per_feature"] * N / inst["k"] if mono_per_neuron_falls else \
        inst["mono_per_feature"]  # mono neurons / k falls beyond k = N, or keeps rising
    v = judge_neurons(k1)
    assert v.verdict == verdict, v.reason
    assert ("mono/neuron falls" if mono_per_neuron_falls else "mono/neuron does not fall") in v.reason
    below = fake("k", [(16, 0.0, 2.0, 0), (512, LOW, 0.5, 0)])
    assert judge_neurons(below).verdict == "inconclusive"


def test_sensitivity_runs_get_the_primary_rule_and_do_not_replace_it():
    lr1 = fake("lr", [(0.001, 0.0, 1.0, 0.1), (0.03, 0.6, 0.9, -0.8)], lamb_clamp=10.0)
    clamp1 = fake("lr", [(0.001, 0.0, 1.0, 0.1), (0.03, 0.0, 0.9, -0.8)], lamb_clamp=5.0)
    lr3 = fake("lr", [(0.001, 0.3, 1.0, -1), (0.03, 1.0, 0.9, -1)], bias_decay=0.03, lamb_clamp=10.0)
    rescaled = fake("lr", [(0.001, 0.0, 1.0, -1), (0.03, 0.6, 0.9, -1)], bias_decay=0.12, lamb_clamp=10.0)
    runs = EMRuns({"LR1": lr1, "LR1-clamp": clamp1, "LR3": lr3, "LR3-rescaled": rescaled}, {})
    (clamp,) = sensitivity_lr1(runs)
    assert clamp.label == "LR1-clamp (LAMB clamp 5)" and clamp.verdict == judge_lr(clamp1, "LR1")
    assert clamp.verdict.verdict == "inconclusive" and judge_lr(lr1, "LR1").verdict == "agrees"
    readings = {r.label: r.verdict for r in sensitivity_lr3(runs)}
    assert readings == {"LR3-rescaled (decay 0.12) vs LR1": judge_negative_bias(rescaled, lr1)}
    assert readings["LR3-rescaled (decay 0.12) vs LR1"].verdict == "disagrees"
    assert judge_negative_bias(lr3, lr1).verdict == "agrees"  # the primary verdict is LR3's own


def noisy(field: str, rows, spread: float, seeds=(0, 1, 2), **fixed):
    """``fake`` whose mono/feature at the last setting differs by seed: + (i - 1) * spread for seed i."""
    res = fake_results(field, rows, seeds=seeds, **{"N": N, "k": K, **fixed})
    inst = res.instances
    last = inst[field] == max(r[0] for r in rows)
    inst.loc[last, "mono_per_feature"] += (inst.loc[last, "seed"] - 1) * spread
    inst["mono_neurons"] = inst["mono_per_feature"] * N
    return res


def test_an_interval_straddling_the_floor_is_inconclusive():
    """The mean rise clears the floor, but the seeds disagree so much that the interval does not."""
    rows = [(0.001, 0.0, 1.0, 0.1), (0.03, 2 * MIN_MONO_NEURONS / N, 0.9, -0.8)]
    assert judge_lr(noisy("lr", rows, 0.0)).verdict != "inconclusive"
    v = judge_lr(noisy("lr", rows, 8 * MIN_MONO_NEURONS / N))
    assert v.verdict == "inconclusive" and "not clear at the floor" in v.reason and "95% CI" in v.reason


def test_the_same_effect_without_noise_and_far_from_the_floor_decides():
    rows = [(0.001, 0.0, 1.0, 0.1), (0.03, 0.8, 0.9, -0.8)]
    v = judge_lr(noisy("lr", rows, 0.02))
    assert v.verdict == "agrees" and "paired by seed" in v.reason


def test_the_rules_scale_for_the_sensitivity_line():
    from toymodels.reproduce.em_claims.rules import RULES

    # from 2 floors of mono neurons to 3.5: a rise of 1.5 floors, which a doubled floor calls no rise
    rows = [(0.001, 2 * MIN_MONO_NEURONS / N, 1.0, 0.1), (0.03, 3.5 * MIN_MONO_NEURONS / N, 0.9, -0.8)]
    res = fake("lr", rows)
    assert judge_lr(res, rules=RULES).verdict != "disagrees"
    assert judge_lr(res, rules=RULES.scaled(2.0)).verdict == "disagrees"  # 2 floors: the rise is too small
