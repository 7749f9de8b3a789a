"""The P&C quadratic family: the kurtosis sampler, the closed-form loss against measured losses, the capacity
theory against direct minimisation, and batched == separate."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_group_equals_alone

from toymodels.config import ExperimentConfig
from toymodels.engine.data import KurtosisSampler, generator, importance, kurtosis_input
from toymodels.families.quadratic import (
    QuadraticModel,
    quadratic_capacity_theory,
    quadratic_expected_loss,
    quadratic_optimum,
)
from toymodels.metrics import (
    capacity,
)
from toymodels.running.runner import evaluate
from toymodels.engine.train import train_group


# ------------------------------------------------------------------------------------------- quadratic model
@pytest.mark.parametrize("K,kind", [(1.0, "sign"), (2.0, "auto"), (3.0, "gaussian"), (10.0, "gaussian"),
                                    (10.0, "sign")])
def test_kurtosis_sampler_moments(K, kind):
    s = KurtosisSampler(4, K, kind, 2**17, generator(3, 1), "cpu")
    x = s.sample().double()
    assert kurtosis_input(K, kind)[1] == pytest.approx((3.0 if s.base == "gaussian" else 1.0) / K)
    n = x.numel()
    assert abs(x.mean().item()) < 5 / math.sqrt(n)
    assert x.pow(2).mean().item() == pytest.approx(1.0, abs=5 * math.sqrt((K - 1) / n))
    # sd of x^4 is sqrt(E x^8 - K^2); E x^8 = 105/q^3 (gaussian) or 1/q^3 (sign)
    q = s.q
    e8 = (105 if s.base == "gaussian" else 1) / q**3
    assert x.pow(4).mean().item() == pytest.approx(K, abs=5 * math.sqrt(max(e8 - K * K, 1e-12) / n) + 1e-9)


def measured_loss(model: QuadraticModel, K: float, kind: str, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per instance: mean squared error on n fresh samples and its standard error sd/sqrt(n) (float64)."""
    I, _, N = model.W.shape
    x = torch.zeros(I, n, N, dtype=torch.float64)
    for i in range(I):
        KurtosisSampler(N, K, kind, n, generator(seed + i, 7), "cpu").fill(x[i])
    m64 = QuadraticModel(model.W.detach().double(), model.b.detach().double(), model.importance.double())
    with torch.no_grad():
        y_hat, _ = m64(x)
        err = (y_hat - m64.target(x)).pow(2)
    return err.mean(1), err.std(1) / math.sqrt(n)


@pytest.mark.parametrize("K,kind", [(1.5, "auto"), (3.0, "auto"), (10.0, "gaussian"), (10.0, "sign")])
def test_closed_form_loss_matches_measured_loss_of_fixed_models(K, kind):
    g = torch.Generator().manual_seed(int(K * 10))
    W = torch.randn(3, 4, 8, generator=g, dtype=torch.float64) * 0.4
    b = torch.randn(3, generator=g, dtype=torch.float64)
    v = importance(8, 0.8).expand(3, 8)
    model = QuadraticModel(W, b, v.clone())
    mean, se = measured_loss(model, K, kind, 2**16, seed=0)
    closed = quadratic_expected_loss(W, b, v, K)
    z = (mean - closed) / se
    assert z.abs().max() < 4.5, (mean, closed, se)
    # the bias term: at b* = sum_i (v_i - M_ii) the last term vanishes and the formula of docs/papers.md §3 remains
    M = W.transpose(1, 2) @ W
    d = torch.diagonal(M, dim1=1, dim2=2)
    b_star = (v - d).sum(-1)
    paper = (K - 1) * (v - d).pow(2).sum(-1) + 2 * (M.pow(2).sum((1, 2)) - d.pow(2).sum(-1))
    torch.testing.assert_close(quadratic_expected_loss(W, b_star, v, K), paper)
    assert (quadratic_expected_loss(W, b, v, K) >= paper).all()


def test_closed_form_loss_matches_measured_loss_of_trained_models():
    base = dict(model="quadratic", N=8, m=4, importance_decay=0.8, optimizer="adam", lr=0.01, schedule="cosine",
                batch_size=512, steps=300)
    cfgs = [ExperimentConfig.from_flat({**base, "kurtosis": K, "seed": s}) for K, s in [(2.0, 0), (10.0, 1)]]
    res = train_group(cfgs)
    assert res.losses[:, -1].max() < res.losses[:, 0].min()  # it learns
    for i, cfg in enumerate(cfgs):
        t = {k: v[i:i + 1] for k, v in res.final.items()}
        model = QuadraticModel.from_tensors(t)
        mean, se = measured_loss(model, cfg.quadratic.kurtosis, "auto", 2**16, seed=100 + i)
        closed = quadratic_expected_loss(t["W"].double(), t["b"].double(), t["importance"].double(),
                                         cfg.quadratic.kurtosis)
        assert abs(float(mean - closed)) < 4.5 * float(se)
        ev = evaluate([cfg], t)
        assert ev["expected_loss"].item() == pytest.approx(float(closed), rel=1e-6)
        assert ev["optimal_loss"].item() <= float(closed) + 1e-9


def test_capacity_theory_matches_direct_minimisation():
    v = importance(8, 0.8)
    # direct minimisation of the closed-form loss (slow-ish: one K > 3 case; K = 2, 3, 5, 30 were checked by hand)
    C_th, L_th = quadratic_capacity_theory(v, 4, 10.0)
    W, L = quadratic_optimum(v, 4, 10.0, restarts=2, steps=150)
    assert L == pytest.approx(L_th, rel=1e-5)
    torch.testing.assert_close(capacity(W[None])[0], C_th, atol=2e-3, rtol=0)
    assert C_th.sum().item() == pytest.approx(4.0)
    C2, _ = quadratic_capacity_theory(v, 4, 2.0)
    assert C2.tolist() == [1.0] * 4 + [0.0] * 4  # K < 3: all or nothing
    C10, _ = quadratic_capacity_theory(v, 4, 10.0)
    frac = C10[(C10 > 0) & (C10 < 1)]
    assert frac.numel() >= 4  # K > 3: fractional capacities, linear in v between the clips
    slopes = (C10[2:6][:-1] - C10[2:6][1:]) / (v[2:6][:-1] - v[2:6][1:])
    torch.testing.assert_close(slopes, slopes.mean().expand_as(slopes).to(slopes.dtype), rtol=1e-6, atol=0)


# --------------------------------------------------------------------------------------- batched == separate
def test_quadratic_instances_train_the_same_in_a_group_as_alone():
    base = dict(model="quadratic", N=8, m=4, optimizer="adam", schedule="cosine", batch_size=64, steps=48,
                importance_decay=0.8)
    grid = [dict(lr=1e-3, kurtosis=1.5, seed=0), dict(lr=3e-3, kurtosis=3.0, seed=1),
            dict(lr=1e-2, kurtosis=10.0, seed=2, input_kind="sign"), dict(lr=2e-3, kurtosis=30.0, seed=3)]
    assert_group_equals_alone([ExperimentConfig.from_flat({**base, **g}) for g in grid])
