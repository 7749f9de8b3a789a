"""metrics.neuron_order (the one display order of neurons and features) and metrics.all_but_one_fires."""

from __future__ import annotations

import torch
from helpers import hand_built_neurons

from toymodels import metrics


def test_mono_neurons_first_grouped_by_feature_then_ratio_then_dead():
    W1, b1, E = hand_built_neurons()
    sfa = metrics.single_feature_activations(W1[None], b1[None], E[None], "relu")
    neurons, features = metrics.neuron_order(sfa)
    # mono on f0 (n2, then its duplicate n4), mono on f2 (n1), poly n0, dead n3; a ratio-only order would put n1
    # (ratio equal to n4's) between the two f0 neurons
    assert neurons.tolist() == [[2, 4, 1, 0, 3]]
    # f0's strongest neuron is first (n2), f2's third (n1), f1's fourth (n0): a diagonal
    assert features.tolist() == [[0, 2, 1]]


def test_order_of_a_given_sfa_and_of_features_no_neuron_reads():
    # neurons x features: n0 poly, n1 mono on f2, n2 dead, n3 mono on f0; feature 3 fires no neuron
    sfa = torch.tensor([[0.5, 0.4, 0.3, 0.0], [0.0, 0.0, 0.9, 0.0], [0.0, 0.0, 0.0, 0.0], [0.7, 0.0, 0.0, 0.0]])
    neurons, features = metrics.neuron_order(sfa[None])
    assert neurons[0].tolist() == [3, 1, 0, 2]
    assert features[0].tolist() == [0, 2, 1, 3]


def test_instances_are_ordered_independently():
    W1, b1, E = hand_built_neurons()
    flipped = (W1.flip(0), b1.flip(0), E)
    batch = [torch.stack([a, b]) for a, b in zip((W1, b1, E), flipped)]
    sfa = metrics.single_feature_activations(*batch, "relu")
    neurons, features = metrics.neuron_order(sfa)
    alone = metrics.neuron_order(sfa[1:])
    assert torch.equal(neurons[1:], alone[0]) and torch.equal(features[1:], alone[1])
    # the same neurons in reverse index order (original index = 4 - index): the same kinds in the same places;
    # the two f0 neurons keep index order, so the duplicate (n4, now index 0) comes first
    assert (4 - neurons[1]).tolist() == [4, 2, 1, 0, 3]


def test_all_but_one_grid_sums_to_the_probe_count():
    g = torch.Generator().manual_seed(0)
    W1, b1 = torch.randn(2, 6, 5, generator=g), torch.randn(2, 6, generator=g)
    E = torch.randn(2, 5, 7, generator=g)
    grid = metrics.all_but_one_fires(W1, b1, E, "gelu")
    probe = metrics.multi_feature_probe(W1, b1, E, "gelu", torch.full((2, 1), 0.1), n_samples=8, generator=g)
    assert grid.shape == (2, 6, 7) and 0 < grid.sum() < grid.numel()
    assert torch.equal(grid.sum(-1), probe["fires_all_but_one"])
