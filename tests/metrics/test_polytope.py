"""The polytope lens on hand-built networks whose polytopes are known (metrics/polytope.py and
metrics/polytope_features.py; docs/papers.md §6): lines in the plane, the identity ReLU, a pentagon, two layers,
a JumpReLU; and the exact crossings and validity ranges against dense sampling of random networks."""

from __future__ import annotations

import math

import pytest
import torch

from toymodels.metrics.polytope import (
    ReluLayer,
    ReluNet,
    code_ids,
    count_codes,
    outputs,
    path_affine,
    path_crossings,
    plane_basis,
    slice_codes,
    slice_lines,
    spline_codes,
)
from toymodels.metrics.polytope_features import (
    HORIZON,
    boundary_density,
    feature_magnitudes,
    feature_pairs,
    lens_measures,
    lone_feature_scores,
    magnitude_quantiles,
    partition_scores,
    ray_codes,
    validity_range,
)

D64 = torch.float64


def net_of(W, b=None, threshold=None, readout=None, readout_bias=None) -> ReluNet:
    """A one-layer net of one instance from plain lists."""
    t = (lambda v: None if v is None else torch.tensor(v, dtype=D64).unsqueeze(0))
    return ReluNet((ReluLayer(t(W), t(b), t(threshold)),), t(readout), t(readout_bias))


def two_lines() -> ReluNet:
    """Unit 0 on where x > 0.5, unit 1 on where y > -0.25: four quadrants around (0.5, -0.25)."""
    return net_of([[1.0, 0.0], [0.0, 1.0]], [-0.5, 0.25])


def random_net(layers: int, width: int = 3, units: int = 6, outs: int = 4, seed: int = 0, jump: bool = False):
    g = torch.Generator().manual_seed(seed)
    built, fan = [], width
    for _ in range(layers):
        W = torch.randn(2, units, fan, generator=g, dtype=D64)
        b = torch.randn(2, units, generator=g, dtype=D64) * 0.5
        thr = torch.rand(2, units, generator=g, dtype=D64) * 0.3 if jump else None
        built.append(ReluLayer(W, b, thr))
        fan = units
    return ReluNet(tuple(built), torch.randn(2, outs, units, generator=g, dtype=D64),
                   torch.randn(2, outs, generator=g, dtype=D64))


def pts(*xy) -> torch.Tensor:
    return torch.tensor(xy, dtype=D64).unsqueeze(0)


# ---- geometry -----------------------------------------------------------------------------------------------------
def test_codes_name_the_quadrant_of_two_lines():
    codes = spline_codes(two_lines(), pts([0, 0], [1, 0], [0, -1], [1, -1], [2, -3]))
    assert codes[0].tolist() == [[False, True], [True, True], [False, False], [True, False], [True, False]]
    ids = code_ids(codes)[0]
    assert ids[3] == ids[4] and len(set(ids.tolist())) == 4
    assert count_codes(codes).tolist() == [4]
    assert count_codes(codes, torch.tensor([[True, True, False, False, False]])).tolist() == [2]


def test_crossings_of_two_lines_are_where_the_path_meets_them():
    net = two_lines()
    a, b = pts([0, -1], [0, 0], [-1, -0.25]), pts([1, 1], [0, 0.1], [1, -0.25])
    t = path_crossings(net, a, b)[0]
    # x(t) = (t, -1 + 2t): x = 0.5 at t = 0.5, y = -0.25 at t = 0.375; the second path meets neither; the third
    # runs along y = -0.25 (no crossing there) and meets x = 0.5 at t = 0.75
    assert t[0].tolist() == pytest.approx([0.375, 0.5])
    assert not torch.isfinite(t[1]).any()
    assert t[2][torch.isfinite(t[2])].tolist() == pytest.approx([0.75])


