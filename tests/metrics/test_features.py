"""Metrics on hand-built models with known answers, and the paper's metric against a plain-loop reference."""

from __future__ import annotations

import math

import pytest
import torch

from toymodels.metrics.features import (
    activation,
    capacity,
    dims_per_feature,
    em_metrics,
    feature_dimensionality,
    is_dead,
    is_mono,
    mono_ratio,
    multi_feature_probe,
    participation,
    single_feature_activations,
)

METRIC_NAMES = {
    "mono_neurons", "mono_per_feature", "mono_per_neuron", "features_covered", "dead_neurons",
    "mean_participation", "mean_bias", "min_bias", "max_bias", "positive_bias_neurons", "mean_capacity",
    "dims_per_feature",
}  # fmt: skip


def batch(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Add the instance axis (I = 1)."""
    return [t[None].double() for t in tensors]


def identity_model(rows: list[list[float]], biases: list[float]) -> tuple[torch.Tensor, ...]:
    """W1 (1, k, N), b1 (1, k), E = identity (1, N, N): neuron n's pre-activation on feature j is rows[n][j] + b."""
    W1 = torch.tensor(rows, dtype=torch.float64)
    return (*batch(W1, torch.tensor(biases), torch.eye(W1.shape[1])),)


def unit_columns(*shape: int, generator: torch.Generator) -> torch.Tensor:
    E = torch.randn(*shape, generator=generator, dtype=torch.float64)
    return E / E.norm(dim=-2, keepdim=True)


def random_model(I=3, k=16, N=8, m=4, seed=0):
    """Random W1, E and biases around -1, so that some neurons fire for exactly one feature."""
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(I, k, m, generator=g, dtype=torch.float64)
    b1 = torch.randn(I, k, generator=g, dtype=torch.float64) * 0.5 - 1.0
    return W1, b1, unit_columns(I, m, N, generator=g)


# ---------------------------------------------------------------------------------------------- activations
def test_activation_definitions():
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    assert torch.equal(activation(x, "relu"), x.clamp(min=0))
    exact_gelu = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    torch.testing.assert_close(activation(x, "gelu"), exact_gelu)
    torch.testing.assert_close(activation(x, "solu"), x * torch.exp(x))
    with pytest.raises(ValueError, match="nonlinearity"):
        activation(x, "softmax")


def test_single_feature_activations_amplitude():
    W1, b1, E = identity_model([[2.0, 0.5], [-1.0, 1.0]], [-0.5, 0.25])
    sfa = single_feature_activations(W1, b1, E, "relu", amplitude=0.5)
    torch.testing.assert_close(sfa[0], torch.tensor([[0.5, 0.0], [0.0, 0.75]], dtype=torch.float64))


# ------------------------------------------------------------------------------------------ hand-built models
def test_every_neuron_reads_one_feature():
    W1, b1, E = identity_model(torch.eye(4).tolist(), [-0.5] * 4)
    met = em_metrics(W1, b1, E, "relu")
    assert set(met) == METRIC_NAMES
    assert met["mono_neurons"].item() == 4
    assert met["mono_per_feature"].item() == 1.0 and met["mono_per_neuron"].item() == 1.0
    assert met["features_covered"].item() == 1.0
    assert met["dead_neurons"].item() == 0
    assert met["mean_participation"].item() == pytest.approx(1.0)
    assert met["mean_bias"].item() == -0.5 and met["positive_bias_neurons"].item() == 0


def test_two_feature_neuron_is_not_mono_and_dead_neuron_is_dead():
    rows = [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]
    W1, b1, E = identity_model(rows, [-0.5, -0.5, -2.0])
    sfa = single_feature_activations(W1, b1, E, "relu")
    assert is_mono(sfa)[0].tolist() == [True, False, False]
    assert is_dead(sfa)[0].tolist() == [False, False, True]
    torch.testing.assert_close(mono_ratio(sfa)[0, :2], torch.tensor([1.0, 0.5], dtype=torch.float64))
    torch.testing.assert_close(participation(sfa)[0], torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64))
    met = em_metrics(W1, b1, E, "relu")
    assert met["mono_neurons"].item() == 1 and met["dead_neurons"].item() == 1
    assert met["features_covered"].item() == 0.25
    assert met["mean_participation"].item() == pytest.approx(1.5)  # live neurons only
    assert met["min_bias"].item() == -2.0 and met["max_bias"].item() == -0.5


