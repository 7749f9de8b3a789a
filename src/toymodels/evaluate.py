"""Which metrics each model family reports, at every checkpoint and for the final model.

``evaluate(cfgs, tensors)`` takes a group's tensors (instance axis first, as the model's ``state_tensors``) and
returns ``{metric name: (I,) tensor}``; these names become columns of instances.parquet and rows of metrics.parquet.
Families register an evaluator here, so the sweep runner needs no per-model code.

EM models report ``metrics.em_metrics`` (single-feature probe, biases, capacity) plus two numbers from the
multi-feature probe (``metrics.multi_feature_probe``, PAPERS.md §1.4 caveat b):

* ``false_mono``: how many paper-mono neurons fire in context, without their own feature (on their own
  all-but-one input, or on a random training-like input where their feature is off). ``mono_neurons - false_mono``
  is the number of neurons that are monosemantic beyond the single-feature probe.
* ``mean_fires_all_but_one``: the mean over neurons of how many of the N all-but-one inputs make a neuron fire
  (0 .. N); near N when most neurons respond to any dense input.

The probe's random inputs come from each instance's own stream (``data.PROBE_STREAM`` of its seed) with its
training feature probabilities, so they are the same at every checkpoint and independent of the group.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from . import metrics
from .config import ExperimentConfig
from .data import PROBE_STREAM, feature_probs, generator

Evaluator = Callable[[Sequence[ExperimentConfig], dict[str, Tensor]], dict[str, Tensor]]
EVALUATORS: dict[str, Evaluator] = {}

# Random inputs of the multi-feature probe per instance and checkpoint: enough to find neurons that fire on
# feature combinations, small enough to run at every checkpoint (I * k * N * 512 multiply-adds).
PROBE_SAMPLES = 512


def register(kind: str) -> Callable[[Evaluator], Evaluator]:
    def deco(fn: Evaluator) -> Evaluator:
        EVALUATORS[kind] = fn
        return fn

    return deco


def probe_inputs(cfgs: Sequence[ExperimentConfig]) -> tuple[Tensor, list[torch.Generator]]:
    """Per-instance feature probabilities (I, N) and fresh probe generators, one per instance seed.

    For the abs task the probe's inputs are non-negative with the task's overall density (the signed v1 - v2 of
    training has a random sign per active feature; a neuron's own-sign feature decides whether it fires).
    """
    probs = torch.stack([
        feature_probs(c.data.N, c.data.eps, c.data.distribution, c.data.power_law_exponent) for c in cfgs
    ])
    return probs, [generator(c.run.seed, PROBE_STREAM) for c in cfgs]


@torch.no_grad()
def em_probe(
    cfgs: Sequence[ExperimentConfig], t: dict[str, Tensor], n_samples: int = PROBE_SAMPLES
) -> dict[str, Tensor]:
    """``metrics.multi_feature_probe`` of EM instances with each instance's own probe stream (see module doc)."""
    probs, gens = probe_inputs(cfgs)
    W1 = t["W1"]
    dtype = W1.dtype if W1.dtype in (torch.float32, torch.float64) else torch.float32
    return metrics.multi_feature_probe(
        W1.to(dtype), t["b1"].to(dtype), t["E"].to(dtype), cfgs[0].model.nonlinearity, probs.to(W1.device, dtype),
        n_samples=n_samples, generator=gens,
    )


@register("em")
def _em(cfgs: Sequence[ExperimentConfig], t: dict[str, Tensor]) -> dict[str, Tensor]:
    # float64: a diverged instance keeps its last finite parameters, which can be ~1e20; capacity squares the
    # Gram matrix (~W^4), which overflows float32 to inf/inf = NaN but is finite in float64.
    t64 = {name: t[name].double() for name in ("W1", "b1", "E")}
    out = metrics.em_metrics(t64["W1"], t64["b1"], t64["E"], cfgs[0].model.nonlinearity)
    probe = em_probe(cfgs, t64)
    out["false_mono"] = probe["false_mono"].double()
    out["mean_fires_all_but_one"] = probe["fires_all_but_one"].double().mean(-1)
    return {name: v.float() for name, v in out.items()}


@torch.no_grad()
def evaluate(cfgs: Sequence[ExperimentConfig], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    kind = cfgs[0].model.model
    if kind not in EVALUATORS:
        return {}
    return {name: v.detach().cpu() for name, v in EVALUATORS[kind](cfgs, tensors).items()}


# ---------------------------------------------------------------------------------------------------------------
# Superposition families (TMS, P&C quadratic model): shared/PAPERS.md §2-3.

#: ||W_i|| above this counts a TMS feature as represented (PAPERS.md §4 row 9).
TMS_REPRESENTED_NORM = 0.5
#: P&C capacities within this distance of 0 / 1 count as ignored / monosemantic; in between, fractional.
CAPACITY_TOLERANCE = 0.05


def tms_superposition(W: Tensor) -> Tensor:
    """TMS per-feature superposition sum_{j != i} (W_i_hat . W_j)^2, (I, n), for W (I, m, n); 0 for a zero column."""
    norms = W.norm(dim=-2)
    W_hat = W / norms.clamp(min=1e-12).unsqueeze(-2)
    overlap = (W_hat.transpose(-1, -2) @ W).pow(2)  # (I, i, j)
    out = overlap.sum(-1) - torch.diagonal(overlap, dim1=-2, dim2=-1)
    return torch.where(norms > 0, out, torch.zeros_like(out))


@register("tms")
def _tms(cfgs: Sequence[ExperimentConfig], t: dict[str, Tensor]) -> dict[str, Tensor]:
    """TMS summaries per instance (PAPERS.md §2.1):

    ``represented_features`` (count of ||W_i|| > 0.5), ``dims_per_feature`` D* = m / ||W||_F^2,
    ``mean_capacity`` / ``sum_capacity`` (mean / sum over features of D_i = C_i, sum <= m),
    ``superposition`` (mean over represented features of sum_{j != i} (W_i_hat . W_j)^2; 0 if none),
    ``mean_bias``, ``min_bias``.
    """
    W, b = t["W"].double(), t["b"].double()
    norms = W.norm(dim=-2)
    rep = norms > TMS_REPRESENTED_NORM
    cap = metrics.capacity(W)
    sup = tms_superposition(W)
    n_rep = rep.sum(-1)
    return {
        "represented_features": n_rep.double(),
        "dims_per_feature": metrics.dims_per_feature(W),
        "mean_capacity": cap.mean(-1),
        "sum_capacity": cap.sum(-1),
        "superposition": (sup * rep).sum(-1) / n_rep.clamp(min=1),
        "mean_bias": b.mean(-1),
        "min_bias": b.amin(-1),
    }


_OPTIMAL_LOSS: dict[tuple, float] = {}


@register("quadratic")
def _quadratic(cfgs: Sequence[ExperimentConfig], t: dict[str, Tensor]) -> dict[str, Tensor]:
    """P&C quadratic-model summaries per instance (PAPERS.md §3):

    ``sum_capacity`` (<= D) and ``mean_capacity``; counts of ``monosemantic_features`` (C_i > 0.95),
    ``fractional_features`` (0.05 <= C_i <= 0.95) and ``ignored_features`` (C_i < 0.05);
    ``expected_loss``: the closed-form expected loss of the model as it is (its own bias), comparable to
    ``final_loss``; ``optimal_loss``: the lowest expected loss any model of this size can reach
    (``quadratic_capacity_theory``).
    """
    from .models import quadratic_capacity_theory, quadratic_expected_loss

    W, b, v = t["W"].double(), t["b"].double(), t["importance"].double()
    K = torch.tensor([c.data.kurtosis for c in cfgs], dtype=torch.float64)
    cap = metrics.capacity(W)
    opt_list = []
    for i, c in enumerate(cfgs):
        key = (c.model.m, c.data.kurtosis, tuple(v[i].tolist()))
        if key not in _OPTIMAL_LOSS:  # the same for every checkpoint: computed once per process
            _OPTIMAL_LOSS[key] = quadratic_capacity_theory(v[i], c.model.m, c.data.kurtosis)[1]
        opt_list.append(_OPTIMAL_LOSS[key])
    opt = torch.tensor(opt_list, dtype=torch.float64)
    tol = CAPACITY_TOLERANCE
    return {
        "sum_capacity": cap.sum(-1),
        "mean_capacity": cap.mean(-1),
        "monosemantic_features": (cap > 1 - tol).sum(-1).double(),
        "fractional_features": ((cap >= tol) & (cap <= 1 - tol)).sum(-1).double(),
        "ignored_features": (cap < tol).sum(-1).double(),
        "expected_loss": quadratic_expected_loss(W, b, v, K),
        "optimal_loss": opt,
    }
