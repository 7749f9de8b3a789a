"""Mechanism analysis on hand-built models whose neuron kinds, mono thresholds, slopes and broad block are known."""

from __future__ import annotations

import math

import pytest
import torch

from toymodels.engine.activations import activation
from toymodels.families.em.analysis import (
    explain_instance,
    explain_summary,
    features_firing,
    fit_gram,
    neuron_kinds,
    training_like_inputs,
    signed_probe,
)
from toymodels.config import ExperimentConfig
from toymodels.metrics import em_metrics

F64 = torch.float64
N = 12  # a quarter of the features is 3: a neuron firing for 3 or more (not mono) is broad


def hand_built():
    """N = 12 features, identity embedding (m = 12), seventeen neurons.

    neurons 0-11: mono, W1 = 2 e_j, bias -0.5 (threshold 0.25), W2[j, j] = 0.75 (slope 1.5);
    neurons 12-13: broad, positive bias 1, small positive weights: fire on every feature, linear;
    neuron 14: narrow, W1 = e_0 + 0.8 e_1, bias -0.5: fires for features 0 and 1 (2 < N/4 = 3), ratio 0.625;
    neuron 15: broad at the cut, W1 = e_0 + e_1 + e_2, bias -0.5: fires for exactly 3 = N/4 features;
    neuron 16: dead for the decoder (reads -e_0 with bias -0.1), alive for abs (answers -v_0).
    """
    W1 = torch.zeros(17, N, dtype=F64)
    W1[:N] = 2 * torch.eye(N, dtype=F64)
    W1[12] = torch.linspace(0.1, 0.4, N, dtype=F64)
    W1[13] = torch.linspace(0.4, 0.1, N, dtype=F64)
    W1[14, :2] = torch.tensor([1.0, 0.8], dtype=F64)
    W1[15, :3] = 1.0
    W1[16, 0] = -1.0
    b1 = torch.tensor([-0.5] * N + [1.0, 1.0, -0.5, -0.5, -0.1], dtype=F64)
    W2 = torch.zeros(N, 17, dtype=F64)
    W2[:, :N] = 0.75 * torch.eye(N, dtype=F64)
    W2[:, 12] = torch.linspace(0.5, -0.5, N, dtype=F64)
    W2[:, 13] = torch.linspace(-0.2, 0.4, N, dtype=F64)
    W2[:, 14] = 0.3
    W2[:, 15] = 0.2 * torch.linspace(0.0, 1.0, N, dtype=F64) ** 2
    W2[:, 16] = 1.0
    return W1, b1, W2, torch.eye(N, dtype=F64)


KINDS = ["mono"] * N + ["broad", "broad", "narrow", "broad", "dead"]


def test_neuron_table_of_hand_built_model():
    table = explain_instance(*hand_built(), "relu")
    assert list(table.columns[:7]) == ["neuron", "kind", "feature", "bias", "threshold", "slope", "participation"]
    assert table["kind"].tolist() == KINDS
    assert table["feature"].tolist() == list(range(N)) + [N - 1, 0, 0, 0, -1]
    mono = table[table.kind == "mono"]
    assert mono["threshold"].tolist() == [0.25] * N
    assert mono["slope"].tolist() == [1.5] * N
    assert mono["bias"].tolist() == [-0.5] * N
    assert table.loc[N:, "threshold"].isna().all() and table.loc[N:, "slope"].isna().all()
    assert table["features_firing"].tolist() == [1] * N + [N, N, 2, 3, 0]
    assert table["sign"].tolist() == [1] * 17
    acts = [1 + w for w in torch.linspace(0.1, 0.4, N).tolist()]  # bias 1 plus the weight on each lone feature
    expected_pr = sum(acts) ** 2 / sum(a * a for a in acts)
    assert table["participation"].tolist() == pytest.approx([1] * N + [expected_pr, expected_pr, 0.8**2 / 0.34,
                                                                        3.0, 0])


