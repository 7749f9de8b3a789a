"""Each dictionary metric on a hand-built case with a known answer, and against SAELens' synthetic evals where it
computes the same quantity (sae-lens is in the test extra, as torch-optimizer is for LAMB)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import need_extra

from toymodels.metrics import dictionary as dm


def rows(*vs) -> torch.Tensor:
    return torch.tensor(vs, dtype=torch.float32)


def test_mcc_matches_one_to_one_not_greedily():
    F = torch.eye(2)[None]
    # latent 0 is close to both features; greedy matching would give it feature 0 and leave latent 1 on feature 1
    # at cos 0.6; the optimal matching pairs latent 0 with feature 1 (0.8) and latent 1 with feature 0 (1.0)
    c = 1 / math.sqrt(2)
    D = rows([c, c], [1, 0])[None]
    cos = dm.abs_cosines(D, F)
    assert torch.allclose(cos[0], torch.tensor([[c, c], [1, 0]]))
    assert dm.mcc(cos).item() == pytest.approx((c + 1) / 2)
    # sign and norm do not matter; more latents than features: the extra latent stays unmatched
    D2 = rows([-3, 0], [0, 0.5], [0.6, 0.8])[None]
    assert dm.mcc(dm.abs_cosines(D2, F)).item() == pytest.approx(1.0)


def test_features_recovered_and_uniqueness():
    F = torch.eye(3)[None]
    D = rows([1, 0, 0], [0.99, 0.141, 0], [0, 0.8, 0.6])[None]  # two latents on feature 0; feature 1 at 0.8
    cos = dm.abs_cosines(D, F)
    assert dm.features_recovered(cos).item() == pytest.approx(1 / 3)
    assert dm.uniqueness(cos).item() == pytest.approx(2 / 3)  # best matches: 0, 0, 1
    assert dm.uniqueness(dm.abs_cosines(torch.eye(3)[None], F)).item() == 1.0


def test_classification_counts_against_each_latents_best_feature():
    F = torch.eye(2)[None]
    D = torch.eye(2)[None]
    feats = rows([1, 0], [1, 0], [0, 1], [0, 0])[None]
    acts = rows([2, 0], [0, 0], [0, 3], [1, 0])[None]  # latent 0: TP, FN, TN, FP; latent 1: TN, TN, TP, TN
    out = dm.classification(acts, feats, dm.abs_cosines(D, F))
    assert out["precision"].item() == pytest.approx((0.5 + 1) / 2)
    assert out["recall"].item() == pytest.approx((0.5 + 1) / 2)
    assert out["f1"].item() == pytest.approx((0.5 + 1) / 2)
    assert out["accuracy"].item() == pytest.approx((0.5 + 1) / 2)
    dead = dm.classification(torch.zeros(1, 4, 2), feats, dm.abs_cosines(D, F))
    assert dead["precision"].item() == 0 and dead["f1"].item() == 0  # undefined ratios count 0


def test_l0_dead_latents_shrinkage_and_explained_variance():
    acts = rows([1, 0, 2], [0, 0, 1])[None]
    assert dm.l0(acts).item() == 1.5
    assert dm.dead_latents(acts).item() == 1
    x = rows([3, 4], [0, 0], [1, 0])[None]
    x_hat = rows([1.5, 2], [5, 5], [1, 0])[None]  # half the first, the zero input is skipped, the third exact
    assert dm.shrinkage(x_hat, x).item() == pytest.approx(0.75)
    assert dm.explained_variance(x, x).item() == 1.0
    mean = x.mean(1, keepdim=True).expand_as(x)  # predicting the mean explains nothing
    assert dm.explained_variance(mean, x).item() == pytest.approx(0.0, abs=1e-6)


def test_absorption_gap_is_one_when_the_child_silences_the_parents_latent():
    F = torch.eye(2)[None]  # feature 0 is the parent of feature 1
    D = torch.eye(2)[None]
    parents = [torch.tensor([-1, 0])]
    feats = rows([1, 0], [1, 0], [1, 1], [1, 1])[None]
    absorbed = rows([1, 0], [1, 0], [0, 1], [0, 1])[None]
    healthy = rows([1, 0], [1, 0], [1, 1], [1, 1])[None]
    assert dm.absorption_gap(absorbed, feats, dm.abs_cosines(D, F), parents).item() == pytest.approx(1.0)
    assert dm.absorption_gap(healthy, feats, dm.abs_cosines(D, F), parents).item() == pytest.approx(0.0)
    assert math.isnan(dm.absorption_gap(healthy, feats, dm.abs_cosines(D, F), [torch.tensor([-1, -1])]).item())


def test_metrics_are_per_instance():
    F = torch.eye(2).expand(2, 2, 2)
    D = torch.stack([torch.eye(2), rows([1, 1], [1, 1])])
    out = dm.dictionary_metrics(D, F, torch.ones(2, 3, 2), torch.ones(2, 3, 2), torch.ones(2, 3, 2),
                                torch.ones(2, 3, 2))
    assert out["mcc"].tolist() == pytest.approx([1.0, 1 / math.sqrt(2)])
    assert out["uniqueness"].tolist() == pytest.approx([1.0, 0.5])
    assert "absorption_gap" not in out


# ---- SAELens as an oracle ----------------------------------------------------------------------------------------
def random_case(seed: int = 0, L: int = 12, N: int = 10, d: int = 6, B: int = 500):
    g = torch.Generator().manual_seed(seed)
    F = torch.randn(N, d, generator=g)
    D = torch.randn(L, d, generator=g)
    feats = torch.rand(B, N, generator=g) * (torch.rand(B, N, generator=g) < 0.2)
    acts = torch.relu(torch.randn(B, L, generator=g) - 1)
    acts[:, 0] = 0  # a dead latent
    x = feats @ F
    x_hat = acts @ D
    x[0] = 0  # an input of norm 0 (skipped by shrinkage)
    return F, D, feats, acts, x, x_hat


def test_every_metric_agrees_with_sae_lens_synthetic_evals():
    ev = need_extra("sae_lens.synthetic.evals", "test")
    sl_evals = need_extra("sae_lens.evals", "test")
    for seed in range(3):
        F, D, feats, acts, x, x_hat = random_case(seed)
        ours = dm.dictionary_metrics(D[None], F[None], acts[None], feats[None], x[None], x_hat[None])
        assert ours["mcc"].item() == pytest.approx(ev.mean_correlation_coefficient(D, F), abs=1e-6)
        assert ours["uniqueness"].item() == pytest.approx(ev.feature_uniqueness(D, F), abs=1e-6)
        cls = ev.compute_classification_metrics(acts, feats, D, F)
        for ours_name, theirs in (("precision", cls.precision), ("recall", cls.recall), ("f1", cls.f1_score),
                                  ("accuracy", cls.accuracy)):
            assert ours[ours_name].item() == pytest.approx(theirs, abs=1e-6), ours_name
        for name, calc, args in (("l0", ev.L0Calculator(), (acts,)), ("true_l0", ev.L0Calculator(), (feats,)),
                                 ("dead_latents", ev.DeadLatentsCalculator(D.shape[0]), (acts,)),
                                 ("shrinkage", ev.ShrinkageCalculator(), (x_hat, x)),
                                 ("explained_variance", sl_evals.ExplainedVarianceCalculator(), (x_hat, x))):
            calc.add_batch(*args)
            assert ours[name].item() == pytest.approx(calc.compute(), abs=1e-5), name
