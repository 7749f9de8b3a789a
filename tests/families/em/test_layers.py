"""The EM model's hand-written layers: the sparse path gives the dense numbers to float rounding (and exact
gradients: gradcheck), is chosen from the measured density, and keeps a group equal to its instances alone, at any
thread count and across a resume."""

import pytest
import torch
from helpers import SMALL_EM

from toymodels.engine.train import TrainingInterrupted, train_group
from toymodels.families import get_family
from toymodels.families.em import EMModel, layers

# negative biases: most hidden activations are exactly zero, as in the monosemantic regime
SPARSE_EM = SMALL_EM.replace(N=64, k=128, batch_size=64, bias_offset=-0.3)


def _model_at(densities, seed=0):
    """Instances of SPARSE_EM whose hidden densities on their batch are the given ones (first-layer biases lowered
    by the matching quantile of each instance's pre-activations), and that batch."""
    cfgs = [SPARSE_EM.replace(seed=seed + i) for i in range(len(densities))]
    model = EMModel.init(cfgs)
    v = torch.stack([get_family("em").sampler(c, torch.device("cpu")).sample() for c in cfgs])
    with torch.no_grad():
        pre = layers.InstanceLinear.apply(model.embed(v), model.W1, model.b1)
        for i, d in enumerate(densities):
            model.b1[i] -= torch.quantile(pre[i].flatten(), 1 - d)
    return model, v


def _losses_and_grads(model, v, mode, l1=0.0):
    model.sparse = mode
    for p in model.parameters():
        p.grad = None
    task, l1_term = model.losses(v, "decoder", with_l1=l1 > 0)
    (task.sum() + (l1 * l1_term.sum() if l1 > 0 else 0)).backward()
    model.sparse = "auto"
    return task.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("compact", [0.0, 1.0])  # W2 transposed whole, or its active columns gathered
