"""Feature distributions, samplers, fixed embedders and the EM tasks' targets.

Each instance owns its random streams (derived from its seed), so an instance draws the same embedder, init and
batches whether it trains alone or inside any group. Samplers fill one instance's (batch, features) slice in place.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from toymodels.engine import firing as fs
from toymodels.engine.threads import one_thread
from toymodels.config.registry import CONFIG_CHECKS, get_family

# Stream ids: one independent torch.Generator per (instance seed, purpose).
INIT_STREAM, DATA_STREAM = 0, 1
# The multi-feature probe's random inputs (evaluate.py): the same inputs at every checkpoint of an instance.
PROBE_STREAM = 2
# The fixed random structure of the data (correlation matrix, synthetic dictionary), seeded by ``structure_seed``.
STRUCTURE_STREAM = 3
# Above this probability the dense recipe (rand x bernoulli) is cheaper than drawing only the active entries.
SPARSE_MAX_P = 0.1


def stream_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for one purpose of one instance (numpy's SeedSequence mixes them well)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def generator(seed: int, stream: int, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(stream_seed(seed, stream))
    return g


def feature_probs(N: int, eps: float, distribution: str, exponent: float = 1.1) -> Float[Tensor, " features"]:
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


def make_embedder(N: int, m: int, gen: torch.Generator) -> Float[Tensor, "hidden features"]:
    """The paper's fixed random embedding: SVD of a Gaussian N x m matrix, rows of U scaled to unit norm, E = U^T.

    Every feature's column of E is a unit vector in R^m; when N > m the columns are as spread out as an
    orthonormal frame allows (E E^T ~ (N/m) I).
    """
    a = torch.randn(N, m, generator=gen, dtype=torch.float64)
    with one_thread():  # fast on a busy machine, and the same bits on every machine (threads.one_thread)
        u, _, _ = torch.linalg.svd(a, full_matrices=False)
    u = u / u.norm(dim=1, keepdim=True)
    return u.T.contiguous().float()


def success_positions(u: Tensor, log_q: float, start: int) -> Tensor:
    """Bernoulli successes after position ``start`` from uniforms ``u`` on [0, 1), one per success, along the last
    axis: gap = floor(log(1 - u) / log(1 - p)) + 1, positions the running sums of the gaps."""
    return torch.cumsum(torch.floor(torch.log1p(-u) / log_q).long() + 1, -1) + start


def gap_draws(total: int, p: float) -> int:
    """How many geometric gaps one draw of ``bernoulli_positions`` takes: the mean plus 8 standard deviations (a
    draw that still runs short continues)."""
    mean = total * p
    return int(mean + 8.0 * math.sqrt(mean) + 16)


def bernoulli_positions(total: int, p: float, gen: torch.Generator, device: torch.device,
                        first: Tensor | None = None) -> Tensor:
    """Positions of the successes of `total` Bernoulli(p) trials, drawn exactly via geometric gaps.

    Gap-1 ~ floor(log U / log(1-p)) with U uniform on (0, 1]; cumulative sums of the gaps are the positions.
    Draws about total*p numbers instead of total. ``first``: the positions of the first draw when it was already
    made (``group_sampling`` makes it for a whole group at once).
    """
    if p >= 1.0:
        return torch.arange(total, device=device)
    log_q = math.log1p(-p)
    n = gap_draws(total, p)
    pos = success_positions(torch.rand(n, generator=gen, device=device), log_q, -1) if first is None else first
    pieces = [pos]
    while int(pos[-1]) < total:  # extremely rare: the draw ran short, continue the process from the last success
        pos = success_positions(torch.rand(n, generator=gen, device=device), log_q, int(pos[-1]))
        pieces.append(pos)
    pos = torch.cat(pieces)
    return pos[pos < total]


class Sampler:
    """A per-instance batch source: ``fill`` overwrites a (batch, features) slice; the generator state makes it
    resumable."""

    N: int
    batch: int
    gen: torch.Generator
    device: torch.device

    def fill(self, out: Float[Tensor, "batch features"]) -> None:
        raise NotImplementedError

    def sample(self) -> Float[Tensor, "batch features"]:
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
            pos = bernoulli_positions(out_flat.numel(), self.p, self.gen, self.device)
            vals = torch.rand(pos.numel(), generator=self.gen, device=self.device, dtype=out_flat.dtype)
            out_flat.index_add_(0, pos, vals if sign > 0 else -vals)  # adds: abs draws v1 - v2 may overlap
            self._last.append(pos)
        else:
            shape = (self.batch, self.N)
            mask = torch.rand(shape, generator=self.gen, device=self.device) < self.probs
            vals = torch.rand(shape, generator=self.gen, device=self.device, dtype=out_flat.dtype)
            out_flat.add_((vals * mask).view(-1), alpha=sign)

    def fill(self, out: Float[Tensor, "batch features"]) -> None:
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
# Firing structures (config section ``firing``; toymodels.engine.firing): the samplers of any family that reads them.

def default_firing(f: Any) -> bool:
    """True when the ``firing`` section asks for the papers' independent U[0, 1) features (FeatureSampler)."""
    return (f.firing == "independent" and f.magnitude == "uniform" and f.magnitude_mean == 0.5
            and f.magnitude_spread == 1.0)


