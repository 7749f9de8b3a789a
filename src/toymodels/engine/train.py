"""One training loop for a group of instances that share tensor shapes.

Per step: each instance draws its own batch (from its own generator, or on a GPU the whole group in one
counter-based pass: config field ``sampler``), the per-instance losses are summed (so each instance gets its own
gradient), a divergence guard freezes any instance whose loss, gradient or next parameters are not finite, the
per-instance optimizer steps with each instance's scheduled lr, and bias decay pulls the first-layer bias toward 0
during the first half. The task loss is logged every 16 steps; models are kept at steps 2^j - 1 and at the end.

Example:
    >>> from toymodels.config import ExperimentConfig, stored_configs
    >>> cfg = ExperimentConfig.from_flat({"N": 16, "m": 4, "k": 32, "batch_size": 32, "steps": 64})
    >>> res = train_group([cfg, cfg.replace(seed=1)])
    >>> res.losses.shape
    torch.Size([2, 4])
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import Tensor

from toymodels.engine import counter_rng
from toymodels.config import ExperimentConfig, stored_configs
from toymodels.config.registry import get_family  # the families register on `import toymodels`
from toymodels.engine.group_sampling import GroupFill
from toymodels.engine.optim import make_optimizer, schedule_factors
from toymodels.engine.process import flushing_denormals, matmul_precision, training_allocator
from toymodels.engine.threads import following_the_load, one_thread

LOG_EVERY = 16
#: The blow-up rule: an instance whose mean task loss over a window of LOG_EVERY steps rises above this multiple of
#: its reference is marked diverged and frozen at the window's last step, even when every number stays finite. The
#: reference is the initial model's largest task loss over REFERENCE_SAMPLES single samples of the instance's own
#: data law (the first positive window mean where all of those are 0). Why it holds at any batch size: a batch's
#: loss is a mean of its samples', so a window's mean is at most its largest sample's loss, which a healthy model
#: keeps near the initial model's range; a rule on one step's loss against the first batch's fired on 5 of 512
#: healthy TMS runs at batch size 1 (a first sample with a feature of 0.01 against a later 1). A blow-up (LAMB at
#: lr 1e6) passes it by orders of magnitude within a window.
BLOWUP_FACTOR = 1e4
REFERENCE_SAMPLES = 1024


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on request (Ctrl-C, SIGTERM) after its state was handed to ``on_state``."""

    def __init__(self, step: int, steps: int, signum: int | None = None, group: str | None = None):
        super().__init__(f"stopped at step {step} of {steps}")
        self.step, self.steps, self.signum, self.group = step, steps, signum, group


def is_checkpoint_step(t: int, steps: int, every: int = 0) -> bool:
    """Steps 2^j - 1 (t+1 a power of two) and the last step, as in the paper's code, and with ``every`` > 0 also
    every step with t+1 a multiple of ``every`` (the config field ``checkpoint_every``)."""
    return (t & (t + 1)) == 0 or t == steps - 1 or (every > 0 and (t + 1) % every == 0)


def checkpoint_steps(steps: int, every: int = 0) -> list[int]:
    """The steps after which :func:`train_group` keeps the model.

    >>> checkpoint_steps(3072, every=512)[-6:]
    [511, 1023, 1535, 2047, 2559, 3071]
    """
    return [t for t in range(steps) if is_checkpoint_step(t, steps, every)]


def logged_steps(steps: int) -> list[int]:
    return list(range(0, steps, LOG_EVERY))


def sampler_kind(cfg: ExperimentConfig, device: torch.device) -> str:
    """'counter' or 'generator': the config field ``sampler``, 'auto' resolved by device (counter off the CPU where
    the family and features allow it)."""
    kind = cfg.run.sampler
    if kind == "auto":
        kind = "counter" if device.type != "cpu" and counter_rng.supports(cfg) else "generator"
    return kind


