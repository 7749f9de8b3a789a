"""BatchTopK SAE (Bussmann et al. 2024, *BatchTopK Sparse Autoencoders*; docs/dictionary_learning.md).

Training keeps the k x batch largest ReLU'd pre-activations of each instance's whole batch (config field ``sae_k``
per instance: k latents per sample on average, more on busy samples, fewer on quiet ones). The paper then infers with
a fixed threshold, the running mean of the smallest kept activation. Here evaluation applies the same batch-level
rule to the evaluation batch (2048 samples), which is that threshold fitted on the evaluation data: no training-time
statistic has to survive a resume, and an instance gives the same numbers in any group.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from toymodels.families.sae.architecture import keep_top, register_architecture
from toymodels.families.sae.topk import TopKSAE


class BatchTopKSAE(TopKSAE):
    """TopK's settings and checks; only which latents survive differs (the batch's k x B largest, not each sample's k)."""

    name = "batchtopk"
    summary = "the k x batch largest latents of the whole batch (sae_k on average), no penalty, unit-norm decoder"

    def activate(self, pre: Float[Tensor, "instances batch latents"]) -> Float[Tensor, "instances batch latents"]:
        I, B, L = pre.shape
        kept = keep_top(torch.relu(pre).reshape(I, B * L), self.k * B, self.k_max * B)
        return kept.view(I, B, L)


register_architecture(BatchTopKSAE)