def test_broad_cut_is_a_quarter_of_the_features():
    # neuron k fires for k of the 12 lone features (equal activations, so never mono for k >= 2); 12 / 4 = 3
    sfa = torch.zeros(N, N, dtype=F64)
    for k in range(N):
        sfa[k, :k] = 1.0
    assert neuron_kinds(sfa) == ["dead", "mono", "narrow"] + ["broad"] * (N - 3)
    assert features_firing(sfa, N).tolist() == list(range(N))
    # the signed probe (abs) counts a feature once, whichever sign fires the neuron
    signed = torch.cat([sfa, sfa.flip(-1)], dim=-1)
    assert features_firing(signed, N).tolist() == [0] + [min(2 * k, N) for k in range(1, N)]


def test_abs_probe_counts_the_negative_sign():
    """A neuron answering -v_0 is dead to the +e_i probe but mono (sign -1) in the abs task's signed probe."""
    W1, b1, W2, E = hand_built()
    decoder, abs_task = explain_instance(W1, b1, W2, E, "relu"), explain_instance(W1, b1, W2, E, "relu", signed=True)
    assert decoder.loc[16, "kind"] == "dead"
    row = abs_task.loc[16]
    assert (row["kind"], row["feature"], row["sign"], row["features_firing"]) == ("mono", 0, -1, 1)
    assert row["threshold"] == pytest.approx(0.1)  # -b / (sign * (W1 E)[n, 0]) = 0.1 / 1
    assert row["slope"] == pytest.approx(1.0)  # (-1) * (-1) * W2[0, 16]
    assert abs_task["kind"].tolist()[:16] == KINDS[:16]  # the others answer +v as before
    sfa = signed_probe(W1, b1, E, "relu", signed=True)
    assert sfa.shape == (17, 2 * N) and sfa[16, N] == pytest.approx(0.9) and sfa[16, :N].max() == 0


def test_summary_of_hand_built_model():
    W1, b1, W2, E = hand_built()
    broad = [12, 13, 15]
    s = explain_summary(W1, b1, W2, E, "relu")
    assert (s["n_mono"], s["n_narrow"], s["n_broad"], s["n_dead"]) == (N, 1, 3, 1)
    assert s["mono"] == list(range(N)) and s["broad"] == broad and s["narrow"] == [14] and s["dead"] == [16]
    torch.testing.assert_close(s["broad_map"], W2[:, broad] @ W1[broad])
    torch.testing.assert_close(s["broad_offset"], W2[:, broad] @ b1[broad])  # computed, not fitted
    assert s["offset_mean"] == pytest.approx(float((W2[:, broad] @ b1[broad]).mean()))
    assert s["broad_rank"] == 3 and s["broad_singular_values"][3:].abs().max() < 1e-12
    assert s["broad_positive_bias"] == pytest.approx(2 / 3) and s["broad_median_bias"] == 1.0
    assert s["broad_features_firing"] == N and s["narrow_features_firing"] == 2
    assert s["narrow_median_bias"] == -0.5 and s["narrow_median_mono_ratio"] == pytest.approx(0.5 / 0.8)
    assert math.isnan(s["broad_linear_fraction"])  # no inputs given


def test_linear_fraction_counts_input_neuron_pairs():
    W1, b1, W2, E = hand_built()
    inputs = torch.zeros(4, N, dtype=F64)
    inputs[1, 0] = inputs[2, 1] = inputs[3, 2] = 1.0
    # neurons 12, 13 (bias 1) always fire; neuron 15 (bias -0.5) fires on inputs 1-3, not on the zero input
    s = explain_summary(W1, b1, W2, E, "relu", inputs=inputs)
    assert s["broad_linear_fraction"] == pytest.approx(11 / 12)