@dataclass
class GroupResult:
    """What a group's training produced; tensors are on the CPU with the instance axis first."""

    cfgs: list[ExperimentConfig]
    final: dict[str, Tensor]
    checkpoints: dict[int, dict[str, Tensor]]
    loss_steps: list[int]
    losses: Tensor  # (instances, steps) task loss at the logged steps, NaN after an instance diverged
    diverged_at: Tensor  # (instances,) step of divergence, -1 if none
    seconds: float = 0.0

    @property
    def status(self) -> list[str]:
        return ["diverged" if int(d) >= 0 else "ok" for d in self.diverged_at]


@dataclass
class TrainState:
    """Everything that changes during training: enough to resume mid-run and finish bit-identically."""

    step: int  # next step to run
    params: dict[str, Tensor]
    optimizer: dict[str, Tensor]
    alive: Tensor
    diverged_at: Tensor
    losses: Tensor
    rng: list[Tensor]
    checkpoints: dict[int, dict[str, Tensor]] = field(default_factory=dict)
    blowup_reference: Tensor | None = None  # per instance: the blow-up rule's reference loss (BLOWUP_FACTOR)
    blowup_window: Tensor | None = None  # per instance: the task losses summed since the last window's end


def _cpu(t: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in t.items()}


def _reference_losses(family, model: torch.nn.Module, cfgs: Sequence[ExperimentConfig], device: torch.device,
                      dtype: torch.dtype) -> Tensor:
    """Each instance's largest initial task loss over REFERENCE_SAMPLES single samples of its own data law, drawn by
    samplers of their own (the training streams' generators are not touched: training gives the same bits)."""
    with stored_configs():  # validated already; only the batch differs (a full-batch family refuses small ones)
        big = [c.replace(batch_size=REFERENCE_SAMPLES) for c in cfgs]
    counter = sampler_kind(cfgs[0], device) == "counter"
    draw = family.group_sampler(big, device) if counter else GroupFill([family.sampler(c, device) for c in big])
    v = torch.zeros(len(cfgs), REFERENCE_SAMPLES, family.input_size(cfgs[0]), device=device, dtype=dtype)
    draw.fill(v, 0)
    largest = torch.zeros(len(cfgs), device=device, dtype=dtype)
    task = cfgs[0].task.task
    per_sample = getattr(model, "sample_losses", None)  # InstanceModel's optional hook: every sample in one pass
    # one thread: before the loop's thread policy runs, torch's default threads would spin on a busy machine (a
    # tiny sweep spent 15 s here with two), and batch-1 products gain nothing from a second thread
    with torch.no_grad(), one_thread():
        if per_sample is not None:
            largest = per_sample(v, task).amax(dim=1)
        else:  # one sample at a time: the largest single-sample loss, which no batch's mean exceeds
            for j in range(REFERENCE_SAMPLES):
                largest = torch.maximum(largest, model.losses(v[:, j:j + 1], task, with_l1=False)[0])
    return torch.nan_to_num(largest)


def weight_decays(cfgs: Sequence[ExperimentConfig], device: torch.device, dtype: torch.dtype) -> float | Tensor:
    """AdamW's weight decay of a group: one float where every instance has the same (every earlier result), else one
    value per instance."""
    values = [c.optim.weight_decay for c in cfgs]
    if all(v == values[0] for v in values):
        return values[0]
    return torch.tensor(values, device=device, dtype=dtype)


