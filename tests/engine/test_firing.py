"""Firing structures and magnitudes (toymodels.engine.firing, used through data.feature_sampler)."""

from __future__ import annotations

import pytest
import torch

from toymodels.engine import firing
from toymodels.config import ConfigError, ExperimentConfig
from toymodels.engine.data import (DATA_STREAM, FeatureSampler, StructuredSampler, feature_probs, feature_sampler,
                            firing_problem, generator)

SAE = {"model": "sae", "N": 24, "m": 8, "optimizer": "adam", "schedule": "constant", "batch_size": 64, "steps": 8}


def cfg(**kw) -> ExperimentConfig:
    return ExperimentConfig.from_flat({**SAE, **kw})


def draw(c: ExperimentConfig, n: int = 20000, seed: int = 0) -> torch.Tensor:
    s = feature_sampler(c.data, c.firing, n, generator(seed, DATA_STREAM), torch.device("cpu"))
    return s.sample()


def test_default_firing_is_the_papers_sampler_bit_for_bit():
    c = ExperimentConfig.from_flat({"N": 64, "eps": 1 / 16})
    s = feature_sampler(c.data, c.firing, 128, generator(3, DATA_STREAM), torch.device("cpu"))
    assert type(s) is FeatureSampler
    ref = FeatureSampler(feature_probs(64, 1 / 16, "uniform"), 128, generator(3, DATA_STREAM), torch.device("cpu"))
    for _ in range(3):
        assert torch.equal(s.sample(), ref.sample())


def test_correlated_firing_keeps_each_marginal_and_correlates_pairs():
    c = cfg(eps=0.2, firing="correlated", correlation="block", correlation_strength=0.8, feature_group_size=4)
    v = draw(c)
    on = (v != 0).float()
    assert torch.allclose(on.mean(0), torch.full((24,), 0.2), atol=0.015)
    corr = torch.corrcoef(on.T)
    assert corr[0, 1] > 0.3  # same block
    assert abs(corr[0, 4]) < 0.05  # different blocks


def test_negative_correlation_that_is_not_psd_fails_in_one_line_naming_the_field():
    with pytest.raises(ConfigError, match=r"^field 'correlation_strength': .*not positive semi-definite"):
        cfg(firing="correlated", correlation="block", correlation_strength=-0.9, feature_group_size=8)
    cfg(firing="correlated", correlation="block", correlation_strength=-0.1, feature_group_size=8)  # PSD: fine


def test_low_rank_and_random_matrices_are_unit_diagonal_and_psd():
    for kind in ("random", "low_rank"):
        C = firing.correlation_matrix(16, kind, 0.7, 3, 4, torch.Generator().manual_seed(1))
        assert torch.allclose(C.diagonal(), torch.ones(16, dtype=torch.float64))
        F, low = firing.psd_factor(C)
        assert low > -1e-9 and torch.allclose(F @ F.T, C, atol=1e-10)


def test_exclusive_groups_fire_at_most_one_feature_with_the_right_marginals():
    c = cfg(eps=0.2, firing="exclusive", feature_group_size=4)
    on = draw(c) != 0
    assert int(on.view(-1, 6, 4).sum(-1).max()) == 1
    assert torch.allclose(on.float().mean(0), torch.full((24,), 0.2), atol=0.015)
    with pytest.raises(ConfigError, match=r"^field 'feature_group_size': .*sum to at most 1"):
        cfg(eps=0.4, firing="exclusive", feature_group_size=4)


def test_hierarchy_children_fire_only_with_their_parent():
    c = cfg(eps=0.3, firing="hierarchical", hierarchy_branching=2, hierarchy_depth=3, hierarchy_child_prob=0.5)
    parents = firing.hierarchy_parents(24, 2, 3)
    assert parents[:7].tolist() == [-1, 0, 0, 1, 1, 2, 2] and parents[7:14].tolist() == [-1, 7, 7, 8, 8, 9, 9]
    assert (parents[21:] == -1).all()  # past the last whole tree: independent roots
    on = draw(c) != 0
    child = (parents >= 0).nonzero().flatten()
    assert not (on[:, child] & ~on[:, parents[child]]).any()
    assert abs(on[:, 1].float().mean().item() - 0.15) < 0.015  # P(child) = p_parent * 0.5
    assert abs(on[:, 3].float().mean().item() - 0.075) < 0.012  # grandchild: 0.3 * 0.5^2
    with pytest.raises(ConfigError, match=r"^field 'hierarchy_depth': .*more than N=24"):
        cfg(firing="hierarchical", hierarchy_branching=3, hierarchy_depth=4)


@pytest.mark.parametrize("kind, spread", [("constant", 4.0), ("folded_normal", 1.0), ("exponential", 9.0),
                                          ("uniform", 4.0)])
def test_magnitudes_have_their_per_feature_means(kind, spread):
    c = cfg(eps=0.5, magnitude=kind, magnitude_mean=0.8, magnitude_std=0.1, magnitude_spread=spread)
    v = draw(c, n=40000)
    means = v.sum(0) / (v != 0).sum(0)
    mu = firing.magnitude_means(24, 0.8, spread).float()
    assert mu[0] / mu[-1] == pytest.approx(spread)
    assert torch.allclose(means, mu, rtol=0.05)
    assert isinstance(feature_sampler(c.data, c.firing, 4, torch.Generator(), torch.device("cpu")), StructuredSampler)


def test_families_that_do_not_read_firing_refuse_it_and_abs_refuses_structure():
    with pytest.raises(ConfigError, match=r"^field 'firing': model 'quadratic' draws independent features only"):
        ExperimentConfig.from_flat({"model": "quadratic", "firing": "hierarchical"})
    with pytest.raises(ConfigError, match=r"^field 'firing': task 'abs' .* supports only 'independent'"):
        ExperimentConfig.from_flat({"task": "abs", "firing": "hierarchical"})
    assert firing_problem(cfg().data, cfg().firing) is None