def test_identity_relu_is_the_orthants():
    net = net_of([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    corners = pts([1, 1], [-1, 1], [-1, -1], [1, -1])
    assert count_codes(spline_codes(net, corners)).tolist() == [4]
    t = path_crossings(net, pts([-1, -2]), pts([1, 2]))[0, 0]
    assert t.tolist() == pytest.approx([0.5, 0.5])  # both axes at the origin
    assert torch.allclose(outputs(net, corners)[0], corners[0].clamp(min=0))


def test_two_layers_cross_where_the_bent_boundary_is():
    # layer 1: ReLU(x), ReLU(y); layer 2: on where relu(x) + relu(y) > 1
    net = ReluNet((ReluLayer(torch.eye(2, dtype=D64)[None]),
                   ReluLayer(torch.ones(1, 1, 2, dtype=D64), torch.tensor([[-1.0]], dtype=D64))))
    t = path_crossings(net, pts([-1, -1]), pts([2, 2]))[0, 0]
    assert t.tolist() == pytest.approx([1 / 3, 1 / 3, 0.5])  # both axes, then x + y = 1 at (0.5, 0.5)
    # from (-1, 0.5) to (2, 0.5): x crosses 0 at t = 1/3, then relu(x) + 0.5 = 1 at x = 0.5, t = 0.5
    t = path_crossings(net, pts([-1, 0.5]), pts([2, 0.5]))[0, 0]
    assert t.tolist() == pytest.approx([1 / 3, 0.5])


@pytest.mark.parametrize("layers,jump", [(1, False), (2, False), (3, False), (1, True), (2, True)])
def test_crossings_and_pieces_match_dense_sampling(layers, jump):
    net = random_net(layers, jump=jump, seed=layers + 10 * jump)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 5, 3, generator=g, dtype=D64) * 2, torch.randn(2, 5, 3, generator=g, dtype=D64) * 2
    t = path_crossings(net, a, b)
    s = torch.linspace(0, 1, 20001, dtype=D64)
    for i in range(2):
        x = a[i][:, None] + s[None, :, None] * (b - a)[i][:, None]
        codes = spline_codes(net.select(slice(i, i + 1)), x.reshape(1, -1, 3)).view(5, len(s), -1)
        flips = (codes[:, 1:] != codes[:, :-1]).sum((1, 2))
        assert torch.isfinite(t[i]).sum(-1).tolist() == flips.tolist()
    t0, t1, slope, icept = path_affine(net, a, b)
    mid = (t0 + t1) / 2
    real = t1 > t0
    x = a.unsqueeze(2) + mid.unsqueeze(-1) * (b - a).unsqueeze(2)
    want = outputs(net, x.flatten(1, 2)).view_as(slope)
    got = slope * mid.unsqueeze(-1) + icept
    assert torch.allclose(got[real], want[real], atol=1e-9)


def test_pentagon_slice_has_the_pentagon_s_regions_and_lines():
    """TMS's ReLU output with five features at 72 degrees in 2D and bias -0.3: x' = ReLU(W^T h + b)."""
    angles = torch.arange(5, dtype=D64) * 2 * math.pi / 5
    W = torch.stack([angles.cos(), angles.sin()], dim=-1)  # (features, hidden)
    net = ReluNet((ReluLayer(W[None], torch.full((1, 5), -0.3, dtype=D64)),))
    basis = plane_basis(W[None, 0], W[None, 1])
    ids = slice_codes(net, basis, torch.tensor([1.0], dtype=D64), resolution=301)
    # five lines in general position cut the plane into 1 + 5 + C(5, 2) = 16 regions, all of whose corners
    # (0.3 / cos 36 and 0.3 / cos 72 from the origin) lie in the slice: the inner pentagon is the one with no unit on
    assert int(ids.max()) + 1 == 16
    lines = slice_lines(net, basis)[0]
    assert lines.shape == (5, 3)
    assert torch.allclose(lines[:, :2].norm(dim=-1), torch.ones(5, dtype=D64))  # unit normals: rotations of W_i
    assert torch.allclose(lines[:, 2], torch.full((5,), 0.3, dtype=D64))  # each line 0.3 from the origin
    centre = ids[0, 150, 150]
    assert (ids[0, 145:156, 145:156] == centre).all()


# ---- measures against the features ---------------------------------------------------------------------------------
def test_partition_scores_count_majorities():
    groups = torch.tensor([[0, 0, 1, 1, 1], [5, 6, 7, 8, 9]])
    labels = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 1, 1, 1]])
    mask = torch.ones(2, 5, dtype=torch.bool)
    purity, completeness = partition_scores(groups, labels, mask, 2)
    assert purity.tolist() == pytest.approx([4 / 5, 1.0])  # group 1 holds 1 of label 0; singletons are pure
    assert completeness.tolist() == pytest.approx([4 / 5, 2 / 5])  # label 0 split 2:1; singletons split all
    purity, _ = partition_scores(groups, labels, torch.tensor([[True] * 3 + [False] * 2] * 2), 2)
    assert purity.tolist() == pytest.approx([1.0, 1.0])


