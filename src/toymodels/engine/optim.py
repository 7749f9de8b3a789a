"""Per-instance optimizers and learning-rate schedules.

Parameters carry a leading instance axis; every norm, ratio and learning rate here is per instance, so no instance
can influence another. (Library LAMBs take one trust ratio over the whole tensor and clip the global gradient norm,
which would couple the instances of a sweep.)

A step is two calls: ``prepare(lr)`` advances the moments and leaves, per parameter, a direction ``d`` and a
per-instance scale ``s`` (the update is ``s * d``); ``apply(alive)`` adds it. Between them the training loop asks
``finite()`` which instances' updates are finite (its divergence guard).

Adam and LAMB share one fused pass: torch's own fused Adam kernel (``torch._fused_adam_``, the kernel behind
``torch.optim.Adam(fused=True)``) updates both moments and writes the direction in one pass over memory, where the
same arithmetic as separate tensor operations takes about ten. It runs with learning rate 1 on a zeroed direction
buffer (which then holds -m_hat / (sqrt(v_hat) + eps)), so each instance's own lr and trust ratio are applied
afterwards in one ``addcmul``. LAMB has no bias correction: a step count whose powers of beta round to 0 makes the
kernel's corrections exactly 1. Each instance's slice is handed to the kernel as a tensor of its own, because the
kernel's vector body and its scalar tail round differently: this way an instance meets the same arithmetic alone and
in any group, and with any thread count (tests/engine/test_optim.py).

Example:
    >>> import torch
    >>> p = torch.nn.Parameter(torch.randn(3, 4, 5))
    >>> opt = make_optimizer("lamb", [p])
    >>> p.grad = torch.randn(3, 4, 5)
    >>> opt.step(lr=torch.full((3,), 0.01), alive=torch.ones(3, dtype=torch.bool))
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Float
from torch import Tensor

#: A step count at which beta ** count is exactly 0 in float64 for any beta < 1 - 1e-7: the fused kernel's bias
#: corrections (1 - beta ** count) are then exactly 1, which is LAMB's (it has none).
NO_BIAS_CORRECTION = 1e12
#: Every this many steps the second moments are raised to a floor far below what can change a denominator (see
#: ``Adam.floor``): a moment that is exactly 0 (a dead neuron's weights) makes the CPU's vector square root about 5x
#: slower (measured 1063 vs 190 us for 2^19 floats), most of a step's optimizer time in the monosemantic regime. A
#: raised moment decays by beta2 per step, so between two raisings it stays above float32's smallest normal number.
FLOOR_EVERY = 4096


def _per_instance_norm(x: Tensor) -> Float[Tensor, " instances"]:
    return torch.linalg.vector_norm(x.reshape(x.shape[0], -1), dim=1)


def _bcast(v: Tensor, like: Tensor) -> Tensor:
    """(instances,) -> (instances, 1, 1, ...) to broadcast against a parameter."""
    return v.view(-1, *([1] * (like.dim() - 1)))


def _slices(t: Tensor) -> list[Tensor]:
    """One tensor per instance (views): how the fused kernel is handed a parameter (module docstring)."""
    return list(t.unbind(0))


class InstanceOptimizer:
    """Base class: per-parameter state tensors with the instance axis; subclasses define ``prepare``."""

    state_names: tuple[str, ...] = ()

    def __init__(self, params: list[Tensor], **hyper: float):
        self.params = list(params)
        self.hyper = hyper
        self.t = 0
        self.state = [{n: torch.zeros_like(p) for n in self.state_names} for p in self.params]
        # what prepare() leaves for apply(): per parameter the direction and the per-instance scale of the update,
        # and the direction's per-instance norm (the divergence guard's input)
        self.directions: list[Tensor] = []
        self.scales: list[Float[Tensor, " instances"]] = []
        self.norms: list[Float[Tensor, " instances"]] = []

    @torch.no_grad()
    def prepare(self, lr: Float[Tensor, " instances"]) -> None:
        """Advance the state by one step and compute each parameter's update (``scales * directions``), not yet
        applied."""
        raise NotImplementedError

    @torch.no_grad()
    def finite(self) -> Bool[Tensor, " instances"]:
        """True where the prepared update of every parameter is finite, judged by its per-instance norm |s| ||d||:
        a norm that overflows (entries beyond ~1e19) counts as not finite, which only a diverging run reaches. No
        host sync, no pass over the parameters beyond the norm ``prepare`` computed."""
        ok = torch.ones(self.params[0].shape[0], dtype=torch.bool, device=self.params[0].device)
        for scale, norm in zip(self.scales, self.norms):
            ok &= torch.isfinite(norm * scale.abs()) & torch.isfinite(scale)
        return ok

    @torch.no_grad()
    def apply(self, alive: Bool[Tensor, " instances"] | None = None) -> None:
        """Add the prepared update; instances with ``alive`` False stay exactly where they are (None: all move)."""
        for p, d, s in zip(self.params, self.directions, self.scales):
            if alive is not None:  # a frozen instance's direction or scale may hold NaN: both zeroed, so it adds 0;
                # the live ones take the very arithmetic of the all-alive path (same bits as in a healthy group)
                d, s = torch.where(_bcast(alive, p), d, 0.0), torch.where(alive, s, 0.0)
            p.addcmul_(d, _bcast(s, p))

    @torch.no_grad()
    def step(self, lr: Float[Tensor, " instances"], alive: Bool[Tensor, " instances"]) -> None:
        """One update with per-instance learning rates ``lr``; instances with ``alive`` False stay frozen."""
        self.prepare(lr)
        self.apply(alive)

    # Full optimizer state, for mid-run checkpoints (safetensors-friendly: a flat dict of tensors).
    def state_tensors(self) -> dict[str, Tensor]:
        out = {"t": torch.tensor([self.t])}
        for i, st in enumerate(self.state):
            out.update({f"{i}.{n}": v for n, v in st.items()})
        return out

    def load_state_tensors(self, t: dict[str, Tensor]) -> None:
        self.t = int(t["t"][0])
        for i, st in enumerate(self.state):
            for n in st:
                st[n].copy_(t[f"{i}.{n}"])


class FusedMoments(InstanceOptimizer):
    """Adam's two moments and its direction -m_hat / (sqrt(v_hat) + eps) in one fused pass per parameter (module
    docstring): the common part of Adam and LAMB."""

    state_names = ("exp_avg", "exp_avg_sq")
    bias_correction = True

    def __init__(self, params: list[Tensor], **hyper: float):
        super().__init__(params, **hyper)
        self.directions = [torch.zeros_like(p) for p in self.params]
        self._views = [(_slices(d), _slices(st["exp_avg"]), _slices(st["exp_avg_sq"]))
                       for d, st in zip(self.directions, self.state)]
        self._count = torch.zeros((), dtype=torch.float32, device=self.params[0].device)

    def floor(self) -> float:
        """The second moment below which a denominator sqrt(v_hat) + eps is eps exactly: sqrt(floor) / sqrt(1 -
        beta2) (the first step's bias correction, the largest) stays under an eighth of eps's last bit, so rounding
        drops it. Raising v to it (FLOOR_EVERY) changes no update; the moment itself moves by at most the floor."""
        dtype = self.params[0].dtype
        correction = math.sqrt(1 - self.hyper["beta2"]) if self.bias_correction else 1.0
        floor = (self.hyper["eps"] * correction * torch.finfo(dtype).eps / 8) ** 2
        return floor if floor > torch.finfo(dtype).tiny else 0.0

    def fused_directions(self, l2: float = 0.0) -> None:
        """Advance both moments and write the directions; ``l2`` > 0 adds the gradient of (l2 / 2) |p|^2 first."""
        h = self.hyper
        if (self.t - 1) % FLOOR_EVERY == 0 and self.floor() > 0:
            torch._foreach_clamp_min_([st["exp_avg_sq"] for st in self.state], self.floor())
        self._count.fill_(self.t if self.bias_correction else NO_BIAS_CORRECTION)
        torch._foreach_zero_(self.directions)
        for p, (d, m, v) in zip(self.params, self._views):
            g = p.grad if not l2 else p.grad.add(p, alpha=l2)
            torch._fused_adam_(d, _slices(g.contiguous()), m, v, [], [self._count] * len(d), lr=1.0,
                               beta1=h["beta1"], beta2=h["beta2"], weight_decay=0.0, eps=h["eps"], amsgrad=False,
                               maximize=False)


class Adam(FusedMoments):
    """Adam / AdamW with bias correction, as torch.optim.Adam(W) computes it, with per-instance lr.

    AdamW's ``weight_decay`` is one float, or a tensor with one value per instance (each instance's lr times its
    own decay; the same arithmetic as the float where the values agree)."""

    def __init__(self, params, betas=(0.9, 0.999), eps=1e-8, weight_decay: float | Tensor = 0.0, decoupled=False):
        per_instance = isinstance(weight_decay, Tensor)
        if per_instance and not decoupled:
            raise ValueError("a per-instance weight decay needs AdamW (decoupled)")
        super().__init__(params, beta1=betas[0], beta2=betas[1], eps=eps,
                         weight_decay=0.0 if per_instance else weight_decay, decoupled=float(decoupled))
        self.weight_decay = weight_decay
        self._decay: Tensor | None = None

    def prepare(self, lr):
        self.t += 1
        h = self.hyper
        self.fused_directions(l2=0.0 if h["decoupled"] else h["weight_decay"])
        self.scales = [lr for _ in self.params]
        self.norms = [_per_instance_norm(d) for d in self.directions]
        wd = self.weight_decay
        self._decay = lr * wd if h["decoupled"] and (isinstance(wd, Tensor) or wd) else None

    def apply(self, alive=None):
        if self._decay is not None:  # AdamW: p (1 - lr wd) first, as torch.optim.AdamW
            keep = 1 - self._decay if alive is None else torch.where(alive, 1 - self._decay, 1.0)
            for p in self.params:
                p.mul_(_bcast(keep, p))
        super().apply(alive)


class Lamb(FusedMoments):
    """LAMB as in the paper's library (torch-optimizer 0.3.0 defaults), per instance.

    a = m / (sqrt(v) + eps) with no bias correction (+ weight_decay p); p -= lr * (min(|p|, clamp) / |a|) * a, the
    trust ratio being 1 where either norm is 0. Each step moves a tensor by a fixed fraction lr of its (clamped)
    norm.
    """

    bias_correction = False

    def __init__(self, params, betas=(0.9, 0.999), eps=1e-6, clamp=10.0, weight_decay=0.0):
        super().__init__(params, beta1=betas[0], beta2=betas[1], eps=eps, clamp=clamp, weight_decay=weight_decay)

    def prepare(self, lr):
        self.t += 1
        h = self.hyper
        self.fused_directions()  # -a
        self.scales, self.norms = [], []
        for p, d in zip(self.params, self.directions):
            if h["weight_decay"]:  # torch-optimizer adds it to a, before the norms
                d.sub_(p, alpha=h["weight_decay"])
            w_norm = _per_instance_norm(p).clamp(0, h["clamp"])
            a_norm = _per_instance_norm(d)
            trust = torch.where((w_norm == 0) | (a_norm == 0), torch.ones_like(w_norm), w_norm / a_norm)
            self.scales.append(lr * trust)
            self.norms.append(a_norm)


class SGD(InstanceOptimizer):
    """SGD with (heavy-ball) momentum, as torch.optim.SGD."""

    state_names = ("momentum_buffer",)

    def __init__(self, params, momentum=0.9):
        super().__init__(params, momentum=momentum)

    def prepare(self, lr):
        self.t += 1
        self.directions, self.scales, self.norms = [], [], []
        for p, st in zip(self.params, self.state):
            buf = st["momentum_buffer"]
            if self.t == 1:
                buf.copy_(p.grad)
            else:
                buf.mul_(self.hyper["momentum"]).add_(p.grad)
            self.directions.append(buf)
            self.scales.append(-lr)
            self.norms.append(_per_instance_norm(buf))


def make_optimizer(name: str, params: list[Tensor], weight_decay: float | Tensor = 0.01, momentum: float = 0.9,
                   lamb_clamp: float = 10.0, betas: tuple[float, float] | None = None):
    """The optimizer named by the config field ``optimizer`` (weight decay applies to AdamW only: a float, or one
    value per instance; the clamp to LAMB; ``betas`` to Adam, AdamW and LAMB, default each one's own)."""
    given = {} if betas is None else {"betas": tuple(betas)}
    if name == "lamb":
        return Lamb(params, clamp=lamb_clamp, **given)
    if name == "adam":
        return Adam(params, **given)
    if name == "adamw":
        return Adam(params, weight_decay=weight_decay, decoupled=True, **given)
    if name == "sgd":
        return SGD(params, momentum=momentum)
    raise ValueError(f"field 'optimizer': must be one of 'lamb', 'adam', 'adamw', 'sgd' (got {name!r})")


# ---------------------------------------------------------------------------------------------------------------
# Schedules: a factor per step that multiplies each instance's base lr.

PAPER_T_MAX = 512


def paper_cosine(steps: int, t_max: int = PAPER_T_MAX) -> list[float]:
    """The paper's CosineAnnealingLR(T_max=512, eta_min=0) stepped every step, reproduced exactly.

    torch computes it recursively, which past T_max makes it periodic (period 2*T_max): zero at 512 mod 1024, peak
    at multiples of 1024. We replay torch's own recursion in float64 so factors match it to rounding.
    """
    f = [1.0]
    for t in range(1, steps):
        prev = f[-1]
        if (t - 1 - t_max) % (2 * t_max) == 0:
            f.append(prev + (1 - math.cos(math.pi / t_max)) / 2)
        else:
            f.append((1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max)) * prev)
    return f


