"""Which metrics each model family reports, at every checkpoint and for the final model.

``evaluate(cfgs, tensors)`` takes a group's tensors (instance axis first, as the model's ``state_tensors``) and
returns ``{metric name: (I,) tensor}``; these names become columns of instances.parquet and rows of metrics.parquet.
Families register an evaluator here, so the sweep runner needs no per-model code.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from . import metrics
from .config import ExperimentConfig

Evaluator = Callable[[Sequence[ExperimentConfig], dict[str, Tensor]], dict[str, Tensor]]
EVALUATORS: dict[str, Evaluator] = {}


def register(kind: str) -> Callable[[Evaluator], Evaluator]:
    def deco(fn: Evaluator) -> Evaluator:
        EVALUATORS[kind] = fn
        return fn

    return deco


@register("em")
def _em(cfgs: Sequence[ExperimentConfig], t: dict[str, Tensor]) -> dict[str, Tensor]:
    return metrics.em_metrics(t["W1"].float(), t["b1"].float(), t["E"].float(), cfgs[0].model.nonlinearity)


@torch.no_grad()
def evaluate(cfgs: Sequence[ExperimentConfig], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    kind = cfgs[0].model.model
    if kind not in EVALUATORS:
        return {}
    return {name: v.detach().cpu() for name, v in EVALUATORS[kind](cfgs, tensors).items()}
