"""``Results.model``: one trained instance of each family as a torch module, its forward pass equal to the family's
own module at that checkpoint, a cache of its named layers with their axis names and sizes, and an SAE's
encode / decode."""

from __future__ import annotations

import pytest
import torch

import toymodels as tm
from toymodels.config import ExperimentConfig, SweepConfig
from toymodels.config.registry import get_family
from toymodels.results.model import TrainedModel, TrainedSAE
from toymodels.running.sweep import run_sweep
from toymodels.engine.threads import one_thread

SMALL = {"batch_size": 16, "steps": 32}
CONFIGS = {
    "em": {"model": "em", "N": 12, "m": 4, "k": 6},
    "em-reprojector": {"model": "em", "N": 12, "m": 4, "k": 6, "task": "reprojector"},
    "tms": {"model": "tms", "N": 7, "m": 3},
    "quadratic": {"model": "quadratic", "N": 5, "m": 2},
    "sae": {"model": "sae", "N": 10, "m": 4, "sae_arch": "topk", "sae_width": 12, "sae_k": 2, "optimizer": "adam",
            "schedule": "constant", "lr": 1e-3, "eps": 1 / 8},
}
#: what each family's model must expose: (input axes, output axes, {layer: axes}) -- from docs/architecture.md
EXPECTED = {
    "em": (("batch", "features"), ("batch", "outputs"),
           {"x": ("batch", "hidden"), "h": ("batch", "neurons")}),
    "em-reprojector": (("batch", "features"), ("batch", "outputs"),
                       {"x": ("batch", "hidden"), "h": ("batch", "neurons")}),
    "tms": (("batch", "features"), ("batch", "features"), {"h": ("batch", "hidden")}),
    "quadratic": (("batch", "features"), ("batch",), {"hidden": ("batch", "hidden")}),
    "sae": (("batch", "hidden"), ("batch", "hidden"),
            {"pre_activations": ("batch", "latents"), "latents": ("batch", "latents"),
             "reconstruction": ("batch", "hidden")}),
}
SIZES = {"em": {"features": 12, "hidden": 4, "neurons": 6, "outputs": 12},
         "em-reprojector": {"features": 12, "hidden": 4, "neurons": 6, "outputs": 4},
         "tms": {"features": 7, "hidden": 3}, "quadratic": {"features": 5, "hidden": 2},
         "sae": {"hidden": 4, "latents": 12}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each family trained for 32 steps, two seeds, checkpoints kept: name -> Results."""
    root = tmp_path_factory.mktemp("models")
    with one_thread():
        return {name: run_sweep(SweepConfig(name=name, base=ExperimentConfig.from_flat({**fields, **SMALL}), seeds=2),
                                root / name, progress=False)
                for name, fields in CONFIGS.items()}


def family_module(res, run_id: str, step: int | None = None):
    """The family's own module of one instance, rebuilt the long way (what Results.model saves users)."""
    steps = res.checkpoint_steps(run_id)
    cfg = tm.analysis.instance_config(res, run_id) if res.sweep.base.model.model != "sae" else None
    cfg = cfg or ExperimentConfig.from_flat({**CONFIGS[res.sweep.name], **SMALL, "seed": int(res.row(run_id)["seed"])})
    tensors = {k: v[None] for k, v in res.params(run_id, steps[-1] if step is None else step).items()}
    return get_family(cfg.model.model).from_tensors(tensors, cfg)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_each_family_as_a_module_with_a_cache(trained, name):
    res = trained[name]
    model = res.model("r0001")
    assert isinstance(model, torch.nn.Module) and model.family == res.sweep.base.model.model
    assert model.run_id == "r0001" and model.step == res.checkpoint_steps("r0001")[-1]
    inputs_axes, output_axes, layers = EXPECTED[name]
    assert model.axes == {"input": inputs_axes, "output": output_axes, **layers}
    assert model.sizes == SIZES[name]
    x = model.sample_inputs(9)
    assert x.shape == (9, SIZES[name][inputs_axes[-1]])
    out, cache = model.run_with_cache(x)
    assert set(cache) == set(layers)
    for layer, axes in layers.items():
        assert cache[layer].shape == tuple(9 if a == "batch" else SIZES[name][a] for a in axes), layer
    assert out.shape == tuple(9 if a == "batch" else SIZES[name][a] for a in output_axes)

    # the same numbers as the family's own module at that checkpoint, with its instance axis
    inner = family_module(res, "r0001")
    with torch.no_grad():
        if name == "sae":
            ref = inner.decode(inner.encode(x[None]))[0]
            torch.testing.assert_close(cache["latents"], inner.encode(x[None])[0])
        else:
            ref, hidden = inner(x[None])
            ref = ref[0]
            key = "hidden" if name == "quadratic" else "h"
            torch.testing.assert_close(cache[key], hidden[0])
        torch.testing.assert_close(out, ref)
        torch.testing.assert_close(model(x), ref)
    # one sample without a batch axis, and any leading axes
    torch.testing.assert_close(model(x[0]), ref[0])
    torch.testing.assert_close(model(x.reshape(3, 3, -1)), ref.reshape(3, 3, *ref.shape[1:]))


def test_an_earlier_checkpoint_has_its_own_weights(trained):
    res = trained["em"]
    first = res.checkpoint_steps("r0000")[0]
    early, final = res.model("r0000", step=first), res.model("r0000")
    assert early.step == first and not torch.equal(early.params["W1"], final.params["W1"])
    torch.testing.assert_close(early.params["W1"], res.params("r0000", first)["W1"])
    x = final.sample_inputs(5)
    inner = family_module(res, "r0000", first)
    with torch.no_grad():
        torch.testing.assert_close(early(x), inner(x[None])[0][0])


def test_an_sae_encodes_and_decodes_like_saelens(trained):
    model = trained["sae"].model("r0000")
    assert isinstance(model, TrainedSAE)
    x = model.sample_inputs(6)
    f = model.encode(x)
    assert f.shape == (6, 12) and ((f != 0).sum(-1) <= 2).all()  # topk with k=2
    torch.testing.assert_close(model.decode(f), model(x))
    p = model.params
    torch.testing.assert_close(model.decode(f), f @ p["W_dec"] + p["b_dec"])
    assert not isinstance(trained["em"].model("r0001"), TrainedSAE)


def test_the_model_trains_and_moves_like_any_module(trained):
    model = trained["tms"].model("r0001")
    x = model.sample_inputs(4)
    loss = model(x).pow(2).sum()
    loss.backward()
    assert model.inner.W.grad is not None and model.inner.W.grad.shape == (1, 3, 7)
    double = model.double()
    assert double(x).dtype == torch.float64  # float32 inputs follow the model's dtype
    text = repr(model)
    assert "family=tms" in text and "input (batch, features=7) -> output (batch, features=7)" in text
    assert "h (batch, hidden=3)" in text


def test_wrong_inputs_and_names_speak_python(trained):
    model = trained["em"].model("r0001")
    with pytest.raises(ValueError, match=r"inputs: the last axis must be features=12 \(got shape \(4, 5\)\)"):
        model(torch.zeros(4, 5))
    with pytest.raises(KeyError, match="names: no layer 'resid' in a 'em' model; layers: x, h"):
        model.run_with_cache(torch.zeros(2, 12), names=["resid"])
    out, cache = model.run_with_cache(torch.zeros(2, 12), names=["h"])
    assert list(cache) == ["h"]
    with pytest.raises(KeyError, match="r0099|no such instance"):
        trained["em"].model("r0099")
    with pytest.raises(KeyError, match="no checkpoint at step 5"):
        trained["em"].model("r0001", step=5)


def test_results_show_themselves_in_a_line_and_in_jupyter(trained):
    res = trained["em"]
    assert repr(res) == f"Results('{res.folder}': em, model em, 2/2 instances (0 diverged), swept seed)"
    page = res._repr_html_()
    assert "<table>" in page and "r0000" in page and "mono_per_feature" in page and str(res.folder) in page
    assert isinstance(res.model("r0001"), TrainedModel)
