"""Parts shared by the superposition families (TMS, the P&C quadratic model): per-instance xavier init, the
feature importances and a module holding W, b and the importances."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from toymodels.config import ExperimentConfig
from toymodels.engine.data import importance
from toymodels.results.tables import settings


def xavier_normal(m: int, n: int, gen: torch.Generator) -> Tensor:
    """xavier_normal_ of ONE (m, n) matrix: std sqrt(2 / (m + n)).

    The TMS notebook applies xavier_normal_ to the joint (instances, features, hidden) tensor, whose fans then depend on the
    number of instances (std sqrt(2 / (m (n + I)))); here each instance gets the single-matrix value, so an
    instance starts the same whatever group it trains in.
    """
    return torch.randn((m, n), generator=gen) * math.sqrt(2.0 / (m + n))


def importances(cfgs: Sequence[ExperimentConfig]) -> Tensor:
    return torch.stack([
        importance(c.data.N, c.data.importance_decay, c.data.importance_ratio).float() for c in cfgs
    ])


class WeightsBiasImportance(nn.Module):
    """Shared parts of the superposition families: parameters W, b and the feature importances as a buffer."""

    param_names = ("W", "b")

    def __init__(self, W: Tensor, b: Tensor, importance: Tensor):
        super().__init__()
        self.W = nn.Parameter(W)
        self.b = nn.Parameter(b)
        self.register_buffer("importance", importance)

    def decayed_params(self) -> list[Tensor]:
        return [self.b]

    def state_tensors(self) -> dict[str, Tensor]:
        return {"W": self.W.detach(), "b": self.b.detach(), "importance": self.importance}


class WeightsBiasFamily:
    """The parts of a family object that the superposition families share: one (hidden, features) weight matrix used
    twice per step, inputs of width N, no family-specific check and no figures of their own. A subclass sets ``name``,
    ``summary``, ``tasks``, ``fields``, ``presentation`` and implements ``build``, ``from_tensors``, ``sampler`` and
    ``evaluate``."""

    def check(self, cfg: ExperimentConfig) -> str | None:
        return None

    def input_size(self, cfg: ExperimentConfig) -> int:
        return cfg.data.N

    def flops_per_step(self, cfg: ExperimentConfig) -> float:
        """Two (N x m) matmuls, forward and backward."""
        return 6.0 * cfg.optim.batch_size * cfg.data.N * cfg.model.m * 2

    def instance_bytes(self, cfg: ExperimentConfig) -> int:
        """A rough upper bound of one instance's training memory (activations, W and its optimizer state)."""
        d, mo, o = cfg.data, cfg.model, cfg.optim
        per_sample = 3 * d.N + mo.m
        return 4 * (4 * o.batch_size * per_sample + 6 * d.N * (mo.m + 1) + d.N * mo.m * 2)

    def figures(self) -> list:
        return []


def lowest_loss_per_setting(results: Any, by: str = "final_loss", limit: int | None = None) -> list[tuple[tuple, str]]:
    """(setting values, run id) of each setting's lowest-``by`` seed that did not diverge (the papers keep the
    lowest-loss restart), in the sweep's grid order; settings where every seed diverged are left out. With
    ``limit``, at most that many settings, evenly spread from the first to the last (the figures and report
    sections of the superposition families)."""
    picks = []
    for key, rows in settings(results):
        ok = rows[(rows["status"] == "ok")]
        column = by if by in ok.columns and ok[by].notna().any() else "final_loss"
        ok = ok[ok[column].notna()] if column in ok.columns else ok
        if len(ok):
            picks.append((key, str(ok.loc[ok[column].idxmin(), "run_id"])))
    if limit is not None and len(picks) > limit:
        idx = sorted({round(i * (len(picks) - 1) / max(1, limit - 1)) for i in range(limit)})
        picks = [picks[i] for i in idx]
    return picks
