"""The Fourier measures of docs/papers.md §5.3, each on hand-built weights or logits whose answer is known in closed
form, and the checkpoint metrics on a hand-built lookup-table MLP (every metric's value derived by hand below)."""

import math

import pytest
import torch

from toymodels.config import ExperimentConfig
from toymodels.families.grokking import fourier
from toymodels.families.grokking.evaluate import grok_evaluate

P = 7  # frequencies 1..3


def wave(k: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cos(2 * math.pi * k * x / P), torch.sin(2 * math.pi * k * x / P)


def test_the_basis_is_orthonormal_and_laid_out_as_the_papers_code():
    F = fourier.fourier_basis(P)
    torch.testing.assert_close(F @ F.T, torch.eye(P, dtype=torch.float64), atol=1e-12, rtol=0)
    x = torch.arange(P, dtype=torch.float64)
    c, s = wave(2, x)
    torch.testing.assert_close(F[3], c / c.norm())  # row 2k-1 = cos_k, row 2k = sin_k
    torch.testing.assert_close(F[4], s / s.norm())
    assert torch.allclose(F[0], torch.full((P,), 1 / math.sqrt(P), dtype=torch.float64))


def test_an_exact_fourier_embedding_has_its_frequencies_as_key_and_the_closed_form_gini():
    x = torch.arange(P, dtype=torch.float64)
    # tokens -> 4 features: cos/sin of frequency 1 with amplitude 3, cos/sin of frequency 3 with amplitude 1
    c1, s1 = wave(1, x)
    c3, s3 = wave(3, x)
    W = torch.stack([3 * c1, 3 * s1, c3, s3], dim=1)[None]
    comps = fourier.component_norms(W)
    freq = fourier.frequency_norms(comps)[0]
    assert freq[1] < 1e-12 and freq[0] > 2.9 * freq[2] > 0  # frequency 2 absent, 1 three times 3
    assert fourier.key_frequencies(freq).tolist() == [True, False, True]
    assert fourier.key_frequencies(freq, fraction=0.5).tolist() == [True, False, False]
    # equal norms on 2s of P components and zeros elsewhere give Gini 1 - 2s / P (derived in docs/papers.md §5.3)
    Weq = torch.stack([c1, s1, c3, s3], dim=1)[None]
    assert fourier.gini(fourier.component_norms(Weq)).item() == pytest.approx(1 - 4 / P, abs=1e-12)


@pytest.mark.parametrize("values, expected", [([1.0, 1.0, 1.0, 1.0], 0.0), ([0.0, 0.0, 0.0, 5.0], 0.75),
                                              ([0.0, 0.0, 1.0, 1.0], 0.5), ([1.0, 0.0, 1.0, 0.0], 0.5)])
def test_gini_of_known_vectors(values, expected):
    assert fourier.gini(torch.tensor(values)).item() == pytest.approx(expected, abs=1e-12)


def delta_logits(M: float = 10.0) -> torch.Tensor:
    """M * [c == a + b mod P] over every pair: (1, P^2, P)."""
    a = torch.arange(P).view(P, 1, 1)
    b = torch.arange(P).view(1, P, 1)
    c = torch.arange(P).view(1, 1, P)
    return (M * ((a + b - c) % P == 0).double()).reshape(1, P * P, P)


def cos_sum(keep: list[int], M: float = 10.0) -> torch.Tensor:
    """M / P (1 + 2 sum_{k in keep} cos(w_k (a + b - c))): the constant and the key waves of ``delta_logits``."""
    a = torch.arange(P, dtype=torch.float64).view(P, 1, 1)
    b = torch.arange(P, dtype=torch.float64).view(1, P, 1)
    c = torch.arange(P, dtype=torch.float64).view(1, 1, P)
    out = torch.ones(P, P, P, dtype=torch.float64)
    for k in keep:
        out = out + 2 * torch.cos(2 * math.pi * k * (a + b - c) / P)
    return (M / P * out).reshape(1, P * P, P)


@pytest.mark.parametrize("keep", [[1], [2, 3], [1, 2, 3]])
def test_restricted_and_excluded_logits_of_the_lookup_table_are_the_closed_form(keep):
    # delta(a + b - c) = (1/P) (1 + 2 sum_k cos(w_k (a + b - c))): keeping the frequencies `keep` keeps their terms
    L = delta_logits()
    mask = torch.tensor([[k in keep for k in range(1, 4)]])
    torch.testing.assert_close(fourier.restricted_logits(L, mask), cos_sum(keep), atol=1e-10, rtol=0)
    torch.testing.assert_close(fourier.excluded_logits(L, mask), L - cos_sum(keep) + 10.0 / P, atol=1e-10, rtol=0)


def test_subtraction_uses_the_waves_of_a_minus_b():
    a = torch.arange(P).view(P, 1, 1)
    b = torch.arange(P).view(1, P, 1)
    c = torch.arange(P).view(1, 1, P)
    L = (10.0 * ((a - b - c) % P == 0).double()).reshape(1, P * P, P)
    everything = torch.ones(1, 3, dtype=torch.bool)
    torch.testing.assert_close(fourier.restricted_logits(L, everything, sign=-1), L, atol=1e-10, rtol=0)
    assert (fourier.restricted_logits(L, everything, sign=1) - L).abs().max() > 1  # the (a+b) waves miss it


def test_a_neuron_of_one_frequency_is_explained_by_it_and_a_mixed_one_by_half():
    a = torch.arange(P, dtype=torch.float64).view(P, 1)
    b = torch.arange(P, dtype=torch.float64).view(1, P)
    ca, sa = wave(2, a)
    cb, _ = wave(2, b)
    pure = ca * cb + 0.5 * sa + 0.3 * cb  # quadratic and linear terms of frequency 2 only
    c1, _ = wave(1, a)
    _, s3 = wave(3, b)
    mixed = c1 + 0.9 * s3 + 0 * b  # variance 1 : 0.81 in frequencies 1 and 3
    acts = torch.stack([pure.flatten(), mixed.flatten(), torch.ones(P * P, dtype=torch.float64)], dim=-1)
    k, share = fourier.neuron_frequencies(acts)
    assert k.tolist()[:2] == [2, 1] and k[2] == 0  # the constant neuron has no frequency
    torch.testing.assert_close(share, torch.tensor([1.0, 1 / 1.81, 0.0], dtype=torch.float64), atol=1e-10, rtol=0)


def lookup_mlp(M: float = 10.0) -> tuple[list[ExperimentConfig], dict[str, torch.Tensor]]:
    """An MLP with one neuron per pair (a', b'): it fires (1) exactly on its pair and writes M to the answer."""
    cfg = ExperimentConfig.from_flat({"model": "grokking", "grok_arch": "mlp", "modulus": P, "d_mlp": P * P,
                                      "train_frac": 0.5})
    W_in = torch.zeros(2, P, P * P)
    W_out = torch.zeros(P * P, P)
    for a in range(P):
        for b in range(P):
            W_in[0, a, a * P + b] = 1.0
            W_in[1, b, a * P + b] = 1.0
            W_out[a * P + b, (a + b) % P] = M
    return [cfg], {"W_in": W_in[None], "b_in": -torch.ones(1, P * P), "W_out": W_out[None], "b_out": torch.zeros(1, P)}


def test_checkpoint_metrics_of_a_lookup_table_model_are_the_hand_derived_values():
    cfgs, t = lookup_mlp()
    m = {k: v.item() for k, v in grok_evaluate(cfgs, t).items()}
    loss = math.log(1 + (P - 1) * math.exp(-10.0))  # M = 10 on the answer, 0 elsewhere
    assert m["train_acc"] == m["test_acc"] == 1.0
    assert m["train_loss"] == pytest.approx(loss, rel=1e-9) and m["test_loss"] == pytest.approx(loss, rel=1e-9)
    # every frequency carries the same norm (each neuron reads a delta): all key, Gini 0, the first strongest
    assert m["n_key_freqs"] == 3 and m["top_freq"] == 1 and m["embed_gini"] == pytest.approx(0, abs=1e-12)
    assert m["logit_gini"] == pytest.approx(0, abs=1e-12)
    # all waves kept: the restricted logits are the logits; all removed: a constant M / P, a uniform guess
    assert m["restricted_loss"] == pytest.approx(loss, rel=1e-9)
    assert m["excluded_loss"] == pytest.approx(math.log(P), rel=1e-9)
    # a neuron firing on one pair spreads evenly over the P^2 - 1 centred 2D components; a frequency holds 8
    assert m["neuron_fve"] == pytest.approx(8 / (P * P - 1), rel=1e-6) and m["neurons_explained"] == 0
    assert m["weight_norm"] == pytest.approx(2 * P * P + P * P + P * P * 100, rel=1e-12)


def test_a_model_right_only_on_its_training_pairs_has_test_accuracy_zero():
    cfgs, t = lookup_mlp()
    from toymodels.families.grokking.data import train_mask
    train = train_mask(cfgs[0])
    for pair in torch.nonzero(~train).flatten().tolist():  # off the training set: answer (a + b + 1) mod P
        a, b = divmod(pair, P)
        t["W_out"][0, pair] = 0
        t["W_out"][0, pair, (a + b + 1) % P] = 10.0
    m = grok_evaluate(cfgs, t)
    assert m["train_acc"].item() == 1.0 and m["test_acc"].item() == 0.0
    assert m["test_loss"].item() == pytest.approx(10 + math.log(1 + (P - 1) * math.exp(-10.0)), rel=1e-9)