def test_duplicate_mono_neurons_count_towards_mono_but_not_coverage():
    rows = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [2, 0, 0, 0]]
    met = em_metrics(*identity_model(rows, [-0.5] * 6), "relu")
    assert met["mono_per_feature"].item() == 1.5
    assert met["features_covered"].item() == 1.0
    # three neurons all for feature 0: coverage counts the feature once
    met = em_metrics(*identity_model(rows[4:] + rows[:1], [-0.5] * 3), "relu")
    assert met["mono_per_feature"].item() == 0.75 and met["features_covered"].item() == 0.25


def test_positive_bias_neuron_fires_on_everything():
    W1, b1, E = identity_model([[1, 0, 0, 0], [0.1, 0.1, 0.1, 0.1]], [-0.5, 1.0])
    met = em_metrics(W1, b1, E, "relu")
    assert met["mono_neurons"].item() == 1 and met["positive_bias_neurons"].item() == 1
    assert met["mean_participation"].item() == pytest.approx((1 + 4) / 2)


@pytest.mark.parametrize("nonlinearity", ["relu", "gelu", "solu"])
def test_all_dead_and_zero_models_give_finite_values(nonlinearity):
    W1, b1, E = random_model(I=2, k=5, N=6, m=3)
    for w, b in [(W1, torch.full_like(b1, -50.0)), (torch.zeros_like(W1), torch.zeros_like(b1))]:
        met = em_metrics(w, b, E, nonlinearity)
        for name, value in met.items():
            assert value.shape == (2,) and torch.isfinite(value).all(), name
        assert (met["dead_neurons"] == 5).all() and (met["mono_neurons"] == 0).all()
        assert (met["mean_participation"] == 0).all() and (met["features_covered"] == 0).all()
    zero = em_metrics(torch.zeros_like(W1), torch.zeros_like(b1), E, nonlinearity)
    assert (zero["mean_capacity"] == 0).all() and (zero["dims_per_feature"] == 0).all()


# ---------------------------------------------------------------------------------------- GeLU / SoLU handling
@pytest.mark.parametrize("nonlinearity", ["gelu", "solu"])
def test_negative_activations_do_not_inflate_the_ratio(nonlinearity):
    # pre-activations: neuron 0 = [1, -.5, -.5, -.5] (one positive response), neuron 1 = [1, .5, -.5, -.5]
    W1, b1, E = identity_model([[1.5, 0, 0, 0], [1.5, 1.0, 0, 0]], [-0.5, -0.5])
    sfa = single_feature_activations(W1, b1, E, nonlinearity)
    assert (sfa[0, 0, 1:] < 0).all()  # small negative responses on the other features
    raw = sfa.amax(-1) / (1e-10 + sfa.sum(-1))
    assert raw[0, 0] > 1  # the paper's raw ratio would exceed 1
    ratio = mono_ratio(sfa)
    assert ratio[0, 0].item() == pytest.approx(1.0) and (ratio <= 1).all()
    pos = sfa.clamp(min=0)[0, 1]
    assert ratio[0, 1].item() == pytest.approx((pos[0] / pos.sum()).item())
    assert is_mono(sfa)[0].tolist() == [True, False]
    assert not is_dead(sfa).any()
    assert participation(sfa)[0, 0].item() == pytest.approx(1.0)


@pytest.mark.parametrize("nonlinearity", ["gelu", "solu"])
def test_ratio_never_exceeds_one_on_random_models(nonlinearity):
    W1, b1, E = random_model(I=3, k=32, N=8, m=4, seed=1)
    ratio = mono_ratio(single_feature_activations(W1, b1, E, nonlinearity))
    assert (ratio >= 0).all() and (ratio <= 1).all()


# ------------------------------------------------------------------------------------------------- geometry
def test_capacity_of_known_embeddings():
    torch.testing.assert_close(capacity(torch.eye(3)[None]), torch.ones(1, 3))
    antipodal = torch.tensor([[[1.0, -1.0]]])  # two features on one line, opposite signs
    torch.testing.assert_close(capacity(antipodal), torch.full((1, 2), 0.5))
    angles = 2 * math.pi * torch.arange(5, dtype=torch.float64) / 5
    pentagon = torch.stack([angles.cos(), angles.sin()])[None]
    torch.testing.assert_close(capacity(pentagon), torch.full((1, 5), 0.4, dtype=torch.float64))
    # a zero column is an ignored feature: capacity 0, and it does not disturb the others
    with_zero = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    torch.testing.assert_close(capacity(with_zero), torch.tensor([[1.0, 1.0, 0.0]]))


