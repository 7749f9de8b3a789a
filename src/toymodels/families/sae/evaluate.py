"""What the SAE family reports at every checkpoint and for the final model: its dictionary scored against the truth.

Each instance is evaluated on EVAL_SAMPLES activations drawn from its source with its own seed's probe stream (the
same samples at every checkpoint, whatever the group), with the true feature activations that produced them, and
:func:`toymodels.metrics.dictionary.dictionary_metrics` gives every number (docs/dictionary_learning.md §Metrics):
``mcc``, ``features_recovered``, ``uniqueness``, ``precision``, ``recall``, ``f1``, ``accuracy``, ``l0``,
``true_l0``, ``dead_latents``, ``shrinkage``, ``explained_variance`` and, for hierarchical features,
``absorption_gap``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.engine.data import PROBE_STREAM, generator
from toymodels.metrics.dictionary import dictionary_metrics
from toymodels.families.sae.architecture import SAE, get_architecture
from toymodels.families.sae.sources import SourceSampler, source_for

#: evaluation samples per instance and checkpoint: every feature of a 1/64-dense dictionary fires ~32 times
EVAL_SAMPLES = 2048


def eval_batch(cfg: ExperimentConfig, n: int = EVAL_SAMPLES) -> tuple[Tensor, Tensor]:
    """(activations (samples, hidden), feature activations (samples, features)) of one instance's probe stream,
    float32, on the CPU."""
    sampler = SourceSampler(source_for(cfg), n, generator(cfg.run.seed, PROBE_STREAM), torch.device("cpu"))
    return sampler.draw()


def sae_model(cfgs: Sequence[ExperimentConfig], tensors: dict[str, Tensor]) -> SAE:
    """The SAEs of a group rebuilt from ``state_tensors()``."""
    return get_architecture(cfgs[0].sae.sae_arch).from_tensors(tensors)


@torch.no_grad()
def sae_evaluate(cfgs: Sequence[ExperimentConfig], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The SAE family's metrics of one checkpoint (module docstring), (instances,) float32 tensors."""
    model = sae_model(cfgs, {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    batches = [eval_batch(c) for c in cfgs]
    x = torch.stack([b[0] for b in batches])
    feats = torch.stack([b[1] for b in batches])
    acts, x_hat = model.reconstruct(x)
    parents = [model.parents[i] for i in range(len(cfgs))]
    out = dictionary_metrics(model.W_dec, model.truth, acts, feats, x, x_hat, parents)
    return {name: v.float() for name, v in out.items()}
