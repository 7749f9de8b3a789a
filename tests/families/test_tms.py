"""The TMS family: its geometry metrics on known arrangements, forward pass and loss, init, config, and
batched == separate."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_group_equals_alone

from toymodels.config import ConfigError, ExperimentConfig
from toymodels.engine.data import importance
from toymodels.families import get_family
from toymodels.families.quadratic import (
    QuadraticModel,
)
from toymodels.families.tms import TMSModel
from toymodels.metrics import (
    capacity,
    dims_per_feature,
    feature_dimensionality,
    superposition,
)
from toymodels.running.runner import evaluate


def unit(angles_deg: list[float]) -> torch.Tensor:
    a = torch.tensor(angles_deg, dtype=torch.float64) * math.pi / 180
    return torch.stack([a.cos(), a.sin()])  # (2, n)


# ---------------------------------------------------------------------------------------------- capacity / D_i
def test_capacity_is_tms_feature_dimensionality_on_random_W():
    assert feature_dimensionality is capacity  # one function, two names
    g = torch.Generator().manual_seed(0)
    W = torch.randn(4, 5, 12, generator=g, dtype=torch.float64)
    # TMS notebook's compute_dimensionality: ||W_i||^2 / sum_j (W_i_hat . W_j)^2, written out independently.
    norms = W.norm(dim=1, keepdim=True)
    W_hat = W / norms
    interference = torch.einsum("Idi,Idj->Iij", W_hat, W).pow(2).sum(-1)
    D_tms = norms.squeeze(1).pow(2) / interference
    # P&C capacity (W_i.W_i)^2 / sum_j (W_i.W_j)^2, also written out.
    G = torch.einsum("Idi,Idj->Iij", W, W)
    C_pc = torch.diagonal(G, dim1=1, dim2=2).pow(2) / G.pow(2).sum(-1)
    torch.testing.assert_close(capacity(W), D_tms)
    torch.testing.assert_close(feature_dimensionality(W), C_pc)


@pytest.mark.parametrize("m,n", [(1, 3), (2, 5), (5, 20), (8, 8), (20, 60), (6, 4)])
def test_sum_of_capacities_at_most_m_and_rank(m, n):
    g = torch.Generator().manual_seed(m * 100 + n)
    W = torch.randn(16, m, n, generator=g, dtype=torch.float64)
    W[:8, :, : n // 2] *= 0.01  # uneven norms too
    total = capacity(W).sum(-1)
    assert (total <= min(m, n) + 1e-9).all()
    low_rank = W[:, :1, :].expand(-1, m, -1) * torch.randn(16, m, 1, generator=g, dtype=torch.float64)
    assert (capacity(low_rank).sum(-1) <= 1 + 1e-9).all()  # rank 1


@pytest.mark.parametrize("name,W,expected", [
    ("orthonormal", torch.eye(4, dtype=torch.float64), 1.0),
    ("antipodal pair", torch.tensor([[1.0, -1.0]], dtype=torch.float64), 0.5),
    ("triangle", unit([90, 210, 330]), 2 / 3),
    ("pentagon", unit([0, 72, 144, 216, 288]), 2 / 5),
    ("tetrahedron", torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64).T
     / math.sqrt(3), 3 / 4),
    ("square antiprism (equal-angle frame)", None, 3 / 8),
])
def test_known_geometries(name, W, expected):
    if W is None:
        # the square antiprism at h=1/sqrt(3) is a tight frame (sum of outer products = 8/3 I): D_i = 3/8
        h = 1 / math.sqrt(3)
        r = math.sqrt(1 - h * h)
        W = torch.tensor([[r * math.cos(math.pi / 4 * k), r * math.sin(math.pi / 4 * k), h if k % 2 == 0 else -h]
                          for k in range(8)], dtype=torch.float64).T
    C = capacity(W[None])[0]
    torch.testing.assert_close(C, torch.full_like(C, expected))
    # unit columns: D* = m / n is the same fraction for these tight frames
    torch.testing.assert_close(dims_per_feature(W[None])[0], torch.tensor(expected, dtype=torch.float64))


def test_capacity_of_an_ignored_feature_is_zero_and_antipodal_pair_plus_zero():
    W = torch.tensor([[1.0, -1.0, 0.0]], dtype=torch.float64)
    C = capacity(W[None])[0]
    torch.testing.assert_close(C, torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))


def test_tms_evaluator_on_a_pentagon_with_two_dropped_features():
    W = torch.cat([unit([0, 72, 144, 216, 288]), torch.zeros(2, 2, dtype=torch.float64)], 1)
    cfg = ExperimentConfig.from_flat({"model": "tms", "N": 7, "m": 2})
    out = evaluate([cfg], {"W": W[None], "b": -0.1 * torch.ones(1, 7), "importance": torch.ones(1, 7)})
    assert out["represented_features"].item() == 5
    assert out["dims_per_feature"].item() == pytest.approx(2 / 5)
    assert out["sum_capacity"].item() == pytest.approx(2.0)
    # pentagon: sum_{j != i} cos^2 = 2 cos^2 72 + 2 cos^2 144 = 1.5
    assert out["superposition"].item() == pytest.approx(1.5)
    assert superposition(W[None])[0, 5:].abs().max() == 0
    assert out["mean_bias"].item() == pytest.approx(-0.1)


# ------------------------------------------------------------------------------------------------------- TMS
def test_tms_forward_and_loss_match_the_formulas():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(2, 3, 6, generator=g)
    b = torch.randn(2, 6, generator=g)
    imp = torch.stack([importance(6, 0.9), importance(6, 0.7)]).float()
    x = torch.rand(2, 5, 6, generator=g)
    for variant in ("relu", "linear", "hidden_relu"):
        model = TMSModel(W.clone(), b.clone(), imp, variant)
        out, h = model(x)
        hid = torch.einsum("ibn,imn->ibm", x, W)
        if variant == "hidden_relu":
            hid = hid.relu()
        ref = torch.einsum("ibm,imn->ibn", hid, W) + b[:, None]
        if variant != "linear":
            ref = ref.relu()
        torch.testing.assert_close(out, ref)
        loss, l1 = model.losses(x, "decoder", with_l1=True)
        torch.testing.assert_close(loss, (imp[:, None] * (x - ref) ** 2).mean(dim=(1, 2)))
        torch.testing.assert_close(l1, hid.abs().sum(-1).mean(-1))


def test_tms_init_is_per_instance_xavier_and_zero_bias():
    cfgs = [ExperimentConfig.from_flat({"model": "tms", "N": 200, "m": 20, "seed": s}) for s in range(3)]
    model = TMSModel.init(cfgs)
    assert model.W.shape == (3, 20, 200) and torch.equal(model.b, torch.zeros(3, 200))
    assert model.W.std().item() == pytest.approx(math.sqrt(2 / 220), rel=0.05)
    alone = TMSModel.init(cfgs[1:2])
    assert torch.equal(alone.W[0], model.W[1])


def test_tms_init_at_a_set_std_per_instance():
    """``init_std`` (the notebook's scale, families.tms.presets.notebook_init_std) replaces the per-matrix xavier std;
    an instance still starts the same in any group. Without the field set the family keeps xavier."""
    from types import SimpleNamespace

    from toymodels.families.tms import init_std

    assert init_std(SimpleNamespace(tms=SimpleNamespace(init_std=0.0213))) == 0.0213
    cfgs = [ExperimentConfig.from_flat({"model": "tms", "N": 200, "m": 20, "seed": s, "init_std": 0.0213})
            for s in range(3)]
    model = TMSModel.init(cfgs)
    assert model.W.std().item() == pytest.approx(0.0213, rel=0.05)
    assert torch.equal(TMSModel.init(cfgs[2:]).W[0], model.W[2])
    assert ExperimentConfig.from_flat({"model": "tms"}).tms.init_std is None


def test_config_fields_and_validation():
    cfg = ExperimentConfig.from_flat({"model": "tms", "tms_variant": "hidden_relu", "importance_ratio": "1/4"})
    assert cfg.flat()["importance_ratio"] == 0.25
    assert "tms_variant" in cfg.group_fields()  # the family's section adds it to the group key
    with pytest.raises(ConfigError, match="tms_variant"):
        ExperimentConfig.from_flat({"tms_variant": "gelu"})
    with pytest.raises(ConfigError, match="kurtosis"):
        ExperimentConfig.from_flat({"model": "quadratic", "kurtosis": 2, "input_kind": "gaussian"})
    with pytest.raises(ConfigError, match="kurtosis"):
        ExperimentConfig.from_flat({"kurtosis": 0.5})
    with pytest.raises(ConfigError, match="task"):
        ExperimentConfig.from_flat({"model": "quadratic", "task": "abs"})
    for name, cls in (("tms", TMSModel), ("quadratic", QuadraticModel)):
        built = get_family(name).build([ExperimentConfig.from_flat({"model": name, "N": 5, "m": 2})])
        assert isinstance(built, cls) and built.n_instances == 1
    assert importance(3, 0.5, 2.0).tolist() == [1.0, 0.5, 0.5]


# --------------------------------------------------------------------------------------- batched == separate
@pytest.mark.parametrize("variant", ["relu", "hidden_relu"])
def test_tms_instances_train_the_same_in_a_group_as_alone(variant):
    base = dict(model="tms", tms_variant=variant, N=6, m=2, optimizer="adamw", schedule="constant",
                batch_size=64, steps=48)
    grid = [dict(lr=1e-3, eps=1.0, seed=0, importance_decay=0.9), dict(lr=3e-3, eps=0.05, seed=1),
            dict(lr=1e-2, eps=0.3, seed=2, importance_ratio=3.0), dict(lr=2e-3, eps=0.01, seed=3)]
    assert_group_equals_alone([ExperimentConfig.from_flat({**base, **g}) for g in grid])
