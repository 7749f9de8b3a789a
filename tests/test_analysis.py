"""Mechanism analysis on hand-built models whose mono thresholds, slopes and polysemantic block are known."""

from __future__ import annotations

import math

import pytest
import torch

from toymodels.activations import activation
from toymodels.analysis import explain_instance, explain_summary
from toymodels.metrics import em_metrics

F64 = torch.float64


def hand_built():
    """N = 4 features, identity embedding (m = 4), seven neurons.

    neurons 0-3: mono, W1 = 2 e_j, bias -0.5 (threshold 0.25), W2[j, j] = 0.75 (slope 1.5);
    neurons 4-5: positive bias 1, small positive weights: fire on everything, linear, rank-2 block;
    neuron 6: dead (reads -e_0 with bias -0.1).
    """
    N = 4
    W1 = torch.zeros(7, N, dtype=F64)
    W1[:4] = 2 * torch.eye(N, dtype=F64)
    W1[4] = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)
    W1[5] = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=F64)
    W1[6, 0] = -1.0
    b1 = torch.tensor([-0.5] * 4 + [1.0, 1.0, -0.1], dtype=F64)
    W2 = torch.zeros(N, 7, dtype=F64)
    W2[:, :4] = 0.75 * torch.eye(N, dtype=F64)
    W2[:, 4] = torch.tensor([0.5, -0.5, 0.25, 0.0], dtype=F64)
    W2[:, 5] = torch.tensor([0.1, 0.2, -0.3, 0.4], dtype=F64)
    W2[:, 6] = 1.0
    return W1, b1, W2, torch.eye(N, dtype=F64)


def test_neuron_table_of_hand_built_model():
    table = explain_instance(*hand_built(), "relu")
    assert list(table.columns[:7]) == ["neuron", "kind", "feature", "bias", "threshold", "slope", "participation"]
    assert table["kind"].tolist() == ["mono"] * 4 + ["poly"] * 2 + ["dead"]
    assert table["feature"].tolist() == [0, 1, 2, 3, 3, 0, -1]
    mono = table[table.kind == "mono"]
    assert mono["threshold"].tolist() == [0.25] * 4
    assert mono["slope"].tolist() == [1.5] * 4
    assert mono["bias"].tolist() == [-0.5] * 4
    assert table.loc[4:, "threshold"].isna().all() and table.loc[4:, "slope"].isna().all()
    assert table["features_firing"].tolist() == [1, 1, 1, 1, 4, 4, 0]
    acts = [1 + w for w in (0.1, 0.2, 0.3, 0.4)]  # bias 1 plus the weight on each lone feature
    expected_pr = sum(acts) ** 2 / sum(a * a for a in acts)
    assert table["participation"].tolist() == pytest.approx([1, 1, 1, 1, expected_pr, expected_pr, 0])


def test_summary_of_hand_built_model():
    W1, b1, W2, E = hand_built()
    s = explain_summary(W1, b1, W2, E, "relu")
    assert (s["n_mono"], s["n_poly"], s["n_dead"]) == (4, 2, 1)
    assert s["mono"] == [0, 1, 2, 3] and s["poly"] == [4, 5] and s["dead"] == [6]
    torch.testing.assert_close(s["poly_map"], W2[:, 4:6] @ W1[4:6])
    torch.testing.assert_close(s["poly_offset"], W2[:, 4] + W2[:, 5])
    assert s["poly_rank"] == 2
    assert s["poly_singular_values"][2:].abs().max() < 1e-12
    assert s["poly_linear_fraction"] == 1.0  # positive bias: linear regime on every lone feature
    assert set(s["neurons"]["kind"]) == {"mono", "poly", "dead"}


def test_summary_counts_agree_with_batched_metrics():
    g = torch.Generator().manual_seed(0)
    W1, W2 = torch.randn(12, 3, generator=g, dtype=F64), torch.randn(6, 12, generator=g, dtype=F64)
    b1 = torch.randn(12, generator=g, dtype=F64) - 0.8
    E = torch.randn(3, 6, generator=g, dtype=F64)
    E = E / E.norm(dim=0)
    s = explain_summary(W1, b1, W2, E, "gelu")
    met = em_metrics(W1[None], b1[None], E[None], "gelu")
    assert s["n_mono"] == met["mono_neurons"].item() and s["n_dead"] == met["dead_neurons"].item()
    assert s["n_mono"] + s["n_poly"] + s["n_dead"] == 12
    assert s["poly_rank"] <= 3  # rank of the poly block is at most m


def test_gram_fit_recovers_c_and_d_exactly():
    # Four always-on neurons with W1 = 0.5 I + 0.1, W2 = I: the block map is 0.5 E^T E + 0.1 with E = I.
    N = 4
    W1 = 0.5 * torch.eye(N, dtype=F64) + 0.1
    eye = torch.eye(N, dtype=F64)
    s = explain_summary(W1, torch.full((N,), 3.0, dtype=F64), eye, eye, "relu")
    assert s["n_poly"] == 4 and s["poly_rank"] == 4
    assert s["gram_c"] == pytest.approx(0.5) and s["gram_d"] == pytest.approx(0.1)
    assert s["gram_residual"] == pytest.approx(0.0, abs=1e-12)


