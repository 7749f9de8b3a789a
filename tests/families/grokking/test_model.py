"""The grokking models: the transformer against a plain implementation and TransformerLens, each instance's own
split, batched equals separate, the per-instance weight decay and warm-up of the engine, padding rows."""

import math

import pytest
import torch
from helpers import assert_group_equals_alone

from toymodels.config import ExperimentConfig
from toymodels.engine.optim import make_optimizer, schedule_factors
from toymodels.engine.train import train_group
from toymodels.families.grokking.data import (
    GrokSampler,
    all_tokens,
    answers,
    n_train,
    train_mask,
)
from toymodels.families.grokking.model import build, from_tensors

SMALL = {"model": "grokking", "modulus": 11, "d_model": 16, "n_heads": 2, "d_mlp": 24, "optimizer": "adamw",
         "lr": 3e-3, "weight_decay": 1.0, "schedule": "warmup_constant", "warmup_frac": 0.1, "steps": 40,
         "train_frac": 0.5, "batch_size": 72}


def cfg(**kw) -> ExperimentConfig:
    return ExperimentConfig.from_flat({**SMALL, **kw})


def plain_logits(m, tokens: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Instance i of a transformer the ordinary way: every position, causal attention, residual stream."""
    p = {name: getattr(m, name)[i].double() for name in m.param_names}
    x = p["W_E"][tokens] + p["W_pos"]
    q, k, v = (torch.einsum("npd,hde->nhpe", x, p[w]) for w in ("W_Q", "W_K", "W_V"))
    scores = torch.einsum("nhqe,nhke->nhqk", q, k) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~torch.tril(torch.ones(3, 3, dtype=torch.bool)), float("-inf"))
    z = torch.einsum("nhqk,nhke->nhqe", torch.softmax(scores, -1), v)
    resid = x + torch.einsum("nhqe,hed->nqd", z, p["W_O"])
    neurons = torch.relu(resid @ p["W_in"] + p["b_in"])
    return ((resid + neurons @ p["W_out"] + p["b_out"]) @ p["W_U"])[:, -1], neurons[:, -1]


def perturbed(model):
    with torch.no_grad():
        for prm in model.parameters():
            prm.add_(torch.randn_like(prm) * 0.2)  # non-zero biases too
    return model


@pytest.mark.parametrize("tokens", ["every pair", "any tokens"])
def test_the_transformer_computes_the_papers_function(tokens):
    model = perturbed(build([cfg(), cfg(seed=1)]).double())
    gen = torch.Generator().manual_seed(0)
    t = all_tokens(11) if tokens == "every pair" else torch.randint(0, 12, (200, 3), generator=gen)
    logits, neurons = model(t.unsqueeze(0).expand(2, -1, -1))
    for i in range(2):
        want, want_neurons = plain_logits(model, t, i)
        torch.testing.assert_close(logits[i], want, atol=1e-12, rtol=1e-12)
        torch.testing.assert_close(neurons[i], want_neurons, atol=1e-12, rtol=1e-12)


def test_transformer_lens_gives_the_same_logits():
    tl = pytest.importorskip("transformer_lens", reason="needs the optional transformer-lens package")
    from toymodels.families.grokking.lens import (
        to_hooked_transformer,
        weights_from_lens,
    )

    model = perturbed(build([cfg(), cfg(seed=1)]))
    tokens = all_tokens(11)
    ours, _ = model(tokens.unsqueeze(0).expand(2, -1, -1))
    for i in range(2):
        lens = to_hooked_transformer(model, instance=i)
        assert isinstance(lens, tl.HookedTransformer)
        with torch.no_grad():
            theirs, cache = lens.run_with_cache(tokens)
        torch.testing.assert_close(ours[i], theirs[:, -1], atol=1e-5, rtol=1e-5)
        _, ours_neurons = model(tokens.unsqueeze(0).expand(2, -1, -1))
        torch.testing.assert_close(ours_neurons[i], cache["blocks.0.mlp.hook_post"][:, -1], atol=1e-5, rtol=1e-5)
        back = weights_from_lens(lens)
        assert all(torch.equal(back[k][0], getattr(model, k)[i]) for k in back)


def test_each_instance_has_its_own_split_of_its_own_size():
    a, b, c = cfg(), cfg(seed=1), cfg(train_frac=0.3)
    masks = [train_mask(x) for x in (a, b, c)]
    assert [int(m.sum()) for m in masks] == [60, 60, 36] == [n_train(x) for x in (a, b, c)]  # floor(frac * 121)
    assert not torch.equal(masks[0], masks[1])
    assert torch.equal(masks[0], train_mask(cfg(seed=1, split_seed=0)))  # the split follows split_seed
    assert n_train(cfg(modulus=113, train_frac=0.3, batch_size=3830)) == 3830  # the paper's count


def test_answers_of_the_three_operations():
    a, b = torch.tensor([3, 10, 0]), torch.tensor([9, 4, 7])
    assert answers(a, b, "add", 11).tolist() == [1, 3, 7]
    assert answers(a, b, "subtract", 11).tolist() == [5, 6, 4]
    assert answers(a, b, "multiply", 11).tolist() == [5, 7, 0]


def test_full_batch_rows_then_padding_and_padding_weighs_nothing():
    c = cfg(batch_size=64)
    s = GrokSampler(c, 64, torch.device("cpu"))
    v = s.sample()
    assert s.full_batch and torch.equal(v[:60], all_tokens(11)[train_mask(c)].float())
    assert (v[60:] == 11).all()
    model = build([c])
    loss, _ = model.losses(v[None], "decoder")
    assert loss.item() == pytest.approx(model.losses(v[None, :60], "decoder")[0].item(), rel=1e-6)
    small = GrokSampler(c, 16, torch.device("cpu"))  # a smaller batch: fresh training pairs each step
    first, second = small.sample(), small.sample()
    rows = {tuple(r) for r in all_tokens(11)[train_mask(c)].tolist()}
    assert {tuple(r) for r in first.long().tolist()} <= rows and not torch.equal(first, second)


@pytest.mark.parametrize("arch", ["transformer", "mlp"])
def test_instances_train_the_same_in_a_group_as_alone(arch):
    grid = [{"seed": 0}, {"seed": 1, "lr": 1e-3, "train_frac": 0.3, "operation": "subtract"},
            {"seed": 2, "split_seed": 7, "operation": "multiply"}]
    cfgs = [cfg(grok_arch=arch, **g) for g in grid]
    assert_group_equals_alone(cfgs)
    together = train_group(cfgs)
    for i, c in enumerate(cfgs):  # bit for bit: each instance's rows, init, split and updates are its own
        alone = train_group([c])
        assert torch.equal(together.losses[i], alone.losses[0])
        assert all(torch.equal(together.final[k][i], alone.final[k][0]) for k in alone.final)


def test_per_instance_weight_decay_equals_each_instance_alone(monkeypatch):
    """The engine's AdamW with one weight decay per instance (grouping by weight decay off for this test)."""
    monkeypatch.setattr(ExperimentConfig, "GROUP_FIELDS",
                        tuple(f for f in ExperimentConfig.GROUP_FIELDS if f != "weight_decay"))
    cfgs = [cfg(weight_decay=1.0), cfg(weight_decay=0.0, seed=1), cfg(weight_decay=0.3, seed=2)]
    together = train_group(cfgs)
    for i, c in enumerate(cfgs):
        alone = train_group([c])
        assert all(torch.equal(together.final[k][i], alone.final[k][0]) for k in alone.final)
    assert not torch.equal(together.final["W_E"][0], train_group([cfgs[0].replace(weight_decay=0.0)]).final["W_E"][0])


def test_adamw_with_a_tensor_of_equal_decays_is_the_float_path():
    torch.manual_seed(0)
    p1, p2 = torch.nn.Parameter(torch.randn(3, 4, 5)), None
    p2 = torch.nn.Parameter(p1.detach().clone())
    a = make_optimizer("adamw", [p1], weight_decay=0.5, betas=(0.9, 0.98))
    b = make_optimizer("adamw", [p2], weight_decay=torch.full((3,), 0.5), betas=(0.9, 0.98))
    for _ in range(5):
        g = torch.randn(3, 4, 5)
        p1.grad, p2.grad = g.clone(), g.clone()
        a.step(torch.full((3,), 0.01), torch.ones(3, dtype=torch.bool))
        b.step(torch.full((3,), 0.01), torch.ones(3, dtype=torch.bool))
    assert torch.equal(p1, p2) and a.hyper["beta2"] == 0.98


def test_the_warm_up_is_the_papers_min_step_over_10():
    f = schedule_factors("warmup_constant", 40_000, warmup_frac=10 / 40_000)
    assert f[:12].tolist() == [min(t / 10, 1) for t in range(12)] and bool((f[10:] == 1).all())


def test_from_tensors_rebuilds_the_model():
    c = cfg()
    model = perturbed(build([c]))
    again = from_tensors(model.state_tensors(), [c])
    t = all_tokens(11)[None]
    assert torch.equal(model(t)[0], again(t)[0])


def test_the_sparse_mix_has_the_gradients_of_its_dense_sum():
    from toymodels.families.grokking.mixing import mix

    gen = torch.Generator().manual_seed(0)
    weights = torch.rand(2, 5, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    columns = torch.sort(torch.randperm(7, generator=gen)[:3]).values.expand(2, 5, 3).contiguous()
    tables = [torch.randn(2, 7, 4, dtype=torch.float64, generator=gen, requires_grad=True),
              torch.randn(2, 7, 2, dtype=torch.float64, generator=gen, requires_grad=True)]
    out = mix(weights, columns, tables)
    for T, o in zip(tables, out):  # the dense sum it stands for
        want = (weights.unsqueeze(-1) * torch.stack([T[i][columns[i]] for i in range(2)])).sum(2)
        torch.testing.assert_close(o, want)
    assert torch.autograd.gradcheck(lambda w, a, b: tuple(mix(w, columns, [a, b])), (weights, *tables))


@pytest.mark.parametrize("arch", ["transformer", "mlp"])
def test_one_instance_as_the_module_results_model_returns(arch):
    from toymodels.results.model import TrainedModel

    c = cfg(grok_arch=arch)
    inner = from_tensors({k: v[:1] for k, v in perturbed(build([c, c.replace(seed=1)])).state_tensors().items()}, [c])
    model = TrainedModel(inner, c, "r0000", 0)
    tokens = all_tokens(11)
    logits, cache = model.run_with_cache(tokens)
    assert model.axes["input"] == ("batch", "positions") and model.sizes["positions"] == 3
    assert logits.shape == (121, 11) and cache["neurons"].shape == (121, 24)
    torch.testing.assert_close(model(tokens[:5]), logits[:5])
    assert model.sample_inputs(7).shape == (7, 3)  # seven of its training pairs
