"""The EM model's hand-written layers: the sparse layer 2 gives the dense numbers to float rounding, is chosen
from the measured density, and keeps a group equal to its instances alone."""

import pytest
import torch
from helpers import SMALL_EM

from toymodels.families import get_family
from toymodels.families.em import EMModel
from toymodels.families.em import layers
from toymodels.engine.train import train_group

# negative biases: most hidden activations are exactly zero, as in the monosemantic regime
SPARSE_EM = SMALL_EM.replace(N=64, k=128, bias_offset=-0.3)


def _losses_and_grads(model, v, mode):
    model.sparse = mode
    for p in model.parameters():
        p.grad = None
    task, _ = model.losses(v, "decoder", with_l1=False)
    task.sum().backward()
    return task.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("offset, dot_share", [(-0.3, 0.005), (-0.8, 0.01)])  # hidden gradient: GEMM, dots
def test_sparse_layer_gives_the_dense_numbers(offset, dot_share, monkeypatch):
    monkeypatch.setattr(layers, "DOT_MAX_DENSITY", dot_share)
    cfgs = [SPARSE_EM.replace(seed=i, bias_offset=offset) for i in range(3)]
    model = EMModel.init(cfgs)
    v = torch.stack([get_family("em").sampler(c, torch.device("cpu")).sample() for c in cfgs])
    density = float((model(v)[1] != 0).float().mean())
    assert 0 < density < 0.3  # the regime the sparse path is for
    assert (density < dot_share) == (offset == -0.8)
    dense, sparse = _losses_and_grads(model, v, "off"), _losses_and_grads(model, v, "on")
    torch.testing.assert_close(sparse[0], dense[0], rtol=1e-5, atol=1e-7)
    for a, b in zip(sparse[1], dense[1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_mixed_group_dense_instances_are_untouched(monkeypatch):
    cfgs = [SPARSE_EM.replace(seed=i) for i in range(3)]
    model = EMModel.init(cfgs)
    v = torch.stack([get_family("em").sampler(c, torch.device("cpu")).sample() for c in cfgs])
    dense = _losses_and_grads(model, v, "off")
    monkeypatch.setattr("toymodels.families.em.model.sparse_instances", lambda h, n, mode: [1])
    mixed = _losses_and_grads(model, v, "auto")
    for i in (0, 2):  # the dense ones: bit for bit
        assert torch.equal(mixed[0][i], dense[0][i])
        assert all(torch.equal(a[i], b[i]) for a, b in zip(mixed[1], dense[1]))
    torch.testing.assert_close(mixed[1][2][1], dense[1][2][1], rtol=1e-5, atol=1e-6)


def test_auto_follows_density_and_size(monkeypatch):
    h = torch.zeros(2, 48, 128)
    h[0, :, :1] = 1.0  # 1/128 of instance 0 is non-zero, all of instance 1
    h[1] = 1.0
    assert layers.sparse_instances(h, 32, "auto") == []  # too small to pay off
    monkeypatch.setattr(layers, "SPARSE_MIN_MACS", 0)
    assert layers.sparse_instances(h, 32, "auto") == [0]
    assert layers.sparse_instances(h, 32, "off") == [] and layers.sparse_instances(h, 32, "on") == [0, 1]
    with pytest.raises(ValueError, match="sparse"):
        layers.sparse_instances(h, 32, "yes")


def test_sparse_training_matches_dense_and_a_group_its_instances(monkeypatch):
    monkeypatch.setattr(layers, "SPARSE_MIN_MACS", 0)
    monkeypatch.setattr(layers, "SPARSE_MAX_DENSITY", 0.2)
    cfgs = [SPARSE_EM.replace(steps=64, lr=0.01, seed=i, bias_decay=0.03) for i in range(2)]
    auto = train_group(cfgs)
    for i, cfg in enumerate(cfgs):
        alone = train_group([cfg])
        for name in auto.final:
            assert torch.equal(auto.final[name][i], alone.final[name][0])
    monkeypatch.setattr(EMModel, "sparse", "off")
    dense = train_group(cfgs)
    torch.testing.assert_close(auto.losses, dense.losses, rtol=1e-3, atol=1e-5)
    for name in auto.final:
        torch.testing.assert_close(auto.final[name], dense.final[name], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("B, out, inp", [(128, 1024, 64), (128, 256, 16), (1024, 512, 32), (32, 2048, 20)])
def test_weight_grad_in_its_own_layout_is_bit_identical(B, out, inp):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, B, inp, generator=g)
    grad = torch.randn(2, B, out, generator=g) * (torch.rand(2, B, out, generator=g) < 0.5)
    direct = layers.weight_grad(x, grad)
    assert torch.equal(direct, torch.bmm(x.transpose(1, 2), grad).transpose(1, 2))
