"""EM's ReLU layer for the polytope lens (the ``relu_layers`` hook; docs/papers.md §6): the hidden layer
h = ReLU(W1 x + b1) reads the embedding x = E v (the hidden space), the outputs are W2 h; feature j's direction
there is the column E_j. Models with GeLU or SoLU have no polytopes: None."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import einsum
from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.engine.data import PROBE_STREAM, feature_sampler, generator
from toymodels.families.base import ReluLayers
from toymodels.families.polytope import law_key, stacked_draws
from toymodels.metrics.polytope import ReluLayer, ReluNet


def features_of(cfg: ExperimentConfig, n: int) -> Tensor:
    """``n`` feature vectors v drawn like the instance's training data, from its probe stream (abs: signed)."""
    gen = generator(cfg.run.seed, PROBE_STREAM)
    return feature_sampler(cfg.data, cfg.firing, n, gen, torch.device("cpu"), signed=cfg.task.task == "abs").sample()


def em_relu_layers(tensors: dict[str, Tensor], cfgs: Sequence[ExperimentConfig]) -> ReluLayers | None:
    """The hidden layer of EM models (module docstring), or None unless every model uses ReLU."""
    if any(c.model.nonlinearity != "relu" for c in cfgs):
        return None
    E = tensors["E"].float()
    net = ReluNet((ReluLayer(tensors["W1"].float(), tensors["b1"].float()),), readout_weight=tensors["W2"].float())

    def draw(n: int) -> tuple[Tensor, Tensor]:
        _, v = stacked_draws(cfgs, law_key, lambda c: (torch.empty(0), features_of(c, n)))
        return einsum(v, E, "instances samples features, instances hidden features -> instances samples hidden"), v

    return ReluLayers(net, E.transpose(1, 2), draw)
