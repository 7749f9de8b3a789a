"""Per-instance optimizers against the libraries they reproduce, and the schedules."""

import math

import pytest
import torch
from helpers import need_extra

from toymodels.engine import optim
from toymodels.engine.optim import FusedMoments, make_optimizer, schedule_factors


def _loss(W, b, x):
    # a small nonlinear model so the gradients change from step to step
    return (torch.relu(x @ W.T + b) ** 2).sum() - x.sum() * W.sum() * 0.1


@pytest.mark.parametrize("name", ["lamb", "adam", "adamw", "sgd"])
def test_single_instance_matches_library(name):
    torch_optimizer = need_extra("torch_optimizer", "test")
    g = torch.Generator().manual_seed(0)
    W0, b0 = torch.randn(6, 5, generator=g), torch.randn(6, generator=g) * 0
    ref = [W0.clone().requires_grad_(), b0.clone().requires_grad_()]
    mine = [W0.clone()[None].requires_grad_(), b0.clone()[None].requires_grad_()]
    lr = 0.01
    lib = {
        "lamb": lambda p: torch_optimizer.Lamb(p, lr=lr),
        "adam": lambda p: torch.optim.Adam(p, lr=lr),
        "adamw": lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=0.01),
        "sgd": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
    }[name](ref)
    opt = make_optimizer(name, mine, weight_decay=0.01, momentum=0.9)
    for step in range(60):
        x = torch.randn(8, 5, generator=g)
        for params, o in ((ref, lib), (mine, None)):
            for p in params:
                p.grad = None
            W, b = (params[0], params[1]) if o is not None else (params[0][0], params[1][0])
            _loss(W, b, x).backward()
        lib.step()
        opt.step(lr=torch.tensor([lr]), alive=torch.tensor([True]))
        torch.testing.assert_close(mine[0][0], ref[0], rtol=1e-5, atol=1e-6, msg=f"W differs at step {step}")
        torch.testing.assert_close(mine[1][0], ref[1], rtol=1e-5, atol=1e-6, msg=f"b differs at step {step}")


def test_lamb_clamp_matches_library():
    # the config field lamb_clamp is torch-optimizer's clamp_value; a weight norm of ~3.7 is clamped at 2
    torch_optimizer = need_extra("torch_optimizer", "test")
    g = torch.Generator().manual_seed(3)
    W0 = torch.randn(6, 5, generator=g)
    assert W0.norm() > 3
    ref, mine = W0.clone().requires_grad_(), W0.clone()[None].requires_grad_()
    lib = torch_optimizer.Lamb([ref], lr=0.01, clamp_value=2.0)
    opt = make_optimizer("lamb", [mine], lamb_clamp=2.0)
    default = make_optimizer("lamb", [W0.clone()[None].requires_grad_()])
    for _ in range(20):
        x = torch.randn(8, 5, generator=g)
        for p, W in ((ref, ref), (mine, mine[0])):
            p.grad = None
            _loss(W, torch.zeros(6), x).backward()
        lib.step()
        opt.step(lr=torch.tensor([0.01]), alive=torch.tensor([True]))
        torch.testing.assert_close(mine[0], ref, rtol=1e-5, atol=1e-6)
    assert default.hyper["clamp"] == 10.0 and opt.hyper["clamp"] == 2.0


def test_lamb_bias_zero_norm_trust_ratio_one():
    p = torch.zeros(1, 4, requires_grad=True)
    opt = make_optimizer("lamb", [p])
    p.grad = torch.ones(1, 4)
    opt.step(lr=torch.tensor([0.1]), alive=torch.tensor([True]))
    # |p| = 0 -> trust ratio 1: step = lr * m/(sqrt(v)+eps) = 0.1 * 0.1/(sqrt(0.001)+1e-6)
    expected = -0.1 * 0.1 / (math.sqrt(0.001) + 1e-6)
    torch.testing.assert_close(p.detach(), torch.full((1, 4), expected))


@pytest.mark.parametrize("name", ["lamb", "adam", "adamw", "sgd"])
def test_instances_do_not_influence_each_other(name):
    g = torch.Generator().manual_seed(1)
    base = torch.randn(3, 7, 5, generator=g)
    grads = [torch.randn(3, 7, 5, generator=g) for _ in range(20)]

    def run(scale_others: float) -> torch.Tensor:
        p = base.clone()
        p[1:] *= scale_others
        p.requires_grad_()
        opt = make_optimizer(name, [p])
        for gr in grads:
            gg = gr.clone()
            gg[1:] *= scale_others * 37.0
            p.grad = gg
            opt.step(lr=torch.tensor([0.01, 0.5, 3.0]), alive=torch.tensor([True, True, True]))
        return p.detach()[0]

    assert torch.equal(run(1.0), run(100.0))


