"""Counter-based RNG (Philox-4x32-10 in int64 tensor ops) and the batched feature sampler built on it."""

import pytest
import torch
from scipy import stats

from toymodels.engine.counter_rng import (
    CounterFeatureSampler,
    counter_uniform,
    instance_keys,
    philox4x32_10,
)
from toymodels.engine.data import DATA_STREAM, feature_probs, stream_seed

# Random123's tests/kat_vectors, the three "philox4x32 10" lines: counter (4 words), key (2 words), output (4 words).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def _philox_ref(ctr, key):
    """Philox-4x32-10 in plain Python ints (full-width products, no 16-bit splitting): an independent check."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & 0xFFFFFFFF, (p0 >> 32) ^ c3 ^ k1, p0 & 0xFFFFFFFF
    return c0, c1, c2, c3


def _corr(a, b):
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    out = philox4x32_10(ctr, tuple(torch.tensor(k) for k in key))
    assert tuple(int(w) for w in out) == expected
    assert _philox_ref(ctr, key) == expected


def test_philox_matches_python_ints_on_random_words():
    g = torch.Generator().manual_seed(0)
    words = torch.randint(0, 2**32, (64, 6), generator=g, dtype=torch.int64)
    out = torch.stack(philox4x32_10(tuple(words[:, :4].T), tuple(words[:, 4:].T)), dim=1)
    expected = [_philox_ref(tuple(row[:4]), tuple(row[4:])) for row in words.tolist()]
    assert out.tolist() == [list(e) for e in expected]


def test_counter_uniform_is_built_from_the_kat_block():
    """Element k is word k % 4 of block k // 4; counter (block, step, 0, 0): zero key and step give KAT line 1."""
    u = counter_uniform(torch.zeros(1, 2, dtype=torch.int64), 0, (4,))
    expected = torch.tensor([(w >> 8) * 2.0**-24 for w in KAT[0][2]], dtype=torch.float32)
    assert torch.equal(u[0], expected)
    # step 2**32 + 5 lands in counter words 1 and 2
    key = (0x12345678, 0x9ABCDEF0)
    u = counter_uniform(torch.tensor([key]), 2**32 + 5, (8,), dtype=torch.float64)
    words = [w for b in range(2) for w in _philox_ref((b, 5, 1, 0), key)]
    assert u[0].tolist() == [(w >> 8) * 2.0**-24 for w in words]


def test_instance_keys_split_the_stream_seed():
    keys = instance_keys([3, 7], DATA_STREAM, "cpu")
    assert keys.dtype == torch.int64 and keys.shape == (2, 2)
    for row, seed in zip(keys.tolist(), [3, 7]):
        assert row[0] + (row[1] << 32) == stream_seed(seed, DATA_STREAM)
        assert 0 <= row[0] < 2**32 and 0 <= row[1] < 2**32


def test_deterministic_and_distinct():
    keys = instance_keys([0, 1, 2], DATA_STREAM, "cpu")
    a = counter_uniform(keys, 5, (16, 8))
    assert torch.equal(a, counter_uniform(keys, 5, (16, 8)))
    assert torch.equal(a, counter_uniform(keys, torch.tensor(5), (16, 8)))  # a tensor step: same numbers
    assert not torch.equal(a, counter_uniform(keys, 6, (16, 8)))  # steps
    assert not torch.equal(a, counter_uniform(instance_keys([0, 1, 2], 0, "cpu"), 5, (16, 8)))  # streams
    assert a[0].unique().numel() == a[0].numel()  # positions (128 24-bit draws: a repeat is ~5e-4 likely)
    assert not torch.equal(a[0], a[1]) and not torch.equal(a[1], a[2])  # seeds
    # an instance's numbers do not depend on the others in the group, nor on the shape's split
    for j, seed in enumerate([0, 1, 2]):
        assert torch.equal(counter_uniform(instance_keys([seed], DATA_STREAM, "cpu"), 5, (16, 8))[0], a[j])
    assert torch.equal(counter_uniform(keys, 5, (128,)), a.reshape(3, 128))
    assert torch.equal(counter_uniform(keys, 5, (127,)), a.reshape(3, 128)[:, :127])  # a ragged last block


def test_range_never_one():
    # all-ones words are the largest output: 2**24 - 1 over 2**24 stays below 1 in float32
    assert torch.tensor((2**24 - 1) * 2.0**-24, dtype=torch.float32) < 1.0
    u = counter_uniform(instance_keys([0, 1], DATA_STREAM, "cpu"), 0, (2**16,))
    assert u.dtype == torch.float32 and u.shape == (2, 2**16)
    assert bool((u >= 0).all()) and bool((u < 1).all())
    assert u.min() < 1e-3 and u.max() > 1 - 1e-3


def test_uniform_statistics():
    n = 2**18
    u = counter_uniform(instance_keys([0], DATA_STREAM, "cpu"), 17, (n,), dtype=torch.float64)[0]
    se_mean, se_var = (1 / 12 / n) ** 0.5, (1 / 180 / n) ** 0.5  # Var(U) = 1/12, Var((U - 1/2)^2) = 1/180
    assert abs(float(u.mean()) - 0.5) < 5 * se_mean
    assert abs(float(u.var()) - 1 / 12) < 5 * se_var
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-4


