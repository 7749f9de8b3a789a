"""One step's batches for a whole group from its per-instance generators, with the arithmetic done once.

On the CPU each instance draws from its own ``torch.Generator`` (``data.FeatureSampler``: every earlier result
depends on it). Filling a group instance by instance costs about fifteen small tensor operations per instance and
step; at quick sizes (18 instances of N=128, k=256) that dispatch overhead is a sizeable share of the step. Here each
generator still draws exactly the numbers it drew before, in the same order (the uniforms of the geometric gaps, then
the values), but the gaps, positions and writes of all instances are computed together: the batches are the same to
the bit (``tests/engine/test_group_sampling.py``), and so is everything trained from them.

Groups this does not cover (dense draws, firing structures, other samplers) are filled instance by instance.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from toymodels.engine import data
from toymodels.engine.data import FeatureSampler, Sampler


def _batchable(samplers: Sequence[Sampler]) -> bool:
    first = samplers[0] if samplers else None
    return (
        isinstance(first, FeatureSampler) and len(samplers) > 1
        and all(type(s) is FeatureSampler and s.sparse and (s.p, s.N, s.batch, s.signed, s.device)
                == (first.p, first.N, first.batch, first.signed, first.device) for s in samplers)
    )


class GroupFill:
    """Fills ``v[i]`` from ``samplers[i]`` for every instance: the numbers of calling each sampler's ``fill`` in turn.

    ``fill(v, step)`` has the signature of ``counter_rng.CounterFeatureSampler.fill``, so the training loop draws
    through either; ``step`` is not needed here (each generator carries its own position).

    >>> GroupFill(samplers).fill(v, step)   # v: (instances, batch, features), overwritten  # doctest: +SKIP
    """

    def __init__(self, samplers: Sequence[Sampler]):
        self.samplers = list(samplers)
        self.batched = _batchable(self.samplers)
        if self.batched:
            s0 = self.samplers[0]
            self.total = s0.batch * s0.N  # trials per instance and draw
            self.offsets = torch.arange(len(self.samplers), device=s0.device).unsqueeze(1) * self.total
        self._written: list[Tensor] = []  # flat positions of the last batch's non-zeros, to clear them

    def fill(self, v: Float[Tensor, "instances batch features"], step: int | None = None) -> None:
        if not self.batched:
            for i, s in enumerate(self.samplers):
                s.fill(v[i])
            return
        flat = v.view(-1)
        if self._written:
            for pos in self._written:
                flat.index_fill_(0, pos, 0.0)
        else:
            flat.zero_()
        self._written = []
        for sign in ((1.0, -1.0) if self.samplers[0].signed else (1.0,)):  # the abs task's v1 - v2
            pos, counts = self._positions()
            vals = torch.cat([torch.rand(n, generator=s.gen, device=v.device, dtype=v.dtype)
                              for s, n in zip(self.samplers, counts)])
            flat.index_add_(0, pos, vals if sign > 0 else -vals)  # adds: the two abs draws may overlap
            self._written.append(pos)

    def _positions(self) -> tuple[Tensor, list[int]]:
        """Every instance's Bernoulli(p) successes (``data.bernoulli_positions``: the same draws and arithmetic),
        offset by the instance's place in the flat group buffer, in instance order; and how many each has."""
        s0, total = self.samplers[0], self.total
        n = data.gap_draws(total, s0.p)
        u = torch.stack([torch.rand(n, generator=s.gen, device=s0.device) for s in self.samplers])
        pos = data.success_positions(u, math.log1p(-s0.p), -1)
        if bool((pos[:, -1] >= total).all()):  # the usual case: every draw reached the end
            inside = pos < total
            return (pos + self.offsets)[inside], inside.sum(1).tolist()
        # extremely rare: a draw ran short; each instance goes on as it does alone
        rows = [data.bernoulli_positions(total, s.p, s.gen, s.device, first=pos[i])
                for i, s in enumerate(self.samplers)]
        return torch.cat([row + i * total for i, row in enumerate(rows)]), [row.numel() for row in rows]