def test_frozen_instance_does_not_move():
    p = torch.randn(2, 3, requires_grad=True)
    before = p.detach().clone()
    opt = make_optimizer("adam", [p])
    p.grad = torch.tensor([[1.0, float("nan"), 2.0], [1.0, 1.0, 1.0]])
    opt.step(lr=torch.tensor([0.1, 0.1]), alive=torch.tensor([False, True]))
    assert torch.equal(p.detach()[0], before[0])
    assert not torch.equal(p.detach()[1], before[1])


def test_paper_cosine_equals_torch_scheduler():
    lr = 0.003
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=512)
    expected = []
    for _ in range(3000):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    got = (schedule_factors("paper_cosine", 3000) * lr).tolist()
    assert max(abs(a - b) for a, b in zip(got, expected)) < 1e-15
    # periodic: zero at 512, peak again at 1024 and 2048
    assert got[512] == 0.0 and abs(got[1024] - lr) < 1e-12 and abs(got[2048] - lr) < 1e-12


def test_other_schedules():
    c = schedule_factors("cosine", 100)
    assert c[0] == 1 and c[-1] < 0.01 and bool((c[1:] <= c[:-1]).all())
    assert bool((schedule_factors("constant", 10) == 1).all())
    w = schedule_factors("warmup_cosine", 100, warmup_frac=0.1)
    assert w[0] == pytest.approx(0.1) and w[9] == pytest.approx(1.0) and w[-1] < 0.01
    assert bool((w[:10][1:] > w[:10][:-1]).all())
    with pytest.raises(ValueError, match="'schedule'"):
        schedule_factors("step", 10)


@pytest.mark.parametrize("name", ["lamb", "adam", "adamw", "sgd"])
@pytest.mark.parametrize("size", [1, 3, 17, 1003])
def test_an_instance_gets_the_same_bits_alone_in_a_group_and_with_any_thread_count(name, size):
    # the fused kernel rounds its vector body and its scalar tail differently: each instance must meet the same
    # arithmetic whatever its neighbours (odd sizes put an instance's end in a tail) and however many threads run
    g = torch.Generator().manual_seed(size)
    base = torch.randn(4, size, 2, generator=g)
    grads = [torch.randn(4, size, 2, generator=g) * (torch.rand(4, size, 2, generator=g) < 0.7) for _ in range(6)]
    lr = torch.tensor([0.01, 0.3, 0.003, 0.1])

    def run(rows: list[int], threads: int) -> torch.Tensor:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            p = base[rows].clone()
            opt = make_optimizer(name, [p])
            for gr in grads:
                p.grad = gr[rows].clone()
                opt.step(lr=lr[rows], alive=torch.ones(len(rows), dtype=torch.bool))
            return p
        finally:
            torch.set_num_threads(before)

    group = run([0, 1, 2, 3], threads=2)
    for i in range(4):
        for threads in (1, 2):
            assert torch.equal(run([i], threads)[0], group[i]), (i, threads)
    assert torch.equal(run([3, 1], threads=1)[1], group[1])


@pytest.mark.parametrize("name", ["lamb", "adam"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_moment_floor_changes_no_update(name, dtype, monkeypatch):
    # exact-zero gradients (dead neurons) keep second moments at 0, where the CPU's square root is slow; raising them
    # to the floor must leave every parameter bit-identical to moments left at 0
    g = torch.Generator().manual_seed(0)
    base = torch.randn(2, 40, 3, generator=g, dtype=dtype)
    dead = torch.rand(2, 40, 3, generator=g) < 0.6
    grads = [torch.randn(2, 40, 3, generator=g, dtype=dtype) * ~dead for _ in range(30)]

    def run() -> tuple[torch.Tensor, torch.Tensor]:
        p = base.clone()
        opt = make_optimizer(name, [p])
        for gr in grads:
            p.grad = gr.clone()
            opt.step(lr=torch.tensor([0.01, 0.1], dtype=dtype), alive=torch.ones(2, dtype=torch.bool))
        return p, opt.state[0]["exp_avg_sq"]

    monkeypatch.setattr(optim, "FLOOR_EVERY", 7)  # several raisings within the run
    raised, v_raised = run()
    monkeypatch.setattr(FusedMoments, "floor", lambda self: 0.0)
    plain, v_plain = run()
    assert torch.equal(raised, plain)
    assert bool((v_plain[dead] == 0).all()) and bool((v_raised[dead] > 0).all())


def test_the_guard_flags_exactly_the_non_finite_updates():
    g = torch.Generator().manual_seed(0)
    for name in ("lamb", "adam", "sgd"):
        p = torch.randn(4, 6, 5, generator=g)
        opt = make_optimizer(name, [p])
        for _ in range(2):
            grad = torch.randn(4, 6, 5, generator=g)
            grad[1, 0, 0] = float("nan")
            grad[2, 3, 1] = float("inf")
            p.grad = grad
            opt.prepare(torch.tensor([0.01, 0.01, 0.01, 1e38]))
            # an update whose norm overflows float (lr 1e38) counts as not finite: only a diverging run gets there
            assert opt.finite().tolist() == [True, False, False, False], name
