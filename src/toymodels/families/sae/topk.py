"""TopK SAE (Gao et al. 2024, *Scaling and evaluating sparse autoencoders*; docs/dictionary_learning.md).

f = ReLU(TopK_k(W_enc^T (x - b_dec) + b_enc)): each sample keeps its k largest pre-activations (config field
``sae_k``, per instance), so L0 <= k by construction and there is no penalty (``l1`` must be 0). No auxiliary dead-
latent loss (AuxK): the toy dictionaries are small enough that the tables' ``dead_latents`` shows what it would fix.
"""

from __future__ import annotations

from typing import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.families.sae.architecture import SAE, keep_top, per_instance, register_architecture


def k_problem(cfg: ExperimentConfig, name: str) -> str | None:
    """The checks TopK and BatchTopK share: k fits the width, and no L1 coefficient."""
    s = cfg.sae
    if s.sae_k > s.sae_width:
        return f"field 'sae_k': must be at most sae_width={s.sae_width} for architecture '{name}' (got {s.sae_k})"
    if cfg.optim.l1 > 0:
        return (f"field 'l1': architecture '{name}' has no penalty, its sparsity is sae_k; must be 0 "
                f"(got {cfg.optim.l1})")
    return None


class TopKSAE(SAE):
    name = "topk"
    summary = "the k largest latents per sample (sae_k), no penalty, unit-norm decoder"
    fields = ("sae_k",)

    def __init__(self, tensors: dict[str, Tensor]):
        super().__init__(tensors)
        self.k_max = int(self.k.max())  # once, so a step never asks the device for it

    @classmethod
    def buffer_names(cls) -> tuple[str, ...]:
        return ("k",)

    @classmethod
    def check(cls, cfg: ExperimentConfig) -> str | None:
        return k_problem(cfg, cls.name)

    @classmethod
    def settings(cls, cfgs: Sequence[ExperimentConfig]) -> dict[str, Tensor]:
        return {"k": per_instance(cfgs, lambda c: c.sae.sae_k, torch.long)}

    def activate(self, pre: Float[Tensor, "instances batch latents"]) -> Float[Tensor, "instances batch latents"]:
        I, B, L = pre.shape
        kept = keep_top(pre.reshape(I * B, L), self.k.repeat_interleave(B), self.k_max)
        return torch.relu(kept.view(I, B, L))


register_architecture(TopKSAE)