def _firing_key(d: Any, f: Any) -> tuple:
    return (d.N, d.eps, d.distribution, d.power_law_exponent, *f.model_dump().values())


@functools.lru_cache(maxsize=64)
def _structure(key: tuple) -> tuple[fs.FiringStructure | None, str | None]:
    N, eps, distribution, exponent = key[:4]
    f = dict(zip(("firing", "correlation", "correlation_strength", "correlation_rank", "feature_group_size",
                  "hierarchy_branching", "hierarchy_depth", "hierarchy_child_prob", "magnitude", "magnitude_mean",
                  "magnitude_std", "magnitude_spread", "structure_seed"), key[4:]))
    probs = feature_probs(N, eps, distribution, exponent)
    parents = torch.full((N,), -1, dtype=torch.long)
    kind = f["firing"]
    if kind == "correlated":
        gen = generator(f["structure_seed"], STRUCTURE_STREAM)
        C = fs.correlation_matrix(N, f["correlation"], f["correlation_strength"], f["correlation_rank"],
                                  f["feature_group_size"], gen)
        factor, low = fs.psd_factor(C)
        if low < -fs.PSD_TOLERANCE:
            return None, (f"field 'correlation_strength': the {f['correlation']} correlation matrix with strength "
                          f"{f['correlation_strength']} is not positive semi-definite (smallest eigenvalue "
                          f"{low:.3g}); use a strength in [0, 1] or a smaller negative one")
        return fs.FiringStructure(kind, probs, parents, factor=factor), None
    if kind == "exclusive":
        sums = fs.exclusive_sums(probs, f["feature_group_size"])
        if float(sums.max()) > 1 + 1e-12:
            return None, (f"field 'feature_group_size': exclusive groups need their probabilities to sum to at most "
                          f"1 (group {int(sums.argmax())} sums to {float(sums.max()):.3g}); use smaller groups or a "
                          "lower eps")
        groups = torch.arange(N) // f["feature_group_size"]
        return fs.FiringStructure(kind, probs, parents, groups=groups), None
    if kind == "hierarchical":
        T = fs.tree_size(f["hierarchy_branching"], f["hierarchy_depth"])
        if T > N:
            return None, (f"field 'hierarchy_depth': a tree of branching {f['hierarchy_branching']} and depth "
                          f"{f['hierarchy_depth']} has {T} features, more than N={N}")
        parents = fs.hierarchy_parents(N, f["hierarchy_branching"], f["hierarchy_depth"])
        cond = torch.where(parents < 0, probs, torch.full_like(probs, f["hierarchy_child_prob"]))
        return fs.FiringStructure(kind, cond, parents), None
    return fs.FiringStructure("independent", probs, parents), None


#: the rarest feature probability a sampler draws: the sparse draw's gaps between firings (up to 17/p positions,
#: int64) overflow near 1e-17, and a rarer feature never fires in any run anyway
MIN_EPS = 1e-12


