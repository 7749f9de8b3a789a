"""The ``relu_layers`` hook of each family (families/em, tms, sae ``polytope.py``) and the lens over a results
folder (families/polytope.py): the hook's network gives exactly the family's own outputs, its directions are the
true features, models without ReLU have none, and ``lens_table`` has a row per instance and step."""

from __future__ import annotations

import pytest
import torch
from helpers import SMALL_EM, sae_config

from toymodels.config import ExperimentConfig, SweepConfig
from toymodels.config.presets import preset
from toymodels.config.registry import get_family
from toymodels.families.base import family_hook
from toymodels.families.polytope import has_lens, lens_table, slice_view
from toymodels.metrics.polytope import outputs, spline_codes
from toymodels.results.store import load
from toymodels.running.sweep import run_sweep

TMS = ExperimentConfig.from_flat({"model": "tms", "N": 5, "m": 2, "batch_size": 32, "steps": 32, "eps": 0.1,
                                  "optimizer": "adamw", "lr": 1e-2, "schedule": "constant"})


def hook(cfgs):
    family = get_family(cfgs[0].model.model)
    model = family.build(cfgs)
    return model, family_hook(family, "relu_layers")(model.state_tensors(), cfgs)


def features(cfg, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.rand(2, n, cfg.data.N, generator=g) * (torch.rand(2, n, cfg.data.N, generator=g) < 0.2)
    return v


def test_em_hook_is_the_hidden_layer_on_the_embedding():
    cfgs = [SMALL_EM, SMALL_EM.replace(seed=1)]
    model, view = hook(cfgs)
    v = features(SMALL_EM)
    with torch.no_grad():
        out, h = model(v)
        x = model.embed(v)
    assert torch.allclose(outputs(view.net, x), out, atol=1e-5)
    assert torch.equal(spline_codes(view.net, x), h > 0)
    assert torch.equal(view.directions, model.E.transpose(1, 2))
    inputs, coefficients = view.draw(100)
    assert inputs.shape == (2, 100, SMALL_EM.model.m) and coefficients.shape == (2, 100, SMALL_EM.data.N)
    assert torch.allclose(inputs, model.embed(coefficients), atol=1e-6)
    assert not torch.equal(coefficients[0], coefficients[1])  # each instance its own seed's stream
    _, gelu = hook([SMALL_EM.replace(nonlinearity="gelu")])
    assert gelu is None


@pytest.mark.parametrize("variant", ["relu", "hidden_relu"])
def test_tms_hook_reads_the_hidden_layer(variant):
    cfgs = [TMS.replace(tms_variant=variant), TMS.replace(tms_variant=variant, seed=3)]
    model, view = hook(cfgs)
    x = features(TMS)
    with torch.no_grad():
        out, _ = model(x)
        h = torch.bmm(x, model.W.transpose(1, 2))
    assert torch.allclose(outputs(view.net, h), out, atol=1e-6)
    assert len(view.net.layers) == (2 if variant == "hidden_relu" else 1)
    assert torch.equal(view.directions, model.W.transpose(1, 2))
    assert hook([TMS.replace(tms_variant="linear")])[1] is None


@pytest.mark.parametrize("arch", ["relu_l1", "jumprelu"])
def test_sae_hook_is_the_encoder(arch):
    cfgs = [sae_config(sae_arch=arch), sae_config(sae_arch=arch, seed=1)]
    model, view = hook(cfgs)
    with torch.no_grad():  # move off the init (W_enc = W_dec^T, zero biases) so every term shows
        model.b_dec.add_(0.1)
        model.b_enc.sub_(0.05)
        model.W_enc.mul_(1.3)
    view = family_hook(get_family("sae"), "relu_layers")(model.state_tensors(), cfgs)
    x, _ = view.draw(64)
    with torch.no_grad():
        f, x_hat = model.reconstruct(x)
    assert torch.allclose(outputs(view.net, x), x_hat, atol=1e-5)
    assert torch.equal(spline_codes(view.net, x), f != 0)
    assert torch.equal(view.directions, model.truth)
    assert hook([sae_config(sae_arch="topk", l1=0.0)])[1] is None


def test_a_family_without_relu_has_no_lens():
    quadratic = get_family("quadratic")
    assert family_hook(quadratic, "relu_layers")({}, []) is None
    assert not hasattr(quadratic, "relu_layers")


@pytest.fixture(scope="module")
def smoke_lr1(tmp_path_factory):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = preset("LR1", scale="smoke").base.replace(steps=64, checkpoint_every=32)
        out = tmp_path_factory.mktemp("runs") / "lr1"
        run_sweep(SweepConfig(name="lr1", base=base, grid={"lr": [0.003, 0.03]}, seeds=2), out, progress=False)
    finally:
        torch.set_num_threads(old)
    return load(out)


def test_lens_table_has_a_row_per_instance_and_step(smoke_lr1):
    assert has_lens(smoke_lr1)
    table = lens_table(smoke_lr1, samples=512)
    steps = smoke_lr1.checkpoint_steps("r0000")
    assert len(steps) > 1 and len(table) == 4 * len(steps)
    assert set(table["run_id"]) == {"r0000", "r0001", "r0002", "r0003"}
    assert {"lr", "seed", "status", "code_purity", "neuron_purity", "ray_codes", "density_ratio", "validity_upper",
            "between_profile_0", "within_profile_9"} <= set(table.columns)
    final = lens_table(smoke_lr1, final_only=True, samples=512)
    assert (final["step"] == steps[-1]).all() and len(final) == 4
    last = table[table["step"] == steps[-1]].reset_index(drop=True)
    assert torch.allclose(torch.tensor(last["code_purity"].to_numpy()), torch.tensor(final["code_purity"].to_numpy()),
                          equal_nan=True)
    view = slice_view(smoke_lr1, "r0001", features=(0, 1), resolution=31, samples=512)
    assert view["ids"].shape == (31, 31) and view["lines"].shape[1] == 3 and view["arrows"].shape[1] == 2
    assert view["in_plane"][0] == pytest.approx(1.0) and view["in_plane"][1] == pytest.approx(1.0)


def test_a_folder_of_models_without_relu_has_no_lens(tmp_path):
    base = preset("LR1", scale="smoke").base.replace(steps=16, nonlinearity="gelu")
    res = run_sweep(SweepConfig(name="gelu", base=base), tmp_path / "gelu", progress=False)
    assert not has_lens(res)
    assert lens_table(res, samples=64).empty
    assert slice_view(res, "r0000", samples=64) is None