def schedule_factors(name: str, steps: int, warmup_frac: float = 0.05) -> Tensor:
    """(steps,) float64 multipliers of the base lr at each step.

    paper_cosine: see :func:`paper_cosine`; cosine: one half-cycle from 1 to 0 over the run; constant: 1;
    warmup_cosine: linear warmup over ``warmup_frac`` of the run, then a half-cycle cosine to 0; warmup_constant:
    min(t / w, 1) with w the warmup steps, as the grokking paper's code (``LambdaLR(min(step / 10, 1))``, docs/papers.md
    §5.2): step 0 runs at lr 0.
    """
    t = torch.arange(steps, dtype=torch.float64)
    if name == "paper_cosine":
        return torch.tensor(paper_cosine(steps), dtype=torch.float64)
    if name == "constant":
        return torch.ones(steps, dtype=torch.float64)
    if name == "cosine":
        return (1 + torch.cos(math.pi * t / steps)) / 2
    if name == "warmup_cosine":
        w = max(1, int(round(warmup_frac * steps)))
        warm = (t + 1) / w
        rest = (1 + torch.cos(math.pi * (t - w) / max(1, steps - w))) / 2
        return torch.where(t < w, warm, rest)
    if name == "warmup_constant":
        return (t / max(1, round(warmup_frac * steps))).clamp(max=1.0)
    raise ValueError(f"field 'schedule': must be one of 'paper_cosine', 'cosine', 'constant', 'warmup_cosine', "
                     f"'warmup_constant' (got {name!r})")