def train_group(
    cfgs: Sequence[ExperimentConfig],
    on_progress: Callable[[int, Tensor], None] | None = None,
    resume: TrainState | None = None,
    on_state: Callable[[TrainState], None] | None = None,
    state_every_s: float = 300.0,
    should_stop: Callable[[], bool] | None = None,
    on_checkpoint: Callable[[int, dict[str, Tensor]], None] | None = None,
) -> GroupResult:
    """Train instances that share shapes and loop settings (see ``ExperimentConfig.GROUP_FIELDS``) together.

    ``on_progress(steps_done, task_losses)`` is called every 16 steps; ``on_state(state)`` every ``state_every_s``
    seconds with the full training state, and ``resume`` restarts from such a state. ``should_stop()`` is asked
    after every step: when it says yes, the state is handed to ``on_state`` and :class:`TrainingInterrupted` is
    raised (Ctrl-C and SIGTERM, see ``toymodels.running.interrupts``). ``on_checkpoint(step, tensors)``, when given,
    receives each checkpoint as it is taken instead of the result keeping it (``GroupResult.checkpoints`` and the
    states' ``checkpoints`` then stay empty); on the CPU the tensors are the live parameters, so it must write or
    copy them before it returns (``runner.run_group`` streams them to disk: ``toymodels.results.checkpoint_stream``).
    """
    cfgs = list(cfgs)
    keys = {c.group_key() for c in cfgs}
    if len(keys) != 1:
        raise ValueError("train_group needs instances with equal group fields; use toymodels.running.sweep to group them")
    c0 = cfgs[0]
    o = c0.optim
    device = torch.device(c0.run.device)
    dtype = torch.float64 if c0.run.dtype == "float64" else torch.float32  # storage: bf16 and tf32 are matmul modes
    t_start = time.perf_counter()

    family = get_family(c0.model.model)
    model = family.build(cfgs).to(device=device, dtype=dtype)
    params = [getattr(model, n) for n in model.param_names]
    post_step = getattr(model, "post_step", None)
    # one pass for the whole group (no per-instance loop, no host sync, resume needs only the step), or one
    # generator per instance (the CPU's default: every earlier result)
    group_sampler = family.group_sampler(cfgs, device) if sampler_kind(c0, device) == "counter" else None
    samplers = [family.sampler(c, device) for c in cfgs] if group_sampler is None else []
    # a family may set its optimizer's betas (its optional ``optimizer_options(cfg)``: grokking's AdamW (0.9, 0.98))
    options = getattr(family, "optimizer_options", None)
    opt = make_optimizer(o.optimizer, params, weight_decay=weight_decays(cfgs, device, dtype), momentum=o.momentum,
                         lamb_clamp=o.lamb_clamp, **(options(c0) if options is not None else {}))
    I = len(cfgs)
    lr0 = torch.tensor([c.optim.lr for c in cfgs], device=device, dtype=dtype)
    l1 = torch.tensor([c.optim.l1 for c in cfgs], device=device, dtype=dtype)
    use_l1 = bool((l1 > 0).any())
    decay_factor = 1 - torch.tensor([c.optim.bias_decay for c in cfgs], device=device, dtype=dtype) * lr0
    use_decay = bool((decay_factor != 1).any())
    factors = schedule_factors(o.schedule, o.steps, o.warmup_frac).tolist()
    task = c0.task.task
    n_logs = len(logged_steps(o.steps))

    alive = torch.ones(I, dtype=torch.bool, device=device)
    diverged_at = torch.full((I,), -1, dtype=torch.long, device=device)
    losses = torch.full((I, n_logs), float("nan"), device=device, dtype=dtype)
    checkpoints: dict[int, dict[str, Tensor]] = {}
    start = 0
    if resume is not None:
        with torch.no_grad():
            for n, p in zip(model.param_names, params):
                p.copy_(resume.params[n])
        opt.load_state_tensors({k: v.to(device) for k, v in resume.optimizer.items()})
        alive.copy_(resume.alive)
        diverged_at.copy_(resume.diverged_at)
        losses.copy_(resume.losses)
        for s, st in zip(samplers, resume.rng):
            s.set_state(st)
        checkpoints = dict(resume.checkpoints)
        start = resume.step
    if on_checkpoint is not None:  # a state written by an earlier version carries its checkpoints: hand them on
        for step, tensors in sorted(checkpoints.items()):
            on_checkpoint(step, tensors)
        checkpoints = {}

    # the blow-up rule (BLOWUP_FACTOR): its reference, and the current window's sum of task losses
    reference = torch.zeros(I, device=device, dtype=dtype)
    window = torch.zeros(I, device=device, dtype=dtype)
    if resume is None:
        reference.copy_(_reference_losses(family, model, cfgs, device, dtype))
    else:
        reference.copy_(resume.blowup_reference if resume.blowup_reference is not None
                        else torch.nan_to_num(resume.losses[:, 0]))
        if resume.blowup_window is not None:
            window.copy_(resume.blowup_window)
    v = torch.zeros(I, o.batch_size, family.input_size(c0), device=device, dtype=dtype)
    # counter-based, or the per-instance generators' batches computed together where they can be: fill(v, step)
    draw = group_sampler if group_sampler is not None else GroupFill(samplers)
    last_state = time.monotonic()
    flops = sum(family.flops_per_step(c) for c in cfgs)
    with training_allocator(), following_the_load(flops, c0.run.threads, device) as threads, flushing_denormals(), \
            matmul_precision(c0.run.dtype, device):
        for t in range(start, o.steps):
            threads.adjust()  # a clock read; the load every few seconds
            draw.fill(v, t)
            task_loss, l1_term = model.losses(v, task, with_l1=use_l1)
            total = task_loss + l1 * l1_term if use_l1 else task_loss
            for p in params:
                p.grad = None
            total.sum().backward()

            with torch.no_grad():
                lr = lr0 * factors[t]
                # Divergence guard: a non-finite loss or update freezes the instance (a non-finite gradient always
                # gives a non-finite update, so checking the updates covers it), and so does a blow-up that stays
                # finite (LAMB's bounded steps can keep the weights finite while the loss explodes).
                ok = alive & torch.isfinite(total)
                window += task_loss.detach()
                if (t + 1) % LOG_EVERY == 0:  # a window ends
                    mean = window / LOG_EVERY
                    reference = torch.where(reference > 0, reference, mean)
                    ok &= ~(mean > BLOWUP_FACTOR * reference)
                    window.zero_()
                opt.prepare(lr)
                ok &= opt.finite()
                diverged_at = torch.where(alive & ~ok, torch.full_like(diverged_at, t), diverged_at)
                alive = ok
                all_alive = device.type == "cpu" and bool(alive.all())  # no host sync per step on a GPU
                opt.apply(None if all_alive else alive)
                if use_decay and t < o.steps / 2:
                    for b in model.decayed_params():
                        b.mul_(torch.where(alive, decay_factor, 1.0).view(-1, *[1] * (b.dim() - 1)))
                if post_step is not None:  # e.g. an SAE's unit-norm decoder (InstanceModel docstring)
                    post_step(alive)
                if t % LOG_EVERY == 0:
                    losses[:, t // LOG_EVERY] = torch.where(alive, task_loss.detach(), float("nan"))
                    if on_progress is not None:
                        on_progress(t + 1, losses[:, t // LOG_EVERY].cpu())
                if is_checkpoint_step(t, o.steps, c0.run.checkpoint_every):
                    if on_checkpoint is None:
                        checkpoints[t] = _cpu(model.state_tensors())
                    else:  # no copy on the CPU: the sink writes the live tensors
                        on_checkpoint(t, {name: x.detach().cpu() for name, x in model.state_tensors().items()})

            stop = should_stop is not None and should_stop() and t + 1 < o.steps
            if on_state is not None and (stop or (time.monotonic() - last_state > state_every_s and t + 1 < o.steps)):
                on_state(TrainState(
                    step=t + 1, params=_cpu({n: p for n, p in zip(model.param_names, params)}),
                    optimizer=_cpu(opt.state_tensors()), alive=alive.cpu(), diverged_at=diverged_at.cpu(),
                    losses=losses.cpu(), rng=[s.get_state() for s in samplers], checkpoints=dict(checkpoints),
                    blowup_reference=reference.cpu(), blowup_window=window.cpu(),
                ))
                last_state = time.monotonic()
            if stop:
                raise TrainingInterrupted(step=t + 1, steps=o.steps)

    if on_progress is not None:
        on_progress(o.steps, losses[:, -1].cpu())
    return GroupResult(
        cfgs=cfgs, final=_cpu(model.state_tensors()), checkpoints=checkpoints, loss_steps=logged_steps(o.steps),
        losses=losses.cpu(), diverged_at=diverged_at.cpu(), seconds=time.perf_counter() - t_start,
    )
