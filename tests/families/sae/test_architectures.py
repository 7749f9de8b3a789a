"""The four SAE architectures: their activation rules, penalties, straight-through gradients, the unit-norm decoder
hook, and the registry that refuses a second architecture of the same name."""

from __future__ import annotations

import pytest
import torch
from helpers import sae_config

from toymodels.families.sae import (
    SAE,
    architecture_names,
    get_architecture,
    register_architecture,
)
from toymodels.families.sae.architecture import (
    ArchitectureError,
    keep_top,
    unregister_architecture,
)
from toymodels.families.sae.jumprelu import JumpReLUFn, StepFn


def model(arch: str, cfgs=None, **kw):
    cfgs = cfgs or [sae_config(sae_arch=arch, l1=0.0, **kw)]
    truth = torch.randn(len(cfgs), 32, 8)
    return get_architecture(arch).init(cfgs, truth, torch.full((len(cfgs), 32), -1))


def test_all_four_architectures_are_registered_and_duplicates_refused():
    assert architecture_names()[:4] == ("relu_l1", "topk", "batchtopk", "jumprelu")
    with pytest.raises(ArchitectureError, match="already registered"):
        register_architecture(get_architecture("topk"))

    class Mine(SAE):
        name = "mine_test"

    try:
        register_architecture(Mine)
        assert get_architecture("mine_test") is Mine
    finally:
        unregister_architecture("mine_test")
    with pytest.raises(ArchitectureError, match=r"^field 'sae_arch': must be one of relu_l1, topk"):
        get_architecture("nope")


def test_init_is_tied_and_unit_norm_and_per_seed():
    a = model("relu_l1", [sae_config(seed=0), sae_config(seed=1)])
    b = model("relu_l1", [sae_config(seed=1)])
    assert torch.allclose(a.W_dec.norm(dim=-1), torch.ones(2, 32))
    assert torch.equal(a.W_enc, a.W_dec.transpose(1, 2))
    assert torch.equal(a.W_dec[1], b.W_dec[0])  # an instance's init does not depend on its group


def test_keep_top_uses_each_instances_own_k():
    scores = torch.tensor([[5.0, 1, 3, 4], [5.0, 1, 3, 4]])
    out = keep_top(scores, torch.tensor([1, 3]), 3)
    assert out.tolist() == [[5, 0, 0, 0], [5, 0, 3, 4]]


def test_topk_keeps_k_per_sample_and_batchtopk_k_on_average():
    torch.manual_seed(0)
    x = torch.randn(2, 50, 8)
    cfgs = [sae_config(sae_arch="topk", l1=0.0, sae_k=2), sae_config(sae_arch="topk", l1=0.0, sae_k=5, seed=1)]
    f = model("topk", cfgs).encode(x)
    assert ((f != 0).sum(-1) <= torch.tensor([2, 5]).view(2, 1)).all()
    assert (f >= 0).all()
    cfgs = [sae_config(sae_arch="batchtopk", l1=0.0, sae_k=3)]
    f = model("batchtopk", cfgs).encode(x[:1])
    nz = (f != 0).sum(-1).float()
    assert nz.sum() <= 150 and nz.std() > 0  # k x batch in total, unevenly spread over the samples


def test_relu_l1_penalty_is_the_decoder_weighted_l1():
    m = model("relu_l1")
    with torch.no_grad():
        m.W_dec.mul_(2)
    x = torch.randn(1, 16, 8)
    pre = m.pre_activations(x)
    f = torch.relu(pre)
    assert m.penalty(pre, f).item() == pytest.approx((2 * f).sum().item() / 16, rel=1e-5)
    mse, pen = m.losses(x, "decoder", with_l1=False)
    assert pen is None and mse.shape == (1,)


def test_post_step_projects_the_decoder_of_live_instances_only():
    m = model("relu_l1", [sae_config(), sae_config(seed=1)])
    with torch.no_grad():
        m.W_dec.mul_(3)
    m.post_step(torch.tensor([True, False]))
    assert torch.allclose(m.W_dec[0].norm(dim=-1), torch.ones(32))
    assert torch.allclose(m.W_dec[1].norm(dim=-1), torch.full((32,), 3.0))


def test_jumprelu_straight_through_gradients():
    z = torch.tensor([[[0.5, 1.02, 2.0]]], requires_grad=True)
    theta = torch.tensor([[[1.0, 1.0, 1.0]]], requires_grad=True)
    bw = torch.tensor([0.1]).view(1, 1, 1)
    f = JumpReLUFn.apply(z, theta, bw)
    assert f[0, 0].tolist() == pytest.approx([0.0, 1.02, 2.0])
    f.sum().backward()
    assert z.grad.tolist() == [[[0.0, 1.0, 1.0]]]
    # only z = 1.02 lies within bandwidth/2 of theta: d f / d theta = -(theta / eps) = -10
    assert theta.grad.flatten().tolist() == pytest.approx([0.0, -10.0, 0.0])
    theta.grad = None
    StepFn.apply(z, theta, bw).sum().backward()
    assert theta.grad.flatten().tolist() == pytest.approx([0.0, -10.0, 0.0])  # -(1 / eps) K


def test_jumprelu_thresholds_start_at_the_configured_value_and_learn():
    cfgs = [sae_config(sae_arch="jumprelu", l1=0.1, sae_threshold=0.05, sae_bandwidth=0.05)]
    m = model("jumprelu", cfgs)
    assert torch.allclose(m.log_threshold.exp(), torch.full((1, 32), 0.05))
    assert "log_threshold" in m.param_names
    mse, pen = m.losses(torch.randn(1, 64, 8))
    (mse + 0.1 * pen).sum().backward()
    assert m.log_threshold.grad is not None and m.log_threshold.grad.abs().sum() > 0
