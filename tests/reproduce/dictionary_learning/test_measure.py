"""What the dictionary-learning judges read: the one coverage criterion gives the same answer for a neuron layer
and for an SAE whose latents respond the same way, and the null baseline of SAE-ABS is measured on the independent
SAEs over the hierarchy's own pairs."""

from __future__ import annotations

import math

import torch

from toymodels.families.sae.architecture import get_architecture
from toymodels.families.sae.presets import sae_sweeps
from toymodels.metrics.dictionary import covered_features
from toymodels.metrics.features import single_feature_activations
from toymodels.reproduce.dictionary_learning import measure
from toymodels.reproduce.dictionary_learning.judges import absorption_points
from toymodels.reproduce.dictionary_learning.rules import (
    RULES,
    SELECTIVITIES,
    coverage_column,
)
from toymodels.reproduce.dictionary_learning.sweeps import run_parts

# four units reading three features (rows: units): unit 0 answers feature 0 only; unit 1 features 0 and 1; unit 2
# feature 2 only (its bias cuts the others); unit 3 feature 1 with a 1% leak on feature 2
W = torch.tensor([[2.0, 0.0, -1.0], [1.0, 1.0, 0.0], [-1.0, -1.0, 1.0], [0.0, 1.0, 0.01]])
B = torch.tensor([0.0, 0.0, -0.5, 0.0])
EXPECTED = [[True, False, True]]  # feature 1 has only the polysemantic unit and the leaky one


def test_one_coverage_criterion_for_neurons_and_latents():
    # neurons: an EM hidden layer h = relu(W1 E v + b1) with E = I, probed one feature at a time
    sfa = single_feature_activations(W[None], B[None], torch.eye(3)[None], "relu")
    neurons = covered_features(sfa)
    # latents: an SAE reading a layer whose single-feature activations (its true directions) are the axes, with
    # the same encoder weights and biases: its latents respond to each feature exactly as the neurons do
    tensors = {"W_enc": W.T[None].clone(), "b_enc": B[None].clone(), "W_dec": W[None].clone(),
               "b_dec": torch.zeros(1, 3), "truth": torch.eye(3)[None], "parents": -torch.ones(1, 3, dtype=torch.long)}
    sae = get_architecture("relu_l1").from_tensors(tensors).requires_grad_(False)
    responses = measure.latent_responses(sae)
    torch.testing.assert_close(responses, sfa)
    latents = covered_features(responses)
    assert neurons.tolist() == latents.tolist() == EXPECTED
    by_neurons, by_latents = measure.coverage(sfa, "n"), measure.coverage(responses, "l")
    assert list(by_neurons.values()) == list(by_latents.values())
    assert by_neurons[coverage_column("n", RULES.selectivity)] == 2 / 3
    # the leaky unit covers feature 1 once the slack is 10x the rule's
    assert covered_features(sfa, 0.99).tolist() == [[True, True, True]]
    # restricted to features 0 and 2 (SAE-TMS' represented features), the leak no longer counts
    assert measure.coverage(responses, "r", torch.tensor([True, False, True]))[
        coverage_column("r", RULES.selectivity)] == 1.0
    assert len(by_neurons) == len(SELECTIVITIES)


def test_the_null_baseline_is_the_independent_arm_over_the_hierarchys_pairs(tmp_path):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        relu = [sw for sw in sae_sweeps("SAE-ABS", "smoke", 2) if sw.base.sae.sae_arch == "relu_l1"]
        results = run_parts(relu, tmp_path, train=True, progress=False)
    finally:
        torch.set_num_threads(old)
    res = next(iter(results.values()))
    rows = res.instances
    hier = rows[rows["firing"] == "hierarchical"]["run_id"].iloc[0]
    indep = rows[rows["firing"] == "independent"]["run_id"].iloc[0]
    # the independent SAE has no hierarchy of its own; the null reads the pairs its hierarchical twin trained on
    assert (res.params(indep)["parents"] < 0).all()
    assert measure.hierarchy_pairs(res, indep).tolist() == res.params(hier)["parents"].tolist()
    table = measure.absorption_table(results, samples=4096)
    gaps = table.groupby("firing")["gap"]
    assert gaps.apply(lambda g: g.notna().all())[["independent", "hierarchical"]].all()
    assert table[table["firing"] == "correlated"]["gap"].isna().all()
    points = absorption_points(table, RULES)
    assert len(points) == 4 and (points["seeds"] == 2).all()
    assert all(math.isfinite(v) for v in points["gap null (independent)"])
