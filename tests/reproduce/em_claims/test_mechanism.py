"""Claim 6 (MECH): the rule of ``judge_mechanism`` on crafted numbers, and the whole path on a hand-built model in
the paper's regime whose broad block is exactly ``c E^T E`` plus a uniform output offset."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from helpers import PNG_MAGIC
from toymodels.reproduce.em_claims import mechanism as em_mechanism
from toymodels.reproduce.em_claims.mechanism import (
    CENTRAL,
    figure_mechanism,
    judge_mechanism,
    mechanism_numbers,
    regime_problem,
)

F64 = torch.float64


# ------------------------------------------------------------------------------------------------ the rule
def numbers_row(**overrides) -> dict:
    """One model's ``mechanism_numbers`` row that passes every criterion; ``overrides`` break some."""
    row = dict(run_id="r0000", lr=0.03, seed=0, mono_per_feature=1.0, in_regime=True, outside="", N=128, m=16,
               k=256, n_mono=128, n_narrow=60, n_broad=20, n_dead=48, broad_positive_bias=0.8,
               broad_median_bias=0.05, broad_features_firing=100.0, broad_linear_fraction=0.9, broad_rank=16,
               gram_c=0.4, gram_residual=0.3, offset_mean=-0.02, offset_std=0.005, offset_same_sign=1.0,
               narrow_features_firing=3.0, narrow_median_bias=-0.9, narrow_median_mono_ratio=0.86,
               loss_full=0.10, loss_without_broad=0.20, loss_broad=0.3, loss_mono=0.25, loss_zero=0.34,
               mono_negative_bias=1.0, mono_threshold=0.4, sv=[1.0] * 16)
    return {**row, **overrides}


def judged(monkeypatch, *rows: dict):
    monkeypatch.setattr(em_mechanism, "mechanism_numbers", lambda res, rules=None: pd.DataFrame(list(rows)))
    return judge_mechanism(SimpleNamespace())


@pytest.mark.parametrize("overrides, verdict, failed", [
    ({}, "agrees", set()),
    ({"broad_positive_bias": 0.5, "gram_residual": 0.5}, "agrees", set()),  # the thresholds themselves pass
    ({"broad_positive_bias": 0.2}, "partly", {CENTRAL[0]}),
    ({"gram_residual": 0.8}, "partly", {CENTRAL[1]}),
    ({"gram_c": -0.3}, "partly", {CENTRAL[1]}),  # fits -E^T E: not an approximation of the identity
    ({"broad_positive_bias": 0.2, "gram_residual": 0.8}, "disagrees", set(CENTRAL)),
    ({"broad_linear_fraction": 0.3}, "partly", {"broad neurons in the linear region"}),
    ({"loss_without_broad": 0.1005}, "partly", {"removing the broad block raises the loss"}),
])
def test_rule(monkeypatch, overrides, verdict, failed):
    v = judged(monkeypatch, numbers_row(**overrides), numbers_row(run_id="r0001", seed=1, **overrides))
    assert v.verdict == verdict, v.reason
    assert {c.criterion for c in v.checks if not c.passed} == failed
    assert len(v.checks) == 4 and "\n" not in v.numbers and "by construction, not evidence" in v.numbers


def test_only_models_in_the_regime_are_judged(monkeypatch):
    bad = numbers_row(run_id="r0001", in_regime=False, outside="mono/feature 0.52 < 0.75",
                      broad_positive_bias=0.0, gram_residual=0.9)
    good = numbers_row(run_id="r0002", seed=2)
    v = judged(monkeypatch, numbers_row(), bad, good)
    assert v.verdict == "agrees" and "2 of 3 LR3 models in the regime" in v.reason
    assert v.numbers.startswith("2/3 models in regime")
    assert list(v.details["mech"]["run_id"]) == ["r0000", "r0001", "r0002"]  # all reported, two judged


def test_one_model_in_the_regime_is_not_a_sample(monkeypatch):
    v = judged(monkeypatch, numbers_row())
    assert v.verdict == "inconclusive" and "fewer than 2" in v.reason and not v.checks


def test_a_non_central_criterion_alone_cannot_make_partly(monkeypatch):
    # both central criteria fail and a non-central one holds: the paper's picture fails, so disagrees
    rows = [numbers_row(run_id=f"r{i}", seed=i, broad_positive_bias=0.1, gram_residual=0.9) for i in range(2)]
    assert judged(monkeypatch, *rows).verdict == "disagrees"


def test_the_criteria_outside_the_regime_are_reported_not_judged(monkeypatch):
    rows = [numbers_row(run_id=f"r{i}", seed=i, lr=0.01, in_regime=False, mono_per_feature=0.3,
                        outside="mono/feature 0.30 < 0.75") for i in range(3)]
    v = judged(monkeypatch, *rows)
    assert v.verdict == "inconclusive" and not v.checks
    assert "Outside the regime" in v.reason and "lr 0.01 (3 models" in v.reason and "4/4 criteria hold" in v.reason


def test_outside_the_regime_is_inconclusive_and_derives_nothing(monkeypatch):
    row = numbers_row(in_regime=False, mono_per_feature=0.52, n_dead=100,
                      outside="mono/feature 0.52 < 0.75; 100/256 neurons dead (> 25%)")
    v = judged(monkeypatch, row)
    assert v.verdict == "inconclusive" and not v.checks
    assert v.reason.startswith("0 LR3 model(s) in the claim's regime") and "100/256 neurons dead" in v.reason
    assert v.numbers.startswith("0/1 models in the regime")
    assert judge_mechanism(None).verdict == "inconclusive"
    assert judged(monkeypatch).verdict == "inconclusive"  # no model finished


