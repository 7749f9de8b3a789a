"""What the EM family reports at every checkpoint and for the final model.

``em_evaluate(cfgs, tensors)`` returns ``metrics.em_metrics`` (single-feature probe, biases, capacity) plus two
numbers from the multi-feature probe (``metrics.multi_feature_probe``, docs/papers.md §1.4 caveat b):

* ``false_mono``: how many paper-mono neurons fire in context, without their own feature (on their own
  all-but-one input, or on a random training-like input where their feature is off). ``mono_neurons - false_mono``
  is the number of neurons that are monosemantic beyond the single-feature probe.
* ``mean_fires_all_but_one``: the mean over neurons of how many of the N all-but-one inputs make a neuron fire
  (0 .. N; over the 2N signed features for the abs task); near N when most neurons respond to any dense input.

For the abs task every probe runs over the 2N signed features +e_j and -e_j (``metrics.signed_embedding``), so a
neuron that answers only -v_j is neither dead nor polysemantic.

The probe's random inputs come from each instance's own stream (``data.PROBE_STREAM`` of its seed) with its
training feature probabilities, so they are the same at every checkpoint and independent of the group.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from toymodels import metrics
from toymodels.config import ExperimentConfig
from toymodels.engine.data import PROBE_STREAM, feature_probs, generator

# Random inputs of the multi-feature probe per instance and checkpoint: enough to find neurons that fire on
# feature combinations, small enough to run at every checkpoint (instances x neurons x features x 512 multiply-adds).
PROBE_SAMPLES = 512


def probe_inputs(cfgs: Sequence[ExperimentConfig]) -> tuple[Tensor, list[torch.Generator]]:
    """Per-instance feature probabilities (instances, features) and fresh probe generators, one per instance seed.

    For the abs task the probe runs over the 2N signed features (``metrics.signed_embedding``), each on with half
    the feature's probability, as in training (v = v1 - v2, each drawn with density eps/2).
    """
    probs = torch.stack([
        feature_probs(c.data.N, c.data.eps, c.data.distribution, c.data.power_law_exponent) for c in cfgs
    ])
    if cfgs[0].task.task == "abs":
        probs = torch.cat([probs, probs], dim=-1) / 2
    return probs, [generator(c.run.seed, PROBE_STREAM) for c in cfgs]


@torch.no_grad()
def em_probe(
    cfgs: Sequence[ExperimentConfig], t: dict[str, Tensor], n_samples: int = PROBE_SAMPLES
) -> dict[str, Tensor]:
    """``metrics.multi_feature_probe`` of EM instances with each instance's own probe stream (see module doc)."""
    probs, gens = probe_inputs(cfgs)
    W1, E = t["W1"], t["E"]
    dtype = W1.dtype if W1.dtype in (torch.float32, torch.float64) else torch.float32
    if cfgs[0].task.task == "abs":
        E = metrics.signed_embedding(E)
    return metrics.multi_feature_probe(
        W1.to(dtype), t["b1"].to(dtype), E.to(dtype), cfgs[0].model.nonlinearity, probs.to(W1.device, dtype),
        n_samples=n_samples, generator=gens,
    )


@torch.no_grad()
def em_evaluate(cfgs: Sequence[ExperimentConfig], t: dict[str, Tensor]) -> dict[str, Tensor]:
    """The EM family's metrics of one checkpoint (see the module docstring), (instances,) float32 tensors."""
    # float64: a diverged instance keeps its last finite parameters, which can be ~1e20; capacity squares the
    # Gram matrix (~W^4), which overflows float32 to inf/inf = NaN but is finite in float64.
    t64 = {name: t[name].double() for name in ("W1", "b1", "E")}
    out = metrics.em_metrics(t64["W1"], t64["b1"], t64["E"], cfgs[0].model.nonlinearity,
                             signed=cfgs[0].task.task == "abs")
    probe = em_probe(cfgs, t64)
    out["false_mono"] = probe["false_mono"].double()
    out["mean_fires_all_but_one"] = probe["fires_all_but_one"].double().mean(-1)
    return {name: v.float() for name, v in out.items()}