def eps_problem(cfg: Any) -> str | None:
    """Why ``eps`` is too small to sample (one line naming the field), or None."""
    if cfg.data.eps < MIN_EPS:
        return (f"field 'eps': must be at least {MIN_EPS:g} (got {cfg.data.eps:g}); a feature that rare never fires "
                "in any run")
    return None


CONFIG_CHECKS.register("eps", eps_problem)


def firing_config_problem(cfg: Any) -> str | None:
    """Why an ExperimentConfig's firing section cannot apply (one line naming the field), or None: non-default
    firing only for families that read it (``"firing"`` in their ``fields``), never with the abs task's signed
    inputs, and only a structure that exists (``firing_problem``)."""
    f = cfg.firing
    if default_firing(f):
        return None
    family = get_family(cfg.model.model)
    if "firing" not in family.fields:
        return (f"field 'firing': model '{family.name}' draws independent features only (its sampler does not read "
                f"the firing fields; got firing={f.firing!r}, magnitude={f.magnitude!r})")
    if cfg.task.task == "abs" and f.firing != "independent":
        return f"field 'firing': task 'abs' (inputs v1 - v2) supports only 'independent' (got {f.firing!r})"
    return firing_problem(cfg.data, f)


CONFIG_CHECKS.register("firing", firing_config_problem)


def firing_problem(d: Any, f: Any) -> str | None:
    """Why the data and firing sections describe no distribution (one line naming the field), or None."""
    return _structure(_firing_key(d, f))[1]


def firing_structure(d: Any, f: Any) -> fs.FiringStructure:
    """The firing law of data section ``d`` and firing section ``f`` (its random parts from ``structure_seed``)."""
    structure, why = _structure(_firing_key(d, f))
    if why:
        raise ValueError(why)
    return structure


def magnitudes(d: Any, f: Any) -> fs.Magnitudes:
    return fs.Magnitudes(f.magnitude, fs.magnitude_means(d.N, f.magnitude_mean, f.magnitude_spread), f.magnitude_std)


class StructuredSampler(Sampler):
    """One instance's feature batches with a firing structure and magnitude law (``toymodels.engine.firing``)."""

    def __init__(self, structure: fs.FiringStructure, mags: fs.Magnitudes, batch: int, gen: torch.Generator,
                 device: torch.device):
        self.N, self.batch, self.gen, self.device = len(structure.cond), batch, gen, torch.device(device)
        self.structure = structure.to(self.device)
        self.mags = mags

    def fill(self, out: Float[Tensor, "batch features"]) -> None:
        mask = self.structure.draw(self.batch, self.gen)
        out.copy_(self.mags.draw(self.batch, self.gen, self.device, out.dtype).mul_(mask))


def feature_sampler(d: Any, f: Any, batch: int, gen: torch.Generator, device: torch.device,
                    signed: bool = False) -> Sampler:
    """The feature sampler of data section ``d`` and firing section ``f``: FeatureSampler (unchanged, bit for bit)
    for the default independent U[0, 1) features, else a StructuredSampler."""
    if default_firing(f):
        probs = feature_probs(d.N, d.eps, d.distribution, d.power_law_exponent)
        return FeatureSampler(probs, batch, gen, device, signed=signed)
    return StructuredSampler(firing_structure(d, f), magnitudes(d, f), batch, gen, device)


# ---------------------------------------------------------------------------------------------------------------
# Superposition families (TMS and the P&C quadratic model): feature importance and inputs of chosen kurtosis.

def importance(N: int, decay: float = 1.0, ratio: float = 1.0) -> Float[Tensor, " features"]:
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

    def fill(self, out: Float[Tensor, "batch features"]) -> None:
        shape = tuple(out.shape)
        if self.base == "gaussian":
            s = torch.randn(shape, generator=self.gen, device=self.device, dtype=out.dtype)
        else:
            s = torch.randint(0, 2, shape, generator=self.gen, device=self.device).to(out.dtype).mul_(2).sub_(1)
        if self.q < 1.0:
            s.mul_(torch.rand(shape, generator=self.gen, device=self.device) < self.q)
        out.copy_(s.mul_(self.scale))