def last_trough_step(steps: int) -> int | None:
    """The last step of a ``steps``-step run after which a paper_cosine model sits at an lr trough (t = 511 mod
    1024, a 'trough' of :func:`lr_phases`), or None for runs shorter than that. Studies that compare schedules read
    every schedule's model at this step, the others as controls whose lr does not oscillate.

    >>> last_trough_step(32768), last_trough_step(256)
    (32255, None)
    """
    period, phase = 2 * PAPER_T_MAX, PAPER_T_MAX - 1
    t = (steps - 1 - phase) // period * period + phase
    return t if t >= phase else None


#: a checkpoint is "at peak lr" when the step that produced it ran at >= this fraction of the base lr, "at a trough"
#: when at <= 1 - this (paper_cosine: 0.99999 at t = 1023 mod 1024, 1e-5 at t = 511 mod 1024)
LR_PHASE_EDGE = 0.99


def lr_phases(schedule: str, steps: int, at: list[int], warmup_frac: float = 0.05) -> dict[int, str]:
    """Which checkpoints ``at`` (steps after which a model was kept) sit at a peak or a trough of the lr schedule.

    Returns {step: "peak" | "trough"} for those that do (others are left out). The models of the periodic
    paper_cosine schedule differ between the two (docs/reproduction.md), so reports compare them.

    >>> lr_phases("paper_cosine", 3072, [255, 511, 1023, 1535, 3071])
    {511: 'trough', 1023: 'peak', 1535: 'trough', 3071: 'peak'}
    """
    # paper_cosine's factor in closed form, (1 + cos(pi t / T_max)) / 2 (torch's recursion equals it to rounding),
    # so that a phase late in a long run costs nothing
    factors = None if schedule == "paper_cosine" else schedule_factors(schedule, steps, warmup_frac)
    out = {}
    for t in at:
        if 0 <= t < steps:
            f = (1 + math.cos(math.pi * t / PAPER_T_MAX)) / 2 if factors is None else float(factors[t])
            if f >= LR_PHASE_EDGE:
                out[t] = "peak"
            elif f <= 1 - LR_PHASE_EDGE:
                out[t] = "trough"
    return out
