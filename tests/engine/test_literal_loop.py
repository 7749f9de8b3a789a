"""The engine against the paper's loop written out literally: one plain model per run, torch-optimizer's Lamb (or
torch's Adam), torch's CosineAnnealingLR stepped every step, bias decay in the first half, on the very batches the
engine draws. In float64 the two agree to rounding; the engine's float32 stays within float32's reach of that exact
trajectory. This is how a change to the step's arithmetic (the fused optimizer) is checked beyond the library tests
of single steps (tests/engine/test_optim.py)."""

import pytest
import torch
from helpers import SMALL_EM, need_extra

from toymodels.config.registry import get_family
from toymodels.engine.train import train_group
from toymodels.families.em import EMModel

CFG = SMALL_EM.replace(bias_offset=-0.5, bias_decay=0.03, steps=256)


def literal_run(cfg, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The paper's loop for one run, in ``dtype``, on the batches the engine draws for ``cfg`` (in the engine's
    dtype, cfg.run.dtype, then cast)."""
    torch_optimizer = need_extra("torch_optimizer", "test")
    start = EMModel.init([cfg])
    W1, b1, W2 = (getattr(start, n)[0].detach().to(dtype).clone().requires_grad_() for n in ("W1", "b1", "W2"))
    E = start.E[0].to(dtype)
    o = cfg.optim
    opt = (torch_optimizer.Lamb([W1, b1, W2], lr=o.lr) if o.optimizer == "lamb"
           else torch.optim.Adam([W1, b1, W2], lr=o.lr))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=512)
    sampler = get_family("em").sampler(cfg, torch.device("cpu"))
    drawn_as = torch.float64 if cfg.run.dtype == "float64" else torch.float32
    v = torch.zeros(o.batch_size, cfg.data.N, dtype=drawn_as)
    for t in range(o.steps):
        sampler.fill(v)
        x = v.to(dtype)
        out = torch.relu(x @ E.T @ W1.T + b1) @ W2.T
        loss = ((out - x) ** 2).sum() / o.batch_size
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if t < o.steps / 2:
            with torch.no_grad():
                b1.mul_(1 - o.bias_decay * o.lr)
    return {"W1": W1.detach(), "b1": b1.detach(), "W2": W2.detach()}


def largest_relative_error(got: torch.Tensor, exact: torch.Tensor) -> float:
    return float((got.double() - exact).abs().max() / exact.abs().max())


@pytest.mark.parametrize("optimizer", ["lamb", "adam"])
def test_float64_engine_is_the_literal_loop_to_rounding(optimizer):
    cfgs = [CFG.replace(optimizer=optimizer, dtype="float64", lr=0.01),
            CFG.replace(optimizer=optimizer, dtype="float64", lr=0.003, seed=1)]
    engine = train_group(cfgs)
    for i, cfg in enumerate(cfgs):
        exact = literal_run(cfg, torch.float64)
        for name, want in exact.items():
            assert largest_relative_error(engine.final[name][i], want) < 1e-12, (optimizer, i, name)


@pytest.mark.parametrize("optimizer", ["lamb", "adam"])
def test_float32_engine_stays_near_the_exact_trajectory(optimizer):
    cfg = CFG.replace(optimizer=optimizer, lr=0.01)
    engine = train_group([cfg])
    exact = literal_run(cfg, torch.float64)
    literal32 = literal_run(cfg, torch.float32)
    for name, want in exact.items():
        err = largest_relative_error(engine.final[name][0], want)
        # float32 rounding over 256 steps: the engine is as close to the exact run as the literal loop in float32
        assert err < 1e-4, (name, err)
        assert err < 10 * max(largest_relative_error(literal32[name], want), 1e-7), name