@pytest.mark.parametrize("l1", [0.0, 0.1])
def test_sparse_path_gives_the_dense_numbers(compact, l1, monkeypatch):
    monkeypatch.setattr(layers, "COMPACT_MAX_ACTIVE", compact)
    model, v = _model_at([0.002, 0.02, 0.08, 0.3])
    density = (model(v)[1] != 0).float().mean((1, 2))
    torch.testing.assert_close(density, torch.tensor([0.002, 0.02, 0.08, 0.3]), rtol=0.05, atol=2e-4)
    dense, sparse = _losses_and_grads(model, v, "off", l1), _losses_and_grads(model, v, "on", l1)
    torch.testing.assert_close(sparse[0], dense[0], rtol=1e-5, atol=1e-7)
    for a, b in zip(sparse[1], dense[1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    silent = (model(v)[1] == 0).all(1)  # neurons off on the whole batch: exactly zero gradients, as in the dense path
    assert silent.any() and (sparse[1][2].transpose(1, 2)[silent] == 0).all() and (sparse[1][0][silent] == 0).all()


@pytest.mark.parametrize("l1", [0.0, 0.1])
def test_mixed_group_dense_instances_are_untouched(l1, monkeypatch):
    model, v = _model_at([0.02, 0.02, 0.3])
    dense = _losses_and_grads(model, v, "off", l1)
    monkeypatch.setattr("toymodels.families.em.model.sparse_instances", lambda pre, n, mode: [1])
    mixed = _losses_and_grads(model, v, "auto", l1)
    for i in (0, 2):  # the dense ones: bit for bit
        assert torch.equal(mixed[0][i], dense[0][i])
        assert all(torch.equal(a[i], b[i]) for a, b in zip(mixed[1], dense[1]))
    for a, b in zip(mixed[1], dense[1]):
        torch.testing.assert_close(a[1], b[1], rtol=1e-5, atol=1e-6)


def test_gradients_are_exact_in_float64():
    """torch.autograd.gradcheck of both outputs (out and h: the L1 term's path) against finite differences, for
    a group of a sparse instance (W2 gathered), a sparse one (W2 transposed whole) and a dense one."""
    g = torch.Generator().manual_seed(3)
    I, B, m, k, N = 3, 6, 4, 10, 5
    x = torch.randn(I, B, m, generator=g, dtype=torch.float64)
    W1 = torch.randn(I, k, m, generator=g, dtype=torch.float64, requires_grad=True)
    b1 = (torch.randn(I, k, generator=g, dtype=torch.float64) - 1.5).requires_grad_()
    W2 = torch.randn(I, N, k, generator=g, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        pre = layers.InstanceLinear.apply(x, W1, b1)
    assert pre.abs().min() > 1e-3  # no pre-activation within reach of the finite differences' steps
    assert 0 < (pre > 0).double().mean() < 0.5

    def f(W1, b1, W2):
        pre = layers.InstanceLinear.apply(x, W1, b1)
        return layers.SparseMLP.apply(x, W1, b1, W2, pre.detach(), [0, 1])

    active = int((pre[0] > 0).any(0).sum())
    layers_compact = layers.COMPACT_MAX_ACTIVE
    try:  # instance 0 gathered (its active neurons are few), instance 1 not: both modes in one group
        layers.COMPACT_MAX_ACTIVE = (active + 0.5) / k
        assert int((pre[1] > 0).any(0).sum()) > active
        assert torch.autograd.gradcheck(f, (W1, b1, W2), eps=1e-6, atol=1e-7)
    finally:
        layers.COMPACT_MAX_ACTIVE = layers_compact


def test_auto_follows_density_and_size(monkeypatch):
    pre = -torch.ones(2, 48, 128)
    pre[0, :, :1] = 1.0  # 1/128 of instance 0 is positive, all of instance 1
    pre[1] = 1.0
    assert layers.sparse_instances(pre, 32, "auto") == []  # too small to pay off
    monkeypatch.setattr(layers, "SPARSE_MIN_MACS", 0)
    assert layers.sparse_instances(pre, 32, "auto") == [0]
    assert layers.sparse_instances(pre, 32, "off") == [] and layers.sparse_instances(pre, 32, "on") == [0, 1]
    with pytest.raises(ValueError, match="sparse"):
        layers.sparse_instances(pre, 32, "yes")
    # a density between the two limits: sparse in a large batch only (small ones pay the fixed costs over fewer rows)
    share = (layers.SPARSE_MAX_DENSITY + layers.SPARSE_MAX_DENSITY_SMALL) / 2
    pre = -torch.ones(1, layers.SPARSE_SMALL_BATCH, 100)
    pre[..., : round(100 * share)] = 1.0
    assert layers.sparse_instances(pre, 32, "auto") == [0]
    assert layers.sparse_instances(pre[:, : layers.SPARSE_SMALL_BATCH - 1], 32, "auto") == []


class Taken(Exception):
    """Raised by a stand-in for the sparse path: it was taken."""


def _taken(*args):
    raise Taken


def test_only_relu_training_steps_take_the_sparse_path(monkeypatch):
    monkeypatch.setattr(layers.SparseMLP, "apply", _taken)
    model, v = _model_at([0.02])
    model.sparse = "on"
    with torch.no_grad():
        model(v)  # evaluation: dense
    gelu = EMModel.init([SPARSE_EM.replace(nonlinearity="gelu")])
    gelu.sparse = "on"
    gelu(v)  # no exact zeros: dense
    with pytest.raises(Taken):
        model(v)


def test_sparse_training_matches_dense_a_group_its_instances_and_any_thread_count(monkeypatch):
    monkeypatch.setattr(layers, "SPARSE_MIN_MACS", 0)
    monkeypatch.setattr(layers, "SPARSE_MAX_DENSITY_SMALL", 0.2)
    cfgs = [SPARSE_EM.replace(steps=64, lr=0.01, seed=i, bias_decay=0.03, l1=0.01 * i) for i in range(2)]
    chosen = []
    real = layers.sparse_instances
    monkeypatch.setattr("toymodels.families.em.model.sparse_instances", lambda *a: chosen.append(real(*a)) or chosen[-1])
    auto = train_group([c.replace(threads=2) for c in cfgs])
    assert all(chosen) and any(len(c) == 2 for c in chosen)  # the sparse path really ran, for both instances
    for i, cfg in enumerate(cfgs):
        alone = train_group([cfg.replace(threads=1)])
        for name in auto.final:
            assert torch.equal(auto.final[name][i], alone.final[name][0]), name
    monkeypatch.setattr(EMModel, "sparse", "off")
    dense = train_group(cfgs)
    torch.testing.assert_close(auto.losses, dense.losses, rtol=1e-3, atol=1e-5)
    for name in auto.final:
        torch.testing.assert_close(auto.final[name], dense.final[name], rtol=1e-3, atol=1e-4)


def test_sparse_training_resumes_to_the_same_bits(monkeypatch):
    monkeypatch.setattr(layers, "SPARSE_MIN_MACS", 0)
    monkeypatch.setattr(layers, "SPARSE_MAX_DENSITY_SMALL", 0.2)
    cfg = SPARSE_EM.replace(steps=48, lr=0.01, bias_decay=0.03)
    full = train_group([cfg])
    states, left = [], iter(range(20, 0, -1))
    with pytest.raises(TrainingInterrupted):
        train_group([cfg], on_state=states.append, state_every_s=float("inf"), should_stop=lambda: next(left) <= 1)
    resumed = train_group([cfg], resume=states[-1])
    assert 0 < states[-1].step < 48
    for name in full.final:
        assert torch.equal(full.final[name], resumed.final[name]), name


@pytest.mark.parametrize("B, out, inp", [(128, 1024, 64), (128, 256, 16), (1024, 512, 32), (32, 2048, 20)])
def test_weight_grad_in_its_own_layout_is_bit_identical(B, out, inp):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, B, inp, generator=g)
    grad = torch.randn(2, B, out, generator=g) * (torch.rand(2, B, out, generator=g) < 0.5)
    direct = layers.weight_grad(x, grad)
    assert torch.equal(direct, torch.bmm(x.transpose(1, 2), grad).transpose(1, 2))