def test_summary_counts_agree_with_batched_metrics():
    g = torch.Generator().manual_seed(0)
    W1, W2 = torch.randn(12, 3, generator=g, dtype=F64), torch.randn(6, 12, generator=g, dtype=F64)
    b1 = torch.randn(12, generator=g, dtype=F64) - 0.8
    E = torch.randn(3, 6, generator=g, dtype=F64)
    E = E / E.norm(dim=0)
    s = explain_summary(W1, b1, W2, E, "gelu")
    met = em_metrics(W1[None], b1[None], E[None], "gelu")
    assert s["n_mono"] == met["mono_neurons"].item() and s["n_dead"] == met["dead_neurons"].item()
    assert s["n_mono"] + s["n_narrow"] + s["n_broad"] + s["n_dead"] == 12
    assert s["broad_rank"] <= 3  # true by construction (the block sees the m = 3 dim input), not evidence


def test_gram_fit_of_a_low_rank_identity_with_offset():
    """m = 3, N = 5: three always-on broad neurons with read-out W2 = c E^T give the linear part c E^T E exactly;
    the bias only moves the output offset W2 b, never the fit."""
    g = torch.Generator().manual_seed(1)
    E = torch.randn(3, 5, generator=g, dtype=F64)
    E = E / E.norm(dim=0)
    W1 = torch.eye(3, dtype=F64)
    for bias in (5.0, 9.0):
        b1 = torch.full((3,), bias, dtype=F64)
        s = explain_summary(W1, b1, 0.7 * E.T, E, "relu")
        assert s["n_broad"] == 3 and s["broad_rank"] == 3
        assert s["gram_c"] == pytest.approx(0.7) and s["gram_residual"] < 1e-10
        torch.testing.assert_close(s["broad_offset"], 0.7 * E.T @ b1)
        assert s["offset_same_sign"] == float((torch.sign(E.T.sum(1)) == math.copysign(1, s["offset_mean"]))
                                              .double().mean())
    # a random block is not of that form
    W2 = torch.randn(5, 3, generator=g, dtype=F64)
    assert explain_summary(W1, b1, W2, E, "relu")["gram_residual"] > 0.1


def test_fit_gram_has_no_free_constant():
    eye = torch.eye(4, dtype=F64)
    assert fit_gram(0.5 * eye, eye) == pytest.approx((0.5, 0.0))
    c, residual = fit_gram(0.5 * eye + 0.1, eye)  # a constant is not E^T E: it stays in the residual
    assert c == pytest.approx(0.6) and residual > 0.1
    assert fit_gram(torch.zeros(4, 4, dtype=F64), eye) == (0.0, 0.0)


def loop_loss(W1, b1, W2, E, nonlinearity, keep, amplitudes, task="decoder"):
    """Lone-feature loss with plain loops (the definition in lone_feature_loss)."""
    k, n, out = W1.shape[0], E.shape[1], W2.shape[0]
    total, count = 0.0, 0
    for a in amplitudes:
        for j in range(n):
            h = []
            for i in range(k):
                pre = sum(W1[i, c].item() * E[c, j].item() for c in range(E.shape[0])) * a + b1[i].item()
                h.append(activation(torch.tensor(pre), nonlinearity).item() if keep[i] else 0.0)
            y = [sum(W2[o, i].item() * h[i] for i in range(k)) for o in range(out)]
            target = abs(a) if task == "abs" else a
            total += sum((y[o] - (target if o == j else 0.0)) ** 2 for o in range(out))
            count += 1
    return total / count


