"""Samplers and embedders: the paper's distributions, exactly."""

import math

import pytest
import torch

from toymodels.engine.data import FeatureSampler, feature_probs, generator, make_embedder, stream_seed


def _sampler(probs, batch, seed=0, signed=False):
    return FeatureSampler(probs, batch, generator(seed, 1), torch.device("cpu"), signed=signed)


def _within_binomial(counts, n, p, z=5.5):
    """Every count within z standard deviations of its binomial mean (512 features: a false alarm is ~1e-5)."""
    mean = n * p
    sd = torch.sqrt(n * p * (1 - p)).clamp(min=1e-12)
    return bool(((counts - mean).abs() <= z * sd + 1e-9).all())


def _ks_uniform(values):
    """Kolmogorov-Smirnov statistic against U[0, 1)."""
    x, _ = torch.sort(values.double())
    n = x.numel()
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(torch.maximum(i / n - x, x - (i - 1) / n).max()), n


def test_power_law_probs_match_paper():
    p = feature_probs(512, 1 / 64, "power_law")
    assert p[0] == 1.0  # clipped: feature 1 is always on
    assert float(p.sum()) == pytest.approx(7.47, abs=0.01)
    assert float(p[9]) == pytest.approx(0.122, abs=0.001)
    assert float(p[99]) == pytest.approx(0.0097, abs=0.0001)
    assert float(p[511]) == pytest.approx(0.0016, abs=0.0001)
    assert feature_probs(512, 1 / 128, "power_law").max() < 1  # no clipping at eps <= 1/128


@pytest.mark.parametrize("distribution, eps", [("uniform", 1 / 64), ("uniform", 0.5), ("power_law", 1 / 64)])
def test_feature_frequencies_within_binomial_bounds(distribution, eps):
    N, batch, rounds = 512, 2048, 4
    p = feature_probs(N, eps, distribution)
    s = _sampler(p, batch)
    counts = torch.zeros(N, dtype=torch.float64)
    active = []
    for _ in range(rounds):
        v = s.sample()
        counts += (v != 0).sum(0)
        active.append(v[v != 0])
    assert _within_binomial(counts, batch * rounds, p)
    vals = torch.cat(active)
    assert float(vals.min()) >= 0 and float(vals.max()) < 1
    d, n = _ks_uniform(vals)
    assert d < 1.95 / math.sqrt(n)  # KS test at the 0.1% level
    if distribution == "power_law":
        assert counts[0] == batch * rounds  # p_1 = 1
        mean_active = counts.sum() / (batch * rounds)
        assert float(mean_active) == pytest.approx(7.47, abs=0.1)


def test_sparse_fill_clears_previous_batch():
    s = _sampler(feature_probs(64, 0.05, "uniform"), 256)
    out = torch.zeros(256, 64)
    s.fill(out)
    first = out.clone()
    s.fill(out)
    fresh = _sampler(feature_probs(64, 0.05, "uniform"), 256)
    fresh.sample()
    assert torch.equal(out, fresh.sample())  # nothing of the first batch survives
    assert not torch.equal(first, out)


def test_abs_task_density_and_signs():
    N, batch, eps = 256, 4096, 1 / 16
    s = _sampler(feature_probs(N, eps, "uniform"), batch, signed=True)
    v = s.sample()
    nonzero = (v != 0).sum().double()
    # v = v1 - v2 with each at eps/2: P(nonzero) = 1 - (1 - eps/2)^2
    p = 1 - (1 - eps / 2) ** 2
    n = batch * N
    assert abs(float(nonzero) - n * p) < 5.5 * math.sqrt(n * p * (1 - p))
    pos, neg = float((v > 0).sum()), float((v < 0).sum())
    assert abs(pos - neg) < 5.5 * math.sqrt(pos + neg)
    assert float(v.abs().max()) < 1


def test_embedder_unit_columns_and_spread():
    E = make_embedder(512, 64, generator(3, 0))
    assert E.shape == (64, 512)
    torch.testing.assert_close(E.norm(dim=0), torch.ones(512), rtol=1e-5, atol=1e-5)
    # as spread as a frame allows: E E^T close to (N/m) I
    gram = E @ E.T
    assert float((gram - 8 * torch.eye(64)).abs().max()) < 1.0


def test_streams_are_distinct_and_reproducible():
    assert stream_seed(0, 0) != stream_seed(0, 1) != stream_seed(1, 0)
    assert stream_seed(5, 1) == stream_seed(5, 1)
