"""Which features fire together and how large they are: the structures of docs/dictionary_learning.md §Data.

The papers' toy models draw every feature independently, active with probability p_i and then U[0, 1). Dictionary
learning asks what a sparse autoencoder recovers when that is not so, so the data layer also offers (config section
``firing``, used by ``data.feature_sampler``):

* ``correlated``: a Gaussian copula. z ~ N(0, C) with C a correlation matrix, feature i fires when z_i < Phi^-1(p_i),
  so each feature keeps its marginal p_i while pairs fire together (C_ij > 0) or avoid each other (C_ij < 0). C is
  (1 - s) I + s R with R a random correlation matrix (normalised Wishart), blocks of ones, or a rank-r one.
* ``exclusive``: features in consecutive groups; at most one per group fires, feature i with probability p_i (the
  group's probabilities must sum to at most 1), so the marginals are again exactly p_i.
* ``hierarchical``: complete trees (branching b, depth D, heap order: node j's parent is (j - 1) // b); a root fires
  with p_i, a child with ``hierarchy_child_prob`` but only when its parent fires. Features past the last whole tree
  are independent roots.

Magnitudes are per feature: feature i's mean mu_i runs geometrically from sqrt(spread) mu to mu / sqrt(spread), with
a uniform U[0, 2 mu_i), constant, folded normal |N(mu_i, sigma)| or exponential law. The random parts of a structure
(R) come from a generator the caller seeds (``structure_seed``), so every instance with that seed shares it.

SAELens' ``sae_lens.synthetic`` module offers the same kinds of firing (Gaussian copula, low-rank correlation,
mutually exclusive groups, hierarchies); this module is written for toymodels' per-instance samplers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from toymodels.engine.threads import one_thread

CORRELATION_KINDS = ("random", "block", "low_rank")
MAGNITUDE_KINDS = ("uniform", "constant", "folded_normal", "exponential")
#: eigenvalues above -PSD_TOLERANCE count as >= 0 (round-off of the eigen-solver on an exactly PSD matrix)
PSD_TOLERANCE = 1e-9


def correlation_matrix(
    N: int, kind: str, strength: float, rank: int, block: int, gen: torch.Generator
) -> Float[Tensor, "features features"]:
    """(1 - s) I + s R, float64, unit diagonal; R per ``kind`` (module docstring). Not necessarily PSD for s < 0.

    >>> C = correlation_matrix(4, "block", 0.5, 1, 2, torch.Generator().manual_seed(0))
    >>> C[0].tolist()
    [1.0, 0.5, 0.0, 0.0]
    """
    if kind == "block":
        ids = torch.arange(N) // block
        R = (ids[:, None] == ids[None, :]).double()
    elif kind in ("random", "low_rank"):
        cols = N if kind == "random" else rank
        G = torch.randn(N, cols, generator=gen, dtype=torch.float64)
        R = G @ G.T
        d = R.diagonal().clamp(min=1e-12).sqrt()
        R = R / d[:, None] / d[None, :]
    else:
        raise ValueError(f"field 'correlation': must be one of {', '.join(CORRELATION_KINDS)} (got {kind!r})")
    C = (1 - strength) * torch.eye(N, dtype=torch.float64) + strength * R
    C.diagonal().fill_(1.0)
    return C


def psd_factor(C: Float[Tensor, "features features"]) -> tuple[Float[Tensor, "features features"], float]:
    """(F, smallest eigenvalue) with F F^T = C when C is PSD (eigenvalues below 0 by round-off clipped to 0)."""
    with one_thread():  # threads.one_thread: fast when busy, the same bits everywhere
        evals, evecs = torch.linalg.eigh(C)
    return evecs * evals.clamp(min=0).sqrt(), float(evals.min())


def tree_size(branching: int, depth: int) -> int:
    """Nodes of a complete tree: 1 + b + ... + b^(D-1)."""
    return depth if branching == 1 else (branching**depth - 1) // (branching - 1)


def hierarchy_parents(N: int, branching: int, depth: int) -> Int[Tensor, " features"]:
    """Parent index of every feature (-1 for roots): whole trees in heap order, the rest independent roots.

    >>> hierarchy_parents(7, 2, 2).tolist()
    [-1, 0, 0, -1, 3, 3, -1]
    """
    T = tree_size(branching, depth)
    parents = torch.full((N,), -1, dtype=torch.long)
    for start in range(0, N - T + 1, T):
        j = torch.arange(1, T)
        parents[start + j] = start + (j - 1) // branching
    return parents


def magnitude_means(N: int, mean: float, spread: float) -> Float[Tensor, " features"]:
    """mu_i: geometric from mean * sqrt(spread) (first feature) to mean / sqrt(spread) (last), float64."""
    if N == 1:
        return torch.full((1,), float(mean), dtype=torch.float64)
    t = torch.arange(N, dtype=torch.float64) / (N - 1)
    return mean * spread ** (0.5 - t)


@dataclass
class FiringStructure:
    """One instance's firing law: ``draw`` gives a (batch, features) mask of active features.

    ``cond`` holds p_i (roots / every feature) or the child probability (children of a hierarchy); ``parents``
    is -1 for roots; ``groups`` the exclusive group of each feature; ``factor`` F with F F^T = C (correlated).
    """

    kind: str
    cond: Float[Tensor, " features"]
    parents: Int[Tensor, " features"]
    groups: Int[Tensor, " features"] | None = None
    factor: Float[Tensor, "features features"] | None = None

    def __post_init__(self) -> None:
        self._device: torch.device | None = None

    def to(self, device: torch.device) -> "FiringStructure":
        """Keep float32 copies of the parts ``draw`` uses on ``device``."""
        self._device = torch.device(device)
        self._p = self.cond.to(device, torch.float32)
        if self.kind == "correlated":
            self._F = self.factor.to(device, torch.float32)
            self._thr = torch.special.ndtri(self.cond.clamp(0, 1)).to(device, torch.float32)
        if self.kind == "exclusive":
            # feature i fires when its group's uniform lands in [hi_i - p_i, hi_i), hi = cumulative p in the group
            p = self.cond
            hi = torch.zeros_like(p)
            for g in self.groups.unique():
                idx = (self.groups == g).nonzero().flatten()
                hi[idx] = p[idx].cumsum(0)
            self._hi = hi.to(device, torch.float32)
            self._lo = (hi - p).to(device, torch.float32)
            self._gid = self.groups.to(device)
            self._n_groups = int(self.groups.max()) + 1
        if self.kind == "hierarchical":
            self._parent = torch.where(self.parents < 0, torch.arange(len(self.parents)), self.parents).to(device)
            self._root = (self.parents < 0).to(device)
            self._depth = self.depth()
        return self

    def depth(self) -> int:
        """Levels of the deepest tree (1 without a hierarchy)."""
        level = torch.zeros(len(self.parents), dtype=torch.long)
        for j in range(len(self.parents)):
            if self.parents[j] >= 0:
                level[j] = level[self.parents[j]] + 1
        return int(level.max()) + 1

    def draw(self, batch: int, gen: torch.Generator) -> Bool[Tensor, "batch features"]:
        N = len(self.cond)
        dev = self._device
        if self.kind == "correlated":
            z = torch.randn(batch, N, generator=gen, device=dev) @ self._F.T
            return z < self._thr
        if self.kind == "exclusive":
            u = torch.rand(batch, self._n_groups, generator=gen, device=dev)[:, self._gid]
            return (u >= self._lo) & (u < self._hi)
        base = torch.rand(batch, N, generator=gen, device=dev) < self._p
        if self.kind == "hierarchical":
            fire = base
            for _ in range(self._depth - 1):  # level by level: a child fires only if its parent does
                fire = base & (self._root | fire[:, self._parent])
            return fire
        return base


@dataclass
class Magnitudes:
    """Per-feature magnitude laws (module docstring); ``draw`` fills the values of a (batch, features) draw."""

    kind: str
    mean: Float[Tensor, " features"]
    std: float = 0.0

    def draw(self, batch: int, gen: torch.Generator, device: torch.device, dtype: torch.dtype) -> Tensor:
        mu = self.mean.to(device, dtype)
        shape = (batch, len(mu))
        if self.kind == "uniform":
            return torch.rand(shape, generator=gen, device=device, dtype=dtype) * (2 * mu)
        if self.kind == "constant":
            return mu.expand(shape).clone()
        if self.kind == "folded_normal":
            return (mu + self.std * torch.randn(shape, generator=gen, device=device, dtype=dtype)).abs()
        if self.kind == "exponential":
            return -mu * torch.log1p(-torch.rand(shape, generator=gen, device=device, dtype=dtype))
        raise ValueError(f"field 'magnitude': must be one of {', '.join(MAGNITUDE_KINDS)} (got {self.kind!r})")


def exclusive_sums(probs: Float[Tensor, " features"], group_size: int) -> Float[Tensor, " groups"]:
    """Sum of p_i per consecutive group (must be <= 1 for exclusive firing)."""
    n_groups = math.ceil(len(probs) / group_size)
    padded = torch.zeros(n_groups * group_size, dtype=probs.dtype)
    padded[: len(probs)] = probs
    return padded.view(n_groups, group_size).sum(1)
