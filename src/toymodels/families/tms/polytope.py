"""TMS's ReLU layers for the polytope lens (the ``relu_layers`` hook; docs/papers.md §6). The lens reads the hidden
space h = W x, where feature i's direction is the column W_i (with m = 2 the whole space is one slice: the pentagon
of n = 5): the ReLU output model's one layer is x' = ReLU(W^T h + b); hidden_relu adds ReLU(h) before it (a layer
with the identity map). The linear variant has no ReLU: None."""

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


def tms_relu_layers(tensors: dict[str, Tensor], cfgs: Sequence[ExperimentConfig]) -> ReluLayers | None:
    """The ReLU layers of TMS models (module docstring), or None for the linear variant."""
    variant = cfgs[0].tms.tms_variant
    if variant == "linear" or any(c.tms.tms_variant != variant for c in cfgs) or not {"W", "b"} <= set(tensors):
        return None  # no ReLU, mixed variants, or tensors that are not a TMS model's
    W = tensors["W"].float()  # (instances, hidden, features)
    out = ReluLayer(W.transpose(1, 2).contiguous(), tensors["b"].float())
    if variant == "hidden_relu":
        eye = torch.eye(W.shape[1]).expand(W.shape[0], -1, -1).contiguous()
        layers: tuple[ReluLayer, ...] = (ReluLayer(eye), out)
    else:
        layers = (out,)

    def draw(n: int) -> tuple[Tensor, Tensor]:
        def one(c: ExperimentConfig) -> tuple[Tensor, Tensor]:
            gen = generator(c.run.seed, PROBE_STREAM)
            return torch.empty(0), feature_sampler(c.data, c.firing, n, gen, torch.device("cpu")).sample()

        _, x = stacked_draws(cfgs, law_key, one)
        return einsum(x, W, "instances samples features, instances hidden features -> instances samples hidden"), x

    return ReluLayers(ReluNet(layers), W.transpose(1, 2), draw)
