"""Feature distributions, samplers, fixed embedders and the EM tasks' targets.

Each instance owns its random streams (derived from its seed), so an instance draws the same embedder, init and
batches whether it trains alone or inside any group. Samplers fill one instance's (B, N) slice in place.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

# Stream ids: one independent torch.Generator per (instance seed, purpose).
INIT_STREAM, DATA_STREAM = 0, 1
# Above this probability the dense recipe (rand x bernoulli) is cheaper than drawing only the active entries.
SPARSE_MAX_P = 0.1


def stream_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for one purpose of one instance (numpy's SeedSequence mixes them well)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def generator(seed: int, stream: int, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(stream_seed(seed, stream))
    return g


def feature_probs(N: int, eps: float, distribution: str, exponent: float = 1.1) -> Float[Tensor, " N"]:
    """Per-feature probability of being active.

    uniform: every feature eps. power_law (EM paper's code): p_i = eps*N*i^-exponent / sum_j j^-exponent for
    i = 1..N, clipped at 1 -- so the mean is below eps when the first features clip (N=512, eps=1/64: p_1 = 1 and
    the expected number of active features is 7.47, not 8).

    >>> feature_probs(512, 1/64, "power_law")[0].item()
    1.0
    """
    if distribution == "uniform":
        return torch.full((N,), float(eps), dtype=torch.float64)
    if distribution == "power_law":
        i = torch.arange(1, N + 1, dtype=torch.float64)
        w = i ** (-exponent)
        return (eps * N * w / w.sum()).clamp(max=1.0)
    raise ValueError(f"field 'distribution': must be one of 'uniform', 'power_law' (got {distribution!r})")


def make_embedder(N: int, m: int, gen: torch.Generator) -> Float[Tensor, "m N"]:
    """The paper's fixed random embedding: SVD of a Gaussian N x m matrix, rows of U scaled to unit norm, E = U^T.

    Every feature's column of E is a unit vector in R^m; when N > m the columns are as spread out as an
    orthonormal frame allows (E E^T ~ (N/m) I).
    """
    a = torch.randn(N, m, generator=gen, dtype=torch.float64)
    u, _, _ = torch.linalg.svd(a, full_matrices=False)
    u = u / u.norm(dim=1, keepdim=True)
    return u.T.contiguous().float()


def _bernoulli_positions(total: int, p: float, gen: torch.Generator, device: torch.device) -> Tensor:
    """Positions of the successes of `total` Bernoulli(p) trials, drawn exactly via geometric gaps.

    Gap-1 ~ floor(log U / log(1-p)) with U uniform on (0, 1]; cumulative sums of the gaps are the positions.
    Draws about total*p numbers instead of total.
    """
    if p >= 1.0:
        return torch.arange(total, device=device)
    log_q = math.log1p(-p)
    mean = total * p
    n = int(mean + 8.0 * math.sqrt(mean) + 16)
    pieces, start = [], -1
    while True:
        u = torch.rand(n, generator=gen, device=device)
        gaps = torch.floor(torch.log1p(-u) / log_q).long() + 1
        pos = torch.cumsum(gaps, 0) + start
        pieces.append(pos)
        last = int(pos[-1])
        if last >= total:
            break
        start = last  # extremely rare: the draw ran short, continue the process from the last success
    pos = torch.cat(pieces)
    return pos[pos < total]


class FeatureSampler:
    """Draws one instance's sparse feature batches: v_i = U[0,1) with probability p_i, else 0.

    ``signed=True`` gives the abs task's input v1 - v2 with each of v1, v2 drawn at half the probability.
    """

    def __init__(self, probs: Tensor, batch: int, gen: torch.Generator, device: torch.device, signed: bool = False):
        self.N = probs.numel()
        self.batch = batch
        self.gen = gen
        self.device = torch.device(device)
        self.signed = signed
        self.probs = (probs / 2 if signed else probs).to(self.device, torch.float32)
        p0 = float(probs[0])
        self.uniform = bool((probs == probs[0]).all())
        self.p = p0 / 2 if signed else p0
        self.sparse = self.uniform and self.p <= SPARSE_MAX_P
        self._last: list[Tensor] = []

    def _draw(self, out_flat: Tensor, sign: float) -> None:
        if self.sparse:
            pos = _bernoulli_positions(out_flat.numel(), self.p, self.gen, self.device)
            vals = torch.rand(pos.numel(), generator=self.gen, device=self.device, dtype=out_flat.dtype)
            out_flat.index_put_((pos,), vals if sign > 0 else -vals, accumulate=True)
            self._last.append(pos)
        else:
            shape = (self.batch, self.N)
            mask = torch.rand(shape, generator=self.gen, device=self.device) < self.probs
            vals = torch.rand(shape, generator=self.gen, device=self.device, dtype=out_flat.dtype)
            out_flat.add_((vals * mask).view(-1), alpha=sign)

    def fill(self, out: Float[Tensor, "B N"]) -> None:
        """Overwrite ``out`` with a fresh batch (only the previously written entries are cleared when sparse)."""
        flat = out.view(-1)
        if self.sparse and self._last:
            for pos in self._last:
                flat.index_fill_(0, pos, 0.0)
        else:
            flat.zero_()
        self._last = []
        self._draw(flat, 1.0)
        if self.signed:
            self._draw(flat, -1.0)

    def sample(self) -> Float[Tensor, "B N"]:
        out = torch.zeros(self.batch, self.N, device=self.device)
        self.fill(out)
        return out

    # Generator state, for mid-run checkpoints.
    def get_state(self) -> Tensor:
        return self.gen.get_state()

    def set_state(self, state: Tensor) -> None:
        self.gen.set_state(state)
        self._last = []