@pytest.mark.parametrize("nonlinearity, task", [("relu", "decoder"), ("gelu", "decoder"), ("relu", "abs")])
def test_block_losses_match_loop(nonlinearity, task):
    W1, b1, W2, E = hand_built()
    s = explain_summary(W1, b1, W2, E, nonlinearity, amplitudes=3, task=task)
    amps = [0.0, 0.5, 1.0] if task == "decoder" else [-1.0, -0.5, 0.0, 0.5, 1.0]
    broad = [i in (12, 13, 15) for i in range(17)]
    blocks = {"loss_full": [True] * 17, "loss_without_broad": [not b for b in broad], "loss_broad": broad,
              "loss_mono": [i < N or (task == "abs" and i == 16) for i in range(17)]}  # abs: n16 answers -v_0
    for name, keep in blocks.items():
        assert s[name] == pytest.approx(loop_loss(W1, b1, W2, E, nonlinearity, keep, amps, task)), name
    assert s["loss_zero"] == pytest.approx(sum(a * a for a in amps) / len(amps))


def test_exact_decoder_has_zero_loss_and_no_broad_block():
    # mono neurons ReLU(v_j) written straight back: output = v on lone features with amplitude >= 0
    n = 3
    eye = torch.eye(n, dtype=F64)
    s = explain_summary(eye, torch.zeros(n, dtype=F64), eye, eye, "relu", inputs=torch.rand(5, n, dtype=F64))
    assert s["n_mono"] == 3 and s["n_broad"] == 0
    assert s["loss_full"] == 0.0 and s["loss_mono"] == 0.0 and s["loss_without_broad"] == 0.0
    assert s["loss_broad"] == pytest.approx(s["loss_zero"])
    assert s["loss_zero"] == pytest.approx(sum((i / 20) ** 2 for i in range(21)) / 21)
    assert s["broad_rank"] == 0
    for key in ("gram_c", "gram_residual", "broad_linear_fraction", "broad_positive_bias", "offset_mean"):
        assert math.isnan(s[key]), key
    assert s["neurons"]["threshold"].tolist() == [0.0] * 3 and s["neurons"]["slope"].tolist() == [1.0] * 3


def test_reprojector_output_has_no_feature_fit():
    W1, b1, _, E = hand_built()
    W2 = torch.ones(2, 17, dtype=F64)  # out = 2 != N
    s = explain_summary(W1, b1, W2, E, "relu", task="reprojector")
    assert math.isnan(s["gram_c"]) and math.isnan(s["loss_full"])
    assert s["broad_map"].shape == (2, N)
    # slope uses the norm of the neuron's output column when there is no output per feature
    assert s["neurons"]["slope"].iloc[0] == pytest.approx(2 * math.sqrt(2))


@pytest.mark.parametrize("task", ["decoder", "abs"])
def test_training_like_inputs_are_training_like_and_fixed(task):
    cfg = ExperimentConfig.from_flat({"N": 32, "m": 4, "k": 64, "task": task, "seed": 3})
    x = training_like_inputs(cfg, 256)
    assert x.shape == (256, 32) and x.dtype == F64
    torch.testing.assert_close(x, training_like_inputs(cfg, 256))  # the probe stream: the same draw every call
    assert x.abs().max() <= 1 and 0 < (x != 0).double().mean() < 0.1
    assert bool((x < 0).any()) == (task == "abs")  # abs inputs are v1 - v2


def test_the_instance_to_explain_and_whether_a_sweep_has_neurons(diverging_results):
    from types import SimpleNamespace

    from toymodels.families.em.analysis import has_neurons, most_monosemantic

    inst = diverging_results.instances.set_index("run_id")
    best = most_monosemantic(diverging_results)
    assert inst.loc[best, "status"] == "ok"  # never a diverged instance, even if its metrics were higher
    assert inst.loc[best, "mono_per_feature"] == inst.query("status == 'ok'")["mono_per_feature"].max()
    assert has_neurons(diverging_results) and has_neurons(diverging_results, "r0004")
    # a model whose checkpoints hold other tensors (TMS: W, b) has no neuron layer to explain
    tms_like = SimpleNamespace(instances=diverging_results.instances, params=lambda run_id: {"W": None, "b": None})
    assert not has_neurons(tms_like)
    assert not has_neurons(SimpleNamespace(instances=diverging_results.instances.iloc[:0]))