def test_gram_fit_low_rank_embedding():
    # m = 3, N = 5: read-out W2 = c E^T through three always-on neurons gives M = c E^T E, rank 3 <= m.
    g = torch.Generator().manual_seed(1)
    E = torch.randn(3, 5, generator=g, dtype=F64)
    E = E / E.norm(dim=0)
    W1, b1 = torch.eye(3, dtype=F64), torch.full((3,), 5.0, dtype=F64)
    s = explain_summary(W1, b1, 0.7 * E.T, E, "relu")
    assert s["poly_rank"] == 3
    assert s["gram_c"] == pytest.approx(0.7) and s["gram_d"] == pytest.approx(0.0, abs=1e-12)
    assert s["gram_residual"] < 1e-10
    # a random block is not of that form
    W2 = torch.randn(5, 3, generator=g, dtype=F64)
    assert explain_summary(W1, b1, W2, E, "relu")["gram_residual"] > 0.1


def loop_loss(W1, b1, W2, E, nonlinearity, keep, amplitudes):
    """Lone-feature decoder loss with plain loops (the definition in lone_feature_loss)."""
    k, N, out = W1.shape[0], E.shape[1], W2.shape[0]
    total, count = 0.0, 0
    for a in amplitudes:
        for j in range(N):
            h = []
            for n in range(k):
                pre = sum(W1[n, c].item() * E[c, j].item() for c in range(E.shape[0])) * a + b1[n].item()
                h.append(activation(torch.tensor(pre), nonlinearity).item() if keep[n] else 0.0)
            y = [sum(W2[o, n].item() * h[n] for n in range(k)) for o in range(out)]
            total += sum((y[o] - (a if o == j else 0.0)) ** 2 for o in range(out))
            count += 1
    return total / count


@pytest.mark.parametrize("nonlinearity", ["relu", "gelu"])
def test_block_losses_match_loop(nonlinearity):
    W1, b1, W2, E = hand_built()
    s = explain_summary(W1, b1, W2, E, nonlinearity, amplitudes=5)
    amps = [0.0, 0.25, 0.5, 0.75, 1.0]
    blocks = {"loss_full": [1] * 7, "loss_mono": [1] * 4 + [0] * 3, "loss_poly": [0] * 4 + [1, 1, 0]}
    for name, keep in blocks.items():
        assert s[name] == pytest.approx(loop_loss(W1, b1, W2, E, nonlinearity, keep, amps)), name
    assert s["loss_zero"] == pytest.approx(sum(a * a for a in amps) / len(amps))


def test_exact_decoder_has_zero_loss_and_empty_poly_block():
    # mono neurons ReLU(v_j) written straight back: output = v on lone features with amplitude >= 0
    N = 3
    eye = torch.eye(N, dtype=F64)
    s = explain_summary(eye, torch.zeros(N, dtype=F64), eye, eye, "relu")
    assert s["n_mono"] == 3 and s["n_poly"] == 0
    assert s["loss_full"] == 0.0 and s["loss_mono"] == 0.0
    assert s["loss_poly"] == pytest.approx(s["loss_zero"])
    assert s["loss_zero"] == pytest.approx(sum((i / 20) ** 2 for i in range(21)) / 21)
    assert s["poly_rank"] == 0 and s["gram_residual"] == 0.0 and math.isnan(s["poly_linear_fraction"])
    assert s["neurons"]["threshold"].tolist() == [0.0] * 3 and s["neurons"]["slope"].tolist() == [1.0] * 3


def test_reprojector_output_has_no_feature_fit():
    W1, b1, _, E = hand_built()
    W2 = torch.ones(2, 7, dtype=F64)  # out = 2 != N
    s = explain_summary(W1, b1, W2, E, "relu")
    assert math.isnan(s["gram_c"]) and math.isnan(s["loss_full"])
    assert s["poly_map"].shape == (2, 4)
    # slope uses the norm of the neuron's output column when there is no output per feature
    assert s["neurons"]["slope"].iloc[0] == pytest.approx(2 * math.sqrt(2))


def test_the_instance_to_explain_and_whether_a_sweep_has_neurons(diverging_results):
    from types import SimpleNamespace

    from toymodels.analysis import has_neurons, most_monosemantic

    inst = diverging_results.instances.set_index("run_id")
    best = most_monosemantic(diverging_results)
    assert inst.loc[best, "status"] == "ok"  # never a diverged instance, even if its metrics were higher
    assert inst.loc[best, "mono_per_feature"] == inst.query("status == 'ok'")["mono_per_feature"].max()
    assert has_neurons(diverging_results) and has_neurons(diverging_results, "r0004")
    # a model whose checkpoints hold other tensors (TMS: W, b) has no neuron layer to explain
    tms_like = SimpleNamespace(instances=diverging_results.instances, params=lambda run_id: {"W": None, "b": None})
    assert not has_neurons(tms_like)
    assert not has_neurons(SimpleNamespace(instances=diverging_results.instances.iloc[:0]))
