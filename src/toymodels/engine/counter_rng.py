"""Counter-based random numbers and a batched feature sampler for training whole groups on a GPU.

``FeatureSampler`` draws one instance at a time from a stateful ``torch.Generator``: a group of I instances costs I
passes, and resuming needs the generator states. Here every random number is a pure function of (instance key,
step, position), computed by Philox-4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as
1, 2, 3", SC'11; the Random123 library) in int64 tensor ops: a whole group's batch is one pass with no host sync,
resuming needs only the step, and the integer arithmetic is exact, so CPU and CUDA give the same numbers.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from toymodels.engine.data import DATA_STREAM, default_firing, feature_probs, stream_seed
from toymodels.config.registry import CONFIG_CHECKS, get_family

MASK32 = 0xFFFFFFFF
# Philox-4x32 multipliers and Weyl key increments (Random123's PHILOX_M4x32_* and PHILOX_W32_*).
M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
ROUNDS = 10


def _mulhilo(m: int, x: Tensor) -> tuple[Tensor, Tensor]:
    """(high, low) 32-bit words of the 64-bit product m * x, for a 32-bit constant m and 32-bit words x.

    int64 cannot hold a 64-bit product, so m is split into 16-bit halves: every partial product stays below 2**49.
    """
    a = x * (m & 0xFFFF)  # < 2**48
    b = x * (m >> 16)  # < 2**48; the product is a + b * 2**16
    t = a + ((b & 0xFFFF) << 16)  # < 2**49: the low 48 bits of the product, plus carries
    return (b >> 16) + (t >> 32), t & MASK32


def philox4x32_10(ctr: tuple, key: tuple) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Philox-4x32-10 of a counter (4 words) under a key (2 words): four 32-bit output words.

    Words are int64 tensors (or ints) in [0, 2**32), broadcast against each other. Random123's first known answer:

    >>> out = philox4x32_10((0, 0, 0, 0), (0, 0))
    >>> [f"{int(w):08x}" for w in out]
    ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']
    """
    c0, c1, c2, c3 = (torch.as_tensor(c, dtype=torch.int64) if not isinstance(c, Tensor) else c for c in ctr)
    k0, k1 = key
    for r in range(ROUNDS):
        if r:  # the key schedule: a Weyl sequence, bumped before every round but the first
            k0, k1 = (k0 + W0) & MASK32, (k1 + W1) & MASK32
        hi0, lo0 = _mulhilo(M0, c0)
        hi1, lo1 = _mulhilo(M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def instance_keys(seeds: list[int], stream: int, device: str | torch.device = "cpu") -> Int64[Tensor, "instances 2"]:
    """Philox keys of each seed's ``stream``: the low and high 32 bits of ``stream_seed(seed, stream)``.

    >>> instance_keys([0, 1], 1).shape
    torch.Size([2, 2])
    """
    words = [[s & MASK32, s >> 32] for s in (stream_seed(seed, stream) for seed in seeds)]
    return torch.tensor(words, dtype=torch.int64, device=device).reshape(len(seeds), 2)


def counter_uniform(keys: Int64[Tensor, "instances 2"], step: int | Tensor, shape: tuple[int, ...],
                    dtype: torch.dtype = torch.float32) -> Float[Tensor, "instances ..."]:
    """Uniforms in [0, 1) for each instance's key at ``step``: element k (row-major in ``shape``) is word k % 4 of
    Philox(counter = (k // 4, step low 32 bits, step high 32 bits, 0), key).

    The float is the word's top 24 bits times 2**-24: exact in float32, so never 1.0. ``step`` may be a 0-d int64
    tensor on the keys' device (no host sync); an instance's numbers never depend on the other rows of ``keys``.

    >>> u = counter_uniform(instance_keys([0], 1), step=3, shape=(2, 5))
    >>> u.shape, bool(((0 <= u) & (u < 1)).all())
    (torch.Size([1, 2, 5]), True)
    """
    n = math.prod(shape)
    blocks = (n + 3) // 4
    if isinstance(step, Tensor):
        step = step.to(keys.device, torch.int64)
    elif step < 0:
        raise ValueError(f"step must be non-negative (got {step})")
    c0 = torch.arange(blocks, device=keys.device, dtype=torch.int64).unsqueeze(0)  # (1, blocks)
    zero = torch.zeros((), dtype=torch.int64, device=keys.device)
    ctr = (c0, zero + (step & MASK32), zero + ((step >> 32) & MASK32), zero)
    key = (keys[:, 0:1], keys[:, 1:2])  # (instances, 1): broadcast against the blocks
    words = torch.stack(philox4x32_10(ctr, key), dim=-1).reshape(len(keys), 4 * blocks)[:, :n]
    return ((words >> 8).to(dtype) * 2.0**-24).reshape(len(keys), *shape)


class CounterFeatureSampler:
    """A group's sparse feature batches in one pass: v[i] = U[0,1) with probability p_i, else 0 (FeatureSampler's
    dense law), with no RNG state -- batch ``step`` is a pure function of (seed, stream, step).

    Each position takes its mask and value uniforms from distinct Philox words; ``signed=True`` (the abs task) gives
    v1 - v2 with each drawn at p/2, the four uniforms of a position being the four words of one Philox block.
    """

    def __init__(self, probs: Float[Tensor, "instances features"], batch: int, seeds: list[int],
                 device: str | torch.device, signed: bool = False, stream: int = DATA_STREAM):
        self.device = torch.device(device)
        probs = torch.as_tensor(probs)
        if probs.dim() == 1:
            probs = probs.expand(len(seeds), -1)
        if probs.dim() != 2 or probs.shape[0] != len(seeds):
            raise ValueError(f"probs must be (instances, features) with one row per seed ({len(seeds)} seeds; "
                             f"got shape {tuple(probs.shape)})")
        self.I, self.N = probs.shape
        self.batch = batch
        self.signed = signed
        # float32 like FeatureSampler, so a value of p compares the same way against a 24-bit uniform
        # (instances, 1, features)
        self.probs = (probs / 2 if signed else probs).to(self.device, torch.float32).unsqueeze(1)
        self.keys = instance_keys(seeds, stream, self.device)

    def fill(self, v: Float[Tensor, "instances batch features"], step: int | Tensor) -> None:
        """Overwrite ``v`` with batch ``step`` of every instance (tensor ops only: no host sync)."""
        if tuple(v.shape) != (self.I, self.batch, self.N):
            raise ValueError(f"v must have shape {(self.I, self.batch, self.N)} (got {tuple(v.shape)})")
        lanes = 4 if self.signed else 2  # (mask, value) per draw
        u = counter_uniform(self.keys, step, (self.batch, self.N, lanes), dtype=v.dtype)
        out = u[..., 1].mul_(u[..., 0] < self.probs)
        if self.signed:
            out = out.sub_(u[..., 3].mul_(u[..., 2] < self.probs))
        v.copy_(out)


def supports(cfg: Any) -> bool:
    """True when ``cfg``'s family draws its inputs through a group sampler and its features are the default
    independent U[0, 1) ones (the law ``CounterFeatureSampler`` draws)."""
    return hasattr(get_family(cfg.model.model), "group_sampler") and default_firing(cfg.firing)


def sampler_problem(cfg: Any) -> str | None:
    """Why the config's ``sampler`` cannot draw its features (one line naming the field), or None."""
    if cfg.run.sampler == "counter" and not supports(cfg):
        return ("field 'sampler': 'counter' draws the independent U[0, 1) features of models em and tms only "
                f"(got model {cfg.model.model!r}, firing {cfg.firing.firing!r}); use 'generator' or 'auto'")
    return None


CONFIG_CHECKS.register("sampler", sampler_problem)


def group_feature_sampler(cfgs: Sequence[Any], device: torch.device, signed: bool = False) -> CounterFeatureSampler:
    """The counter-based sampler of a group whose instances draw default independent features (``supports``)."""
    probs = torch.stack([feature_probs(c.data.N, c.data.eps, c.data.distribution, c.data.power_law_exponent)
                         for c in cfgs])
    return CounterFeatureSampler(probs, cfgs[0].optim.batch_size, [c.run.seed for c in cfgs], device, signed=signed)