def test_capacity_on_random_W():
    g = torch.Generator().manual_seed(2)
    W = torch.randn(4, 3, 7, generator=g, dtype=torch.float64)
    C = capacity(W)
    assert feature_dimensionality is capacity
    torch.testing.assert_close(feature_dimensionality(W), C)
    assert ((C >= 0) & (C <= 1)).all()
    assert (C.sum(-1) <= 3 + 1e-9).all()
    # TMS form: D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2
    Wi = W[0]
    unit = Wi / Wi.norm(dim=0)
    D = Wi.norm(dim=0) ** 2 / ((unit.T @ Wi) ** 2).sum(-1)
    torch.testing.assert_close(C[0], D)


def test_dims_per_feature():
    torch.testing.assert_close(dims_per_feature(torch.eye(3)[None]), torch.ones(1))
    torch.testing.assert_close(dims_per_feature(torch.tensor([[[1.0, -1.0]]])), torch.tensor([0.5]))
    assert dims_per_feature(torch.zeros(2, 3, 4)).tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------------------- multi-feature probe
def test_probe_catches_neuron_mono_on_lone_features_but_firing_on_a_pair():
    rows = [
        [1.0, 0.0, 0.0, 0.0],  # truly mono for feature 0
        [0.6, 0.6, 1.0, 0.0],  # mono for feature 2 on lone features, but fires on features 0 and 1 together
    ]
    W1, b1, E = identity_model(rows, [-0.5, -0.7])
    assert is_mono(single_feature_activations(W1, b1, E, "relu"))[0].all()
    g = torch.Generator().manual_seed(0)
    probe = multi_feature_probe(W1, b1, E, "relu", torch.full((1, 1), 0.5), n_samples=512, generator=g)
    assert probe["false_mono"].tolist() == [1]
    assert probe["false_mono_neurons"][0].tolist() == [False, True]
    assert probe["context_features"][0].tolist() == [0, 2]  # features 0 and 1; feature 3 (weight 0) not counted
    assert probe["fires_all_but_one"][0].tolist() == [3, 4]
    assert probe["own_feature"][0].tolist() == [0, 2]
    assert probe["off_feature_triggers"][0, 0] == 0 and probe["off_feature_triggers"][0, 1] > 0
    assert 0 < probe["fire_rate"][0, 0] < 1


def test_probe_all_but_one_alone_flags_neuron():
    # With probability 0 no random input has two features, so only the all-but-one probe can catch neuron 1.
    W1, b1, E = identity_model([[1, 0, 0, 0, 0], [1, 0.3, 0.3, 0.3, 0.3]], [-0.5, -0.8])
    probe = multi_feature_probe(W1, b1, E, "gelu", torch.zeros(1, 5), n_samples=64)
    assert probe["mono"][0].tolist() == [True, True]
    assert probe["false_mono"].tolist() == [1] and probe["false_mono_neurons"][0].tolist() == [False, True]
    assert probe["fires_all_but_one"][0].tolist() == [4, 5]
    assert probe["context_features"][0].tolist() == [0, 0] and probe["fire_rate"].sum() == 0


def test_probe_batched_equals_per_instance_and_chunking(monkeypatch):
    import toymodels.metrics as metrics

    W1, b1, E = random_model(I=3, k=8, N=6, m=3, seed=3)
    probs = torch.tensor([[0.3], [0.5], [0.2]], dtype=torch.float64)

    def gens():
        return [torch.Generator().manual_seed(10 + i) for i in range(3)]

    full = multi_feature_probe(W1, b1, E, "relu", probs, n_samples=100, generator=gens())
    monkeypatch.setattr(metrics, "PROBE_BLOCK_ELEMENTS", 3 * 8 * 7)  # chunks of 7 inputs
    chunked = multi_feature_probe(W1, b1, E, "relu", probs, n_samples=100, generator=gens())
    for name in full:
        torch.testing.assert_close(chunked[name], full[name])
    for i, g in enumerate(gens()):
        single = multi_feature_probe(W1[i : i + 1], b1[i : i + 1], E[i : i + 1], "relu", probs[i : i + 1], 100, [g])
        for name in full:
            torch.testing.assert_close(single[name][0], full[name][i])


