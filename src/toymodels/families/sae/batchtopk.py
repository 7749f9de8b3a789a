"""BatchTopK SAE (Bussmann et al. 2024, *BatchTopK Sparse Autoencoders*; docs/dictionary_learning.md).

Training keeps the k x batch largest ReLU'd pre-activations of each instance's whole batch (config field ``sae_k``
per instance: k latents per sample on average, more on busy samples, fewer on quiet ones). The paper then infers with
a fixed threshold, the running mean of the smallest kept activation. Here evaluation applies the same batch-level
rule to the evaluation batch (2048 samples), which is that threshold fitted on the evaluation data: no training-time
statistic has to survive a resume, and an instance gives the same numbers in any group.
"""

from __future__ import annotations

from typing import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from ...config import ExperimentConfig
from .architecture import SAE, keep_top, per_instance, register_architecture
from .topk import k_problem


class BatchTopKSAE(SAE):
    name = "batchtopk"
    summary = "the k x batch largest latents of the whole batch (sae_k on average), no penalty, unit-norm decoder"
    fields = ("sae_k",)

    def __init__(self, tensors: dict[str, Tensor]):
        super().__init__(tensors)
        self.k_max = int(self.k.max())

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
        kept = keep_top(torch.relu(pre).reshape(I, B * L), self.k * B, self.k_max * B)
        return kept.view(I, B, L)


register_architecture(BatchTopKSAE)