def test_low_correlations():
    n = 2**16
    bound = 5 / n**0.5
    keys = instance_keys([10, 11], DATA_STREAM, "cpu")  # adjacent seeds
    u = counter_uniform(keys, 0, (n,))
    assert abs(_corr(u[0], counter_uniform(keys, 1, (n,))[0])) < bound  # consecutive steps
    assert abs(_corr(u[0, :-1], u[0, 1:])) < bound  # adjacent positions
    assert abs(_corr(u[0, 0::4], u[0, 1::4])) < 2 * bound  # adjacent words of one block
    assert abs(_corr(u[0], u[1])) < bound  # adjacent seeds


def _group_probs(N, eps_list, distribution="uniform"):
    return torch.stack([feature_probs(N, eps, distribution) for eps in eps_list])


def test_sampler_rates_and_values():
    eps_list, B, N = [1 / 64, 1 / 8, 0.5], 256, 64
    sampler = CounterFeatureSampler(_group_probs(N, eps_list), B, [0, 1, 2], "cpu")
    v = torch.full((3, B, N), float("nan"))
    sampler.fill(v, 0)
    assert not v.isnan().any() and bool((v >= 0).all()) and bool((v < 1).all())
    n = B * N
    for i, eps in enumerate(eps_list):
        frac = float((v[i] != 0).float().mean())
        assert abs(frac - eps) < 5 * (eps * (1 - eps) / n) ** 0.5
        assert stats.kstest(v[i][v[i] != 0].numpy(), "uniform").pvalue > 1e-4
    again = torch.zeros_like(v)
    sampler.fill(again, 0)
    assert torch.equal(v, again)
    sampler.fill(again, 1)
    assert not torch.equal(v, again)


def test_sampler_power_law_per_feature_rates():
    """p varies over features: feature 0 (p = 1) is always on, the tail is rare."""
    B, N = 2048, 64
    probs = _group_probs(N, [1 / 16], "power_law")
    v = torch.zeros(1, B, N)
    CounterFeatureSampler(probs, B, [5], "cpu").fill(v, 3)
    rate = (v[0] != 0).double().mean(0)
    assert float(rate[0]) == 1.0
    assert bool(((rate - probs[0]).abs() <= 5 * (probs[0] * (1 - probs[0]) / B).sqrt() + 1e-9).all())


def test_sampler_signed():
    eps_list, B, N = [1 / 16, 0.5], 256, 64
    sampler = CounterFeatureSampler(_group_probs(N, eps_list), B, [0, 1], "cpu", signed=True)
    v = torch.zeros(2, B, N)
    sampler.fill(v, 7)
    n = B * N
    assert not v.isnan().any() and bool((v > -1).all()) and bool((v < 1).all())
    for i, eps in enumerate(eps_list):
        q = eps / 2  # each of v1, v2 is on with p/2: v > 0 needs v1 on and (v2 off, or on and smaller)
        p_pos = q * (1 - q) + q * q / 2
        for frac in (float((v[i] > 0).float().mean()), float((v[i] < 0).float().mean())):
            assert abs(frac - p_pos) < 5 * (p_pos * (1 - p_pos) / n) ** 0.5


def test_sampler_is_independent_of_the_group():
    probs = _group_probs(32, [0.1, 0.3, 0.2])
    group = torch.zeros(3, 16, 32)
    CounterFeatureSampler(probs, 16, [4, 5, 6], "cpu").fill(group, 9)
    alone = torch.zeros(1, 16, 32)
    CounterFeatureSampler(probs[1:2], 16, [5], "cpu").fill(alone, 9)
    assert torch.equal(alone[0], group[1])


def test_sampler_rejects_wrong_shapes():
    sampler = CounterFeatureSampler(_group_probs(8, [0.1, 0.2]), 4, [0, 1], "cpu")
    with pytest.raises(ValueError, match="shape"):
        sampler.fill(torch.zeros(2, 4, 9), 0)
    with pytest.raises(ValueError, match="seeds"):
        CounterFeatureSampler(_group_probs(8, [0.1, 0.2]), 4, [0], "cpu")


@pytest.mark.parametrize("signed", [False, True])
def test_fill_has_no_host_sync(monkeypatch, signed):
    sampler = CounterFeatureSampler(_group_probs(32, [0.1, 0.3]), 8, [0, 1], "cpu", signed=signed)
    v = torch.zeros(2, 8, 32)
    step = torch.tensor(3)

    def sync(*args, **kwargs):
        raise AssertionError("host sync in fill")

    for name in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "nonzero"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    with pytest.raises(AssertionError):
        bool(torch.tensor(True))  # the patch is live
    sampler.fill(v, step)
    sampler.fill(v, 3)
    monkeypatch.undo()
    assert (v != 0).any()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("signed", [False, True])
def test_cpu_and_cuda_agree(signed):
    seeds = [0, 1, 2]
    keys = instance_keys(seeds, DATA_STREAM, "cpu")
    cpu = counter_uniform(keys, 2**33 + 11, (100, 7))
    cuda = counter_uniform(keys.cuda(), torch.tensor(2**33 + 11, device="cuda"), (100, 7))
    assert torch.equal(cpu, cuda.cpu())
    probs = _group_probs(64, [1 / 64, 0.1, 0.5])
    v_cpu, v_cuda = torch.zeros(3, 32, 64), torch.zeros(3, 32, 64, device="cuda")
    CounterFeatureSampler(probs, 32, seeds, "cpu", signed=signed).fill(v_cpu, 5)
    CounterFeatureSampler(probs, 32, seeds, "cuda", signed=signed).fill(v_cuda, 5)
    assert torch.equal(v_cpu, v_cuda.cpu())