# ------------------------------------------------------------------------------------ reference implementation
def loop_reference(W1, b1, E, threshold=0.999):
    """The paper's metric written out with plain Python floats (ReLU)."""
    I, k, m = W1.shape
    N = E.shape[-1]
    W1, b1, E = W1.tolist(), b1.tolist(), E.tolist()
    out = []
    for i in range(I):
        ratios, mono, dead, feature, pr = [], [], [], [], []
        for n in range(k):
            acts = []
            for j in range(N):
                pre = sum(W1[i][n][c] * E[i][c][j] for c in range(m)) + b1[i][n]
                acts.append(max(pre, 0.0))
            ratio = max(acts) / (1e-10 + sum(acts))
            ratios.append(ratio)
            mono.append(ratio > threshold)
            dead.append(max(acts) <= 0)
            feature.append(acts.index(max(acts)))
            pr.append(sum(acts) ** 2 / sum(a * a for a in acts) if max(acts) > 0 else 0.0)
        covered = {feature[n] for n in range(k) if mono[n]}
        live_pr = [pr[n] for n in range(k) if not dead[n]]
        out.append(
            {
                "ratios": ratios,
                "mono_neurons": sum(mono),
                "features_covered": len(covered) / N,
                "dead_neurons": sum(dead),
                "mean_participation": sum(live_pr) / len(live_pr) if live_pr else 0.0,
            }
        )
    return out


def loop_capacity(W):
    d, N = len(W), len(W[0])
    dot = [[sum(W[r][a] * W[r][b] for r in range(d)) for b in range(N)] for a in range(N)]
    return [dot[a][a] ** 2 / sum(x * x for x in dot[a]) if dot[a][a] > 0 else 0.0 for a in range(N)]


def test_paper_metric_matches_loop_reference():
    W1, b1, E = random_model(I=3, k=16, N=8, m=4, seed=0)
    met = em_metrics(W1, b1, E, "relu")
    ratio = mono_ratio(single_feature_activations(W1, b1, E, "relu"))
    ref = loop_reference(W1, b1, E)
    assert 0 < sum(r["mono_neurons"] for r in ref) < 3 * 16  # the random model has mono and non-mono neurons
    for i, r in enumerate(ref):
        torch.testing.assert_close(ratio[i], torch.tensor(r["ratios"], dtype=torch.float64))
        for name in ("mono_neurons", "features_covered", "dead_neurons", "mean_participation"):
            assert met[name][i].item() == pytest.approx(r[name]), name
        assert met["mono_per_feature"][i].item() == pytest.approx(r["mono_neurons"] / 8)
        net = (W1[i] @ E[i]).tolist()
        assert met["mean_capacity"][i].item() == pytest.approx(sum(loop_capacity(net)) / 8)
        assert met["dims_per_feature"][i].item() == pytest.approx(16 / sum(x * x for row in net for x in row))
        assert met["mean_bias"][i].item() == pytest.approx(sum(b1[i].tolist()) / 16)
        assert met["positive_bias_neurons"][i].item() == sum(b > 0 for b in b1[i].tolist())


@pytest.mark.parametrize("nonlinearity", ["relu", "gelu", "solu"])
def test_batched_equals_per_instance(nonlinearity):
    W1, b1, E = random_model(I=3, k=16, N=8, m=4, seed=4)
    full = em_metrics(W1, b1, E, nonlinearity)
    for i in range(3):
        single = em_metrics(W1[i : i + 1], b1[i : i + 1], E[i : i + 1], nonlinearity)
        for name in METRIC_NAMES:
            torch.testing.assert_close(single[name][0], full[name][i])


def test_metrics_follow_float32_inputs():
    W1, b1, E = (t.float() for t in random_model(I=2, k=4, N=5, m=3))
    met = em_metrics(W1, b1, E, "relu")
    assert all(v.dtype == torch.float32 for v in met.values())


def test_abs_probe_sees_both_signs():
    # neuron 0 answers +v_0, neuron 1 answers -v_0 (dead to the +e_i probe alone), neuron 2 answers both signs of
    # feature 1 (|v_1| through a positive bias), neuron 3 is dead on both signs
    E = torch.eye(2)[None]
    W1 = torch.tensor([[[1.0, 0.0], [-1.0, 0.0], [0.0, 0.5], [0.0, 0.0]]])
    b1 = torch.tensor([[0.0, 0.0, 0.6, -1.0]])
    plus_only = em_metrics(W1, b1, E, "relu")
    both = em_metrics(W1, b1, E, "relu", signed=True)
    assert plus_only["dead_neurons"].item() == 2 and both["dead_neurons"].item() == 1
    assert both["mono_neurons"].item() == 2 and both["mono_per_feature"].item() == 1.0  # N = 2, ceiling 2
    assert both["features_covered"].item() == 0.5  # +v_0 and -v_0 of the 4 signed features
    torch.testing.assert_close(both["mean_capacity"], plus_only["mean_capacity"])  # geometry reads E itself
