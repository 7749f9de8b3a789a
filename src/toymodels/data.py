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
# The multi-feature probe's random inputs (evaluate.py): the same inputs at every checkpoint of an instance.
PROBE_STREAM = 2
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


class Sampler:
    """A per-instance batch source: ``fill`` overwrites a (B, N) slice; the generator state makes it resumable."""

    N: int
    batch: int
    gen: torch.Generator
    device: torch.device

    def fill(self, out: Float[Tensor, "B N"]) -> None:
        raise NotImplementedError

    def sample(self) -> Float[Tensor, "B N"]:
        out = torch.zeros(self.batch, self.N, device=self.device)
        self.fill(out)
        return out

    # Generator state, for mid-run checkpoints.
    def get_state(self) -> Tensor:
        return self.gen.get_state()

    def set_state(self, state: Tensor) -> None:
        self.gen.set_state(state)


class FeatureSampler(Sampler):
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
        # the sparse draw asks the host how far its positions reached (a sync per batch): on a GPU the dense draw,
        # exact too, keeps the step free of syncs
        self.sparse = self.uniform and self.p <= SPARSE_MAX_P and self.device.type == "cpu"
        self._last: list[Tensor] = []

    def _draw(self, out_flat: Tensor, sign: float) -> None:
        if self.sparse:
            pos = _bernoulli_positions(out_flat.numel(), self.p, self.gen, self.device)
            vals = torch.rand(pos.numel(), generator=self.gen, device=self.device, dtype=out_flat.dtype)
            out_flat.index_add_(0, pos, vals if sign > 0 else -vals)  # adds: abs draws v1 - v2 may overlap
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

    def set_state(self, state: Tensor) -> None:
        super().set_state(state)
        self._last = []  # the next fill clears the whole buffer


# ---------------------------------------------------------------------------------------------------------------
# Superposition families (TMS and the P&C quadratic model): feature importance and inputs of chosen kurtosis.

def importance(N: int, decay: float = 1.0, ratio: float = 1.0) -> Float[Tensor, " N"]:
    """Per-feature importance I_i = decay^i (i = 0..N-1), the last one multiplied by ``ratio``.

    TMS (docs/papers.md §2.2): I_i = 0.9^i (intro), 0.7^i (basic results), 1 (feature dimensionality); the n=2
    phase diagram uses I = [1, r] (decay 1, ratio r). P&C's quadratic model uses the same vector as its v_i.

    >>> importance(3, 0.5).tolist()
    [1.0, 0.5, 0.25]
    >>> importance(2, 1.0, 4.0).tolist()
    [1.0, 4.0]
    """
    imp = torch.tensor(float(decay), dtype=torch.float64) ** torch.arange(N, dtype=torch.float64)
    imp[-1] *= ratio
    return imp


def kurtosis_input(kurtosis: float, input_kind: str = "auto") -> tuple[str, float]:
    """The (base, q) that gives inputs x = s B / sqrt(q) of kurtosis K (zero mean, unit variance).

    B ~ Bernoulli(q) and s standard normal (``gaussian``: E x^4 = 3/q, so q = 3/K, K >= 3) or a random sign
    (``sign``: E x^4 = 1/q, so q = 1/K, any K >= 1; K = 1 is a plain Rademacher +-1, for which x^2 = 1 always).
    ``auto`` uses sign below K = 3 and gaussian from K = 3.

    >>> kurtosis_input(10.0)
    ('gaussian', 0.3)
    >>> kurtosis_input(2.0)
    ('sign', 0.5)
    """
    base = ("sign" if kurtosis < 3 else "gaussian") if input_kind == "auto" else input_kind
    if base == "gaussian":
        if kurtosis < 3:
            raise ValueError(f"field 'kurtosis': gaussian inputs have K >= 3 (got {kurtosis})")
        return base, 3.0 / kurtosis
    if base == "sign":
        return base, 1.0 / kurtosis
    raise ValueError(f"field 'input_kind': must be one of 'auto', 'gaussian', 'sign' (got {input_kind!r})")


class KurtosisSampler(Sampler):
    """One instance's batches of independent inputs x_i = s_i B_i / sqrt(q) with a chosen kurtosis K.

    Zero mean, unit variance, E x^4 = K (see :func:`kurtosis_input`). Used by the P&C quadratic model, whose
    expected loss depends on the input distribution only through K.
    """

    def __init__(self, N: int, kurtosis: float, input_kind: str, batch: int, gen: torch.Generator,
                 device: torch.device):
        self.N, self.batch, self.gen, self.device = N, batch, gen, torch.device(device)
        self.kurtosis = float(kurtosis)
        self.base, self.q = kurtosis_input(self.kurtosis, input_kind)
        self.scale = 1.0 / math.sqrt(self.q)

    def fill(self, out: Float[Tensor, "B N"]) -> None:
        shape = tuple(out.shape)
        if self.base == "gaussian":
            s = torch.randn(shape, generator=self.gen, device=self.device, dtype=out.dtype)
        else:
            s = torch.randint(0, 2, shape, generator=self.gen, device=self.device).to(out.dtype).mul_(2).sub_(1)
        if self.q < 1.0:
            s.mul_(torch.rand(shape, generator=self.gen, device=self.device) < self.q)
        out.copy_(s.mul_(self.scale))