def test_lone_features_separate_in_the_identity_and_merge_in_a_shared_unit():
    amps = torch.linspace(0.1, 1, 8, dtype=D64).expand(1, 2, 8)
    d = torch.eye(2, dtype=D64)[None]
    ident = lone_feature_scores(net_of([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0]), d, amps)
    for name in ("code_purity", "code_completeness", "neuron_purity", "neuron_completeness"):
        assert ident[name].tolist() == pytest.approx([1.0])
    assert ident["origin_share"].tolist() == [0.0] and ident["lone_codes"].tolist() == [2.0]
    shared = lone_feature_scores(net_of([[1.0, 1.0]], [0.0]), d, amps)
    assert shared["code_purity"].tolist() == pytest.approx([0.5])
    assert shared["code_completeness"].tolist() == pytest.approx([1.0])
    # a threshold at 0.5 leaves the small amplitudes in the origin's polytope: they do not count
    thresh = lone_feature_scores(net_of([[1.0, 0.0], [0.0, 1.0]], [-0.5, -0.5]), d, amps)
    assert thresh["origin_share"].tolist() == pytest.approx([(amps[0, 0] <= 0.5).double().mean().item()])


def test_ray_codes_count_the_thresholds_below_the_top():
    net = net_of([[1.0, 0.0]] * 3 + [[0.0, 1.0]], [-0.2, -0.5, -0.9, -2.0])
    codes = ray_codes(net, torch.eye(2, dtype=D64)[None], torch.ones(1, 2, dtype=D64))
    assert codes.tolist() == [[4.0, 1.0]]  # feature 0 passes three thresholds; feature 1's is beyond its top


def test_boundary_density_sees_the_boundary_between_two_features():
    net = net_of([[1.0, -1.0]], [0.0])  # on where x > y: the line between the two features
    d = torch.eye(2, dtype=D64)[None]
    one = torch.ones(1, 2, dtype=D64)
    out = boundary_density(net, d, one, 0.2 * one, 0.9 * one, feature_pairs(2), bins=10)
    assert out["between_density"].tolist() == pytest.approx([1 / math.sqrt(2)])  # one crossing on a path of sqrt 2
    assert out["within_density"].tolist() == [0.0]
    # the crossing is at the middle of the path e_0 -> e_1 (t = 0.5: bin 5 of 10)
    assert out["between_profile"][0].tolist() == [0.0] * 5 + [1.0] + [0.0] * 4


def test_feature_pairs_are_all_pairs_or_spread_partners():
    assert feature_pairs(4).tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    many = feature_pairs(100, per_feature=8)
    assert len(many) == 800 and (many[:, 0] != many[:, 1]).all()
    assert feature_pairs(1).shape == (0, 2)


