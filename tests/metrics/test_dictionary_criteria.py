"""The dictionary metrics the dictionary-learning study judges with: the one coverage criterion for neurons and
latents, the mean best |cos| beside MCC, and the absorption gap conditioned on the parent (its null baseline)."""

from __future__ import annotations

import pytest
import torch

from toymodels.metrics import dictionary as dm
from toymodels.metrics import features as fm


def test_covered_features_is_the_neuron_metric_for_neurons():
    g = torch.Generator().manual_seed(3)
    W1, b1, E = torch.randn(2, 24, 6, generator=g), torch.randn(2, 24, generator=g) - 1, torch.randn(2, 6, 10,
                                                                                                     generator=g)
    E = E / E.norm(dim=1, keepdim=True)
    sfa = fm.single_feature_activations(W1, b1, E, "relu")
    covered = dm.covered_features(sfa)
    assert covered.shape == (2, 10)
    expected = fm.em_metrics(W1, b1, E, "relu")["features_covered"]
    assert torch.allclose(covered.double().mean(-1), expected.double())


def test_covered_features_by_hand():
    # unit 0 answers feature 1 only; unit 1 features 0 and 2; unit 2 feature 2 with a 0.1% leak on feature 0;
    # unit 3 is dead
    responses = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 1.0], [0.0011, 0.0, 1.0], [0.0, 0.0, 0.0]])[None]
    assert dm.covered_features(responses).tolist() == [[False, True, False]]
    # a looser threshold lets unit 2 cover feature 2; unit 1 (ratio 0.5) never covers anything above 0.5
    assert dm.covered_features(responses, 0.99).tolist() == [[False, True, True]]


def test_mean_best_cos_counts_every_feature_where_mcc_counts_matched_pairs():
    F = torch.eye(4)[None]
    narrow = torch.eye(4)[None, :2]  # two exact latents for four features
    cos = dm.abs_cosines(narrow, F)
    assert dm.mcc(cos).item() == pytest.approx(1.0)  # over min(2, 4) = 2 matched pairs
    assert dm.mean_best_cos(cos).item() == pytest.approx(0.5)  # features 2 and 3 have no latent
    assert dm.mean_best_cos(dm.abs_cosines(torch.eye(4)[None], F)).item() == pytest.approx(1.0)


def gap_case(child_silences: bool, hierarchical: bool):
    """Features 0 (parent) and 1 (child), latents on their axes; samples: parent alone, both, child alone."""
    feats = torch.tensor([[1.0, 0.0]] * 4 + [[1.0, 1.0]] * 4 + ([] if hierarchical else [[0.0, 1.0]] * 4))
    fires = feats.clone()
    if child_silences:
        fires[(feats[:, 1] > 0), 0] = 0  # the parent's latent is off whenever the child is on
    cos = dm.abs_cosines(torch.eye(2)[None], torch.eye(2)[None])
    return fires[None], feats[None], cos, [torch.tensor([-1, 0])]


def test_pair_gap_equals_the_absorption_gap_on_a_hierarchy():
    for silences in (True, False):
        acts, feats, cos, parents = gap_case(silences, hierarchical=True)
        assert dm.pair_gap(acts, feats, cos, parents).item() == pytest.approx(
            dm.absorption_gap(acts, feats, cos, parents).item())
    assert dm.pair_gap(*gap_case(True, hierarchical=True)).item() == pytest.approx(1.0)


def test_pair_gap_is_the_null_on_features_without_a_hierarchy():
    # independent features: the child fires alone too; the gap conditions on the parent, so a latent unaffected by
    # the second feature gives 0 while the unconditioned gap would count the child-alone samples against it
    acts, feats, cos, parents = gap_case(False, hierarchical=False)
    assert dm.pair_gap(acts, feats, cos, parents).item() == pytest.approx(0.0)
    assert dm.absorption_gap(acts, feats, cos, parents).item() == pytest.approx(0.5)
    assert dm.pair_gap(*gap_case(True, hierarchical=False)).item() == pytest.approx(1.0)
    none = dm.pair_gap(acts, feats, cos, [torch.tensor([-1, -1])])
    assert torch.isnan(none).all()