def test_regime_problem():
    assert regime_problem(0.75, 64, 256, 5) == ""
    assert regime_problem(0.74, 64, 256, 5) == "mono/feature 0.74 < 0.75"
    assert regime_problem(1.0, 65, 256, 5) == "65/256 neurons dead (> 25%)"
    assert regime_problem(1.0, 0, 256, 4) == "4 broad neurons (< 5)"
    assert regime_problem(float("nan"), 0, 256, 5).startswith("mono/feature nan")


# ----------------------------------------------------------------------------------- a hand-built model
def sylvester(n: int) -> torch.Tensor:
    H = torch.ones(1, 1, dtype=F64)
    while H.shape[0] < n:
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    return H


C = 0.5  # the broad block's read-out: W2_B W1_B = C E^T exactly
OFFSET = -0.01  # its uniform output offset W2_B b_B


def regime_model(n_mono: int = 16) -> dict[str, torch.Tensor]:
    """N = 16 features in m = 8 dims (E = [I, H / sqrt 8], overlaps <= 0.354) and 35 neurons:

    * ``n_mono`` mono neurons, W1 = 2 E_j^T, bias -1 (only their own feature reaches 1), W2[j, n] = 0.5;
    * 17 broad neurons with positive bias: pairs W1 = +-0.1 e_i, bias 1, W2 = +-5C E^T[:, i] (their linear parts
      add up to C E^T and their offsets cancel) and one constant neuron (W1 = 0, bias 0.5, W2 = 2 OFFSET);
    * 2 narrow neurons W1 = e_0 + e_1, bias -0.8: fire for features 0 and 1 only (2 < N/4).
    Mono neurons beyond ``n_mono`` are left out (k shrinks).
    """
    m, N = 8, 16
    E = torch.cat([torch.eye(m, dtype=F64), sylvester(m) / math.sqrt(m)], dim=1)
    eye = torch.eye(m, dtype=F64)
    W1 = torch.cat([2 * E.T[:n_mono], 0.1 * eye, -0.1 * eye, torch.zeros(1, m, dtype=F64),
                    (eye[0] + eye[1]).expand(2, m)])
    b1 = torch.tensor([-1.0] * n_mono + [1.0] * (2 * m) + [0.5, -0.8, -0.8], dtype=F64)
    W2 = torch.cat([0.5 * torch.eye(N, dtype=F64)[:, :n_mono], 5 * C * E.T, -5 * C * E.T,
                    torch.full((N, 1), 2 * OFFSET, dtype=F64), torch.zeros(N, 2, dtype=F64)], dim=1)
    return {"W1": W1, "b1": b1, "W2": W2, "E": E}


def fake_results(models: dict[str, dict[str, torch.Tensor]]) -> SimpleNamespace:
    rows = [dict(run_id=rid, status="ok", lr=0.03, seed=i, N=16, m=8, k=p["W1"].shape[0], task="decoder",
                 nonlinearity="relu", mono_per_feature=float(p["b1"].eq(-1).sum()) / 16)
            for i, (rid, p) in enumerate(models.items())]
    inst = pd.DataFrame(rows)
    return SimpleNamespace(instances=inst, sweep=SimpleNamespace(name="LR3-fake"),
                           row=lambda rid: inst.set_index("run_id", drop=False).loc[rid],
                           params=lambda rid, step=None: models[rid])


def test_hand_built_model_in_the_regime_agrees(tmp_path):
    res = fake_results({"r0000": regime_model(), "r0001": regime_model()})  # two seeds: one model is no sample
    mech = mechanism_numbers(res)
    row = mech.to_dict("records")[0]
    assert row["in_regime"] and row["outside"] == ""
    assert (row["n_mono"], row["n_broad"], row["n_narrow"], row["n_dead"]) == (16, 17, 2, 0)
    assert row["broad_positive_bias"] == 1.0 and row["broad_features_firing"] == 16
    assert row["broad_linear_fraction"] == 1.0  # bias 1 and weights 0.1 never switch off on [0, 1) inputs
    assert row["gram_c"] == pytest.approx(C) and row["gram_residual"] == pytest.approx(0, abs=1e-12)
    assert row["offset_mean"] == pytest.approx(OFFSET) and row["offset_std"] == pytest.approx(0, abs=1e-12)
    assert row["offset_same_sign"] == 1.0 and row["broad_rank"] == 8
    assert row["narrow_features_firing"] == 2 and row["loss_without_broad"] > row["loss_full"]
    v = judge_mechanism(res)
    assert v.verdict == "agrees", v.reason
    assert figure_mechanism(res, v.details["mech"], tmp_path / "mech.png").read_bytes()[:8] == PNG_MAGIC


def test_hand_built_model_with_few_mono_neurons_is_outside_the_regime():
    res = fake_results({"r0000": regime_model(n_mono=8)})
    v = judge_mechanism(res)
    assert v.verdict == "inconclusive" and "mono/feature 0.50 < 0.75" in v.reason
    assert v.details["mech"]["n_broad"].iloc[0] == 17  # measured and shown, not judged
