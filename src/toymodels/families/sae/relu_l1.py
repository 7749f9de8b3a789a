"""ReLU SAE with an L1 penalty (Bricken et al. 2023, *Towards Monosemanticity*; docs/dictionary_learning.md).

f = ReLU(W_enc^T (x - b_dec) + b_enc); penalty sum_i f_i ||W_dec,i|| (mean over the batch) times the config field
``l1``. The decoder norm in the penalty stops the SAE from shrinking f by growing the decoder; the unit-norm
projection after every step (``SAE.post_step``) keeps the norms at 1, so the penalty is the plain L1 of f at every
step's start. Sparsity is set by ``l1`` alone; ``sae_k`` is not used.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.families.sae.architecture import SAE, register_architecture


class ReLUL1SAE(SAE):
    name = "relu_l1"
    summary = "ReLU latents, L1 penalty weighted by decoder norms (l1), unit-norm decoder"
    fields = ("l1",)

    @classmethod
    def check(cls, cfg: ExperimentConfig) -> str | None:
        return None

    def activate(self, pre: Float[Tensor, "instances batch latents"]) -> Float[Tensor, "instances batch latents"]:
        return torch.relu(pre)

    def penalty(self, pre: Float[Tensor, "instances batch latents"], f: Float[Tensor, "instances batch latents"]
                ) -> Float[Tensor, " instances"]:
        return (f * self.decoder_norms().unsqueeze(1)).sum(dim=(1, 2)) / f.shape[1]


register_architecture(ReLUL1SAE)