def test_validity_range_of_a_known_ray():
    # out = (relu(x - 0.5), relu(x + y - 1.5)): along x the map at t = 1 is (t - 0.5, 0); below 0.5 the output is
    # 0 (deviation 100%), and from t = 1.5 the second unit adds t - 1.5, 1% of |t - 0.5| at t = 1.495 / 0.99
    net = net_of([[1.0, 0.0], [1.0, 1.0]], [-0.5, -1.5], readout=[[1.0, 0.0], [0.0, 1.0]])
    lower, upper = validity_range(net, torch.eye(2, dtype=D64)[None], torch.ones(1, 2, dtype=D64))
    assert lower[0, 0].item() == pytest.approx(0.5) and upper[0, 0].item() == pytest.approx(1.495 / 0.99)
    # along y the output is 0 up to 1.5 (the map at t = 1 is zero) and then deviates at once
    assert lower[0, 1].item() == 0.0 and upper[0, 1].item() == pytest.approx(1.5)
    # an affine ray is valid all the way to the horizon
    ident = net_of([[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0])
    lower, upper = validity_range(ident, torch.eye(2, dtype=D64)[None], torch.ones(1, 2, dtype=D64))
    assert lower.tolist() == [[0.0, 0.0]] and upper.tolist() == [[HORIZON, HORIZON]]


@pytest.mark.parametrize("layers", [1, 2])
def test_validity_range_matches_dense_sampling(layers):
    net = random_net(layers, width=3, units=8, seed=3 + layers)
    g = torch.Generator().manual_seed(2)
    d = torch.randn(2, 4, 3, generator=g, dtype=D64)
    top = torch.full((2, 4), 0.7, dtype=D64)
    lower, upper = validity_range(net, d, top, horizon=4.0)
    s = torch.linspace(0, 4 * 0.7, 200001, dtype=D64)
    for i in range(2):
        one = net.select(slice(i, i + 1))
        for p in range(4):
            y = outputs(one, (s[:, None] * d[i, p])[None])[0]
            T = torch.tensor([0.7 - 1e-7, 0.7, 0.7 + 1e-7], dtype=D64)
            yT = outputs(one, (T[:, None] * d[i, p])[None])[0]
            g_ = yT[1] + (s - 0.7)[:, None] * (yT[2] - yT[0]) / 2e-7
            floor = 1e-6 * y.norm(dim=-1).max()
            bad = (y - g_).norm(dim=-1) > 0.01 * (g_.norm(dim=-1) ** 2 + floor**2).sqrt()
            up = s[bad & (s > 0.7)].min().item() if (bad & (s > 0.7)).any() else 4 * 0.7
            lo = s[bad & (s < 0.7)].max().item() if (bad & (s < 0.7)).any() else 0.0
            assert upper[i, p].item() == pytest.approx(up, abs=2e-4)
            assert lower[i, p].item() == pytest.approx(lo, abs=2e-4)


def test_magnitudes_are_quantiles_of_the_non_zero_coefficients():
    g = torch.Generator().manual_seed(0)
    c = torch.rand(1, 20000, 3, generator=g)
    c[..., 1] *= 2
    c[:, 10:, 2] = 0  # feature 2 fired 10 times: it gets the pooled quantiles
    q = torch.tensor([0.5, 0.99])
    out = magnitude_quantiles(c, q)
    assert out[0, 0].tolist() == pytest.approx([0.5, 0.99], abs=0.02)
    assert out[0, 1].tolist() == pytest.approx([1.0, 1.98], abs=0.04)
    pooled = torch.nanquantile(torch.cat([c[0, :, 0], c[0, :, 1], c[0, :10, 2]]).double(), q.double())
    assert out[0, 2].tolist() == pytest.approx(pooled.tolist(), abs=1e-6)
    m = feature_magnitudes(torch.cat([c, -c]))
    assert m["signed"].tolist() == [False, True] and m["top"].shape == (2, 3)
    assert feature_magnitudes(c - 0.5)["signed"].tolist() == [True]


def test_lens_measures_are_per_instance():
    net = random_net(1, width=3, units=6, outs=3, seed=7)
    g = torch.Generator().manual_seed(3)
    d = torch.randn(2, 4, 3, generator=g, dtype=D64)
    coef = torch.rand(2, 512, 4, generator=g, dtype=D64) * (torch.rand(2, 512, 4, generator=g) < 0.3)
    inputs = torch.einsum("isf,ifd->isd", coef, d)
    mags = feature_magnitudes(coef)
    both = lens_measures(net, d, inputs, mags)
    alone = lens_measures(net.select(slice(1, 2)), d[1:], inputs[1:], {k: v[1:] for k, v in mags.items()})
    for name, value in both.items():
        assert value.shape[0] == 2, name
        assert torch.allclose(value[1:], alone[name], equal_nan=True), name
    assert both["between_profile"].shape == (2, 10)
    assert ((both["code_purity"] >= 0) & (both["code_purity"] <= 1)).all()
