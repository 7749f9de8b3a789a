"""An SAE encoder for the polytope lens (the ``relu_layers`` hook; docs/papers.md §6): the lens reads the SAE's
input x (the hidden space); f = sigma(W_enc^T (x - b_dec) + b_enc) is one layer with bias b_enc - W_enc^T b_dec,
a ReLU (relu_l1) or a JumpReLU (a unit on above its threshold exp(log_threshold)); the output is the reconstruction
W_dec^T f + b_dec. The true directions are the source's features (the ``truth`` buffer). TopK and BatchTopK choose
their active latents by rank, not by a threshold of each latent's own pre-activation: no polytopes of this kind,
None."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.families.base import ReluLayers
from toymodels.families.polytope import stacked_draws
from toymodels.families.sae.evaluate import eval_batch
from toymodels.metrics.polytope import ReluLayer, ReluNet

#: the architectures whose latents are a per-latent threshold of their pre-activation
THRESHOLD_ARCHS = ("relu_l1", "jumprelu")


def sae_relu_layers(tensors: dict[str, Tensor], cfgs: Sequence[ExperimentConfig]) -> ReluLayers | None:
    """The encoder of ReLU and JumpReLU SAEs (module docstring), or None for the others."""
    arch = cfgs[0].sae.sae_arch
    if arch not in THRESHOLD_ARCHS or any(c.sae.sae_arch != arch for c in cfgs):
        return None
    W_enc, b_enc = tensors["W_enc"].float(), tensors["b_enc"].float()
    b_dec = tensors["b_dec"].float()
    bias = b_enc - (b_dec.unsqueeze(1) @ W_enc).squeeze(1)
    threshold = tensors["log_threshold"].float().exp() if arch == "jumprelu" else None
    layer = ReluLayer(W_enc.transpose(1, 2).contiguous(), bias, threshold)
    net = ReluNet((layer,), readout_weight=tensors["W_dec"].float().transpose(1, 2), readout_bias=b_dec)

    def key(c: ExperimentConfig) -> tuple:
        return (c.run.seed, c.sae.model_dump_json(include={"source", "source_run", "source_layer"}),
                c.data.model_dump_json(), c.firing.model_dump_json(), c.model.m)

    def draw(n: int) -> tuple[Tensor, Tensor]:
        return stacked_draws(cfgs, key, lambda c: eval_batch(c, n))

    note = ("" if all(c.sae.source == "synthetic" for c in cfgs) else
            "a source layer after a nonlinearity holds feature j at h(v e_j), not v h(e_j): the directions are "
            "the responses at v = 1, the rays and paths between them an approximation of the source's own")
    return ReluLayers(net, tensors["truth"].float(), draw, note)
