"""Per-instance optimizers and learning-rate schedules.

Parameters carry a leading instance axis; every norm, ratio and learning rate here is per instance, so no instance
can influence another. (Library LAMBs take one trust ratio over the whole tensor and clip the global gradient norm,
which would couple the instances of a sweep.)

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
from torch import Tensor

#: Below this bound on a per-instance sum of |update|, the sum cannot overflow a float32 (max ~3.4e38).
SUM_SAFE = 1e30


def _per_instance_norm(x: Tensor) -> Tensor:
    return torch.linalg.vector_norm(x.reshape(x.shape[0], -1), dim=1)


def sqrt_plus_eps(v: Tensor, eps: float, scale: float = 1.0, out: Tensor | None = None) -> Tensor:
    """sqrt(v) / scale + eps for v >= 0, bit for bit, at a fraction of torch.sqrt's cost on exact zeros.

    The second moments of a dead neuron's weights are exactly 0, and torch's CPU sqrt is ~6x slower on zeros than
    on other numbers (measured 1050 vs 165 us for 2^19 floats): in the monosemantic regime most of a step's sqrt
    time. Raising v to a floor first changes nothing that survives the + eps: sqrt(floor) / scale is below a
    quarter of eps's ulp, so eps + it rounds back to eps exactly, as eps + sqrt(v) / scale does for any v below
    the floor.

    >>> v = torch.tensor([0.0, 1e-30, 4.0])
    >>> torch.equal(sqrt_plus_eps(v, 1e-6), v.sqrt().add(1e-6))
    True
    """
    floor = (eps * scale * torch.finfo(v.dtype).eps / 8) ** 2
    if floor > torch.finfo(v.dtype).tiny:  # always, unless eps is 0 or absurdly small
        out = torch.clamp_min(v, floor, out=out).sqrt_()
    else:
        out = torch.sqrt(v, out=out)
    if scale != 1.0:
        out.div_(scale)
    return out.add_(eps)


def _bcast(v: Tensor, like: Tensor) -> Tensor:
    """(instances,) -> (instances, 1, 1, ...) to broadcast against a parameter."""
    return v.view(-1, *([1] * (like.dim() - 1)))


class InstanceOptimizer:
    """Base class: keeps per-parameter state tensors with the instance axis; subclasses define the update."""

    state_names: tuple[str, ...] = ()
    #: per-parameter scratch tensors reused every step (not state: never saved)
    buffer_names: tuple[str, ...] = ()

    def __init__(self, params: list[Tensor], **hyper: float):
        self.params = list(params)
        self.hyper = hyper
        self.t = 0
        self.state = [{n: torch.zeros_like(p) for n in self.state_names} for p in self.params]
        self.buffers = [{n: torch.empty_like(p) for n in self.buffer_names} for p in self.params]

    @torch.no_grad()
    def updates(self, lr: Tensor) -> list[Tensor]:
        """Advance the state by one step and return each parameter's update (not yet applied; it may live in a
        buffer that the next call overwrites)."""
        self.t += 1
        return [self.update(p, p.grad, st | buf, lr) for p, st, buf in zip(self.params, self.state, self.buffers)]

    @torch.no_grad()
    def finite(self, updates: list[Tensor]) -> Tensor:
        """(instances,) True where every update of the instance is finite (the divergence guard's test).

        A per-instance sum that overflows to inf also counts as non-finite: conservative. Subclasses that already
        know the answer from numbers they computed anyway override this to skip the extra pass.
        """
        ok = torch.ones(updates[0].shape[0], dtype=torch.bool, device=updates[0].device)
        for u in updates:
            ok &= torch.isfinite(u.reshape(u.shape[0], -1).sum(1))
        return ok

    @torch.no_grad()
    def step(self, lr: Tensor, alive: Tensor) -> None:
        """One update with per-instance learning rates ``lr`` (instances,); instances with ``alive`` False stay
        frozen."""
        for p, upd in zip(self.params, self.updates(lr)):
            p.add_(torch.where(_bcast(alive, p), upd, torch.zeros((), device=p.device, dtype=p.dtype)))

    def update(self, p: Tensor, g: Tensor, st: dict[str, Tensor], lr: Tensor) -> Tensor:
        raise NotImplementedError

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


class Lamb(InstanceOptimizer):
    """LAMB as in the paper's library (torch-optimizer 0.3.0 defaults), per instance.

    a = m / (sqrt(v) + eps) with no bias correction; p -= lr * (min(|p|, clamp) / |a|) * a, the trust ratio
    being 1 where either norm is 0. Each step moves a tensor by a fixed fraction lr of its (clamped) norm.
    """

    state_names = ("exp_avg", "exp_avg_sq")
    buffer_names = ("step",)  # the update is built in it

    def __init__(self, params, betas=(0.9, 0.999), eps=1e-6, clamp=10.0, weight_decay=0.0):
        super().__init__(params, beta1=betas[0], beta2=betas[1], eps=eps, clamp=clamp, weight_decay=weight_decay)
        self._finite: list[Tensor] = []  # per parameter, of the last updates(): (instances,) flags and overflow bounds
        self._bounded: list[Tensor] = []

    @torch.no_grad()
    def updates(self, lr: Tensor) -> list[Tensor]:
        self._finite, self._bounded = [], []
        return super().updates(lr)

    def update(self, p, g, st, lr):
        h = self.hyper
        st["exp_avg"].mul_(h["beta1"]).add_(g, alpha=1 - h["beta1"])
        st["exp_avg_sq"].mul_(h["beta2"]).addcmul_(g, g, value=1 - h["beta2"])
        # the same operations as m / (sqrt(v) + eps), written into one buffer kept across steps: each temporary of
        # a large parameter is a pass over memory (the optimizer is a sixth of a small-batch step)
        step = sqrt_plus_eps(st["exp_avg_sq"], h["eps"], out=st["step"])
        torch.div(st["exp_avg"], step, out=step)
        if h["weight_decay"]:
            step.add_(p, alpha=h["weight_decay"])
        w_norm = _per_instance_norm(p).clamp(0, h["clamp"])
        a_norm = _per_instance_norm(step)
        trust = torch.where((w_norm == 0) | (a_norm == 0), torch.ones_like(w_norm), w_norm / a_norm)
        scale = -lr * trust
        # |step_j| <= |a|, so every |update_j| <= |scale| |a| and their sum is at most numel times that: while that
        # bound is far from float's limit, the update (and its sum) is finite exactly when |a| and the scale are --
        # the base class's test answered without another pass over the parameter
        bound = scale.abs() * a_norm * (p[0].numel() if p.dim() else 1)
        self._finite.append(torch.isfinite(a_norm) & torch.isfinite(scale))
        self._bounded.append(bound < SUM_SAFE)
        return step.mul_(_bcast(scale, p))

    @torch.no_grad()
    def finite(self, updates: list[Tensor]) -> Tensor:
        # the bound check is a host sync: a GPU (and weight decay, which unbounds the step) takes the sum test
        if self.hyper["weight_decay"] or len(self._finite) != len(updates) or updates[0].device.type != "cpu":
            return super().finite(updates)
        ok = torch.stack(self._finite).all(0)
        if bool((ok & ~torch.stack(self._bounded).all(0)).any()):  # a sum could overflow: measure it
            return super().finite(updates)
        return ok


class Adam(InstanceOptimizer):
    """Adam / AdamW with bias correction, as torch.optim.Adam(W) computes it, with per-instance lr."""

    state_names = ("exp_avg", "exp_avg_sq")
    buffer_names = ("denom",)

    def __init__(self, params, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        super().__init__(params, beta1=betas[0], beta2=betas[1], eps=eps, weight_decay=weight_decay,
                         decoupled=float(decoupled))

    def update(self, p, g, st, lr):
        h = self.hyper
        lr_b = _bcast(lr, p)
        if h["weight_decay"] and not h["decoupled"]:
            g = g.add(p, alpha=h["weight_decay"])
        st["exp_avg"].lerp_(g, 1 - h["beta1"])
        st["exp_avg_sq"].mul_(h["beta2"]).addcmul_(g, g, value=1 - h["beta2"])
        bc1 = 1 - h["beta1"] ** self.t
        bc2 = 1 - h["beta2"] ** self.t
        denom = sqrt_plus_eps(st["exp_avg_sq"], h["eps"], math.sqrt(bc2), out=st["denom"])
        upd = st["exp_avg"] / denom * (-lr_b / bc1)
        if h["weight_decay"] and h["decoupled"]:
            upd.sub_(p * lr_b * h["weight_decay"])
        return upd


class SGD(InstanceOptimizer):
    """SGD with (heavy-ball) momentum, as torch.optim.SGD."""

    state_names = ("momentum_buffer",)

    def __init__(self, params, momentum=0.9):
        super().__init__(params, momentum=momentum)

    def update(self, p, g, st, lr):
        buf = st["momentum_buffer"]
        if self.t == 1:
            buf.copy_(g)
        else:
            buf.mul_(self.hyper["momentum"]).add_(g)
        return buf * _bcast(-lr, p)


def make_optimizer(name: str, params: list[Tensor], weight_decay: float = 0.01, momentum: float = 0.9,
                   lamb_clamp: float = 10.0):
    """The optimizer named by the config field ``optimizer`` (weight decay applies to AdamW only, the clamp to LAMB)."""
    if name == "lamb":
        return Lamb(params, clamp=lamb_clamp)
    if name == "adam":
        return Adam(params)
    if name == "adamw":
        return Adam(params, weight_decay=weight_decay, decoupled=True)
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
    warmup_cosine: linear warmup over ``warmup_frac`` of the run, then a half-cycle cosine to 0.
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
    raise ValueError(f"field 'schedule': must be one of 'paper_cosine', 'cosine', 'constant', 'warmup_cosine' "
                     f"(got {name!r})")


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
