"""The polytope lens, its geometry (Black, Sharkey et al. 2022; docs/papers.md §6): a network of ReLU layers cuts
the space it reads into convex polytopes, on each of which it is one affine map; a point's polytope is named by its
*spline code*, which units are on. Torch, batched over the leading ``instances`` axis, no coupling between instances.

A :class:`ReluNet` is what a family's ``relu_layers`` hook hands over (``families/base.py``): ReLU layers that read
the ``hidden`` space (EM's embedding x = E v, TMS's hidden layer h = W x, an SAE's input), each an affine map of
the previous layer's activations, then an affine readout (or none: the last layer's activations are the output).
A layer may carry a threshold per unit (JumpReLU: a unit is on where its pre-activation exceeds it, and then passes
the pre-activation; a ReLU is threshold 0). Everything here is exact: along a straight path every pre-activation of
the first layer is affine in the path's parameter, so its zero crossings have a closed form; within each piece
between them the next layer's pre-activations are affine too, and so on (no sampling of the path).

* :func:`spline_codes` which units are on, :func:`outputs` the network's output;
* :func:`path_crossings` the exact parameters t in (0, 1) where x(t) = a + t (b - a) crosses a polytope boundary;
* :func:`path_affine` the output's affine map on every piece of a path (for the validity range);
* :func:`code_ids`, :func:`count_codes` distinct codes (polytopes) of a batch of points;
* :func:`slice_codes`, :func:`slice_lines` a 2D slice through the hidden space: the code of every grid point and
  the first layer's boundaries as lines.

The measures against the true features (purity, codes per feature, boundary density, validity range) are in
``metrics/polytope_features.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

#: bits of a spline code packed into one int64 word (52: float64 holds such sums exactly, and they stay positive)
WORD_BITS = 52


@dataclass(frozen=True)
class ReluLayer:
    """One layer: pre = weight @ previous + bias, on where pre > threshold (None: 0, a ReLU), out = pre where on.
    ``weight`` (instances, units, inputs): inputs are the hidden space for the first layer, else the previous
    layer's units."""

    weight: Float[Tensor, "instances units inputs"]
    bias: Float[Tensor, "instances units"] | None = None
    threshold: Float[Tensor, "instances units"] | None = None

    def pre(self, x: Float[Tensor, "instances samples inputs"]) -> Float[Tensor, "instances samples units"]:
        out = torch.bmm(x, self.weight.transpose(1, 2))
        return out if self.bias is None else out.add_(self.bias.unsqueeze(1))

    def on(self, pre: Float[Tensor, "instances samples units"]) -> Bool[Tensor, "instances samples units"]:
        return pre > 0 if self.threshold is None else pre > self.threshold.unsqueeze(1)

    def level(self) -> Float[Tensor, "instances units"] | float:
        """Where a unit switches: its threshold (0 for a ReLU)."""
        return 0.0 if self.threshold is None else self.threshold


@dataclass(frozen=True)
class ReluNet:
    """ReLU layers reading the hidden space, then ``readout`` (weight (instances, outputs, units), bias or None);
    no readout weight: the output is the last layer's activations (TMS's ReLU output)."""

    layers: tuple[ReluLayer, ...]
    readout_weight: Float[Tensor, "instances outputs units"] | None = None
    readout_bias: Float[Tensor, "instances outputs"] | None = None

    @property
    def n_instances(self) -> int:
        return self.layers[0].weight.shape[0]

    @property
    def width(self) -> int:
        """The hidden space's dimension."""
        return self.layers[0].weight.shape[2]

    def units(self) -> int:
        """The units of all layers (the length of a spline code)."""
        return sum(layer.weight.shape[1] for layer in self.layers)

    def select(self, index: slice | Tensor) -> ReluNet:
        """The instances ``index`` of the instance axis (the lens works through large batches in slices)."""
        def pick(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[index]

        layers = tuple(ReluLayer(pick(ly.weight), pick(ly.bias), pick(ly.threshold)) for ly in self.layers)
        return replace(self, layers=layers, readout_weight=pick(self.readout_weight),
                       readout_bias=pick(self.readout_bias))

    def to(self, dtype: torch.dtype) -> ReluNet:
        def cast(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(dtype)

        layers = tuple(ReluLayer(cast(ly.weight), cast(ly.bias), cast(ly.threshold)) for ly in self.layers)
        return replace(self, layers=layers, readout_weight=cast(self.readout_weight),
                       readout_bias=cast(self.readout_bias))

    def readout(self, h: Float[Tensor, "instances samples units"]) -> Float[Tensor, "instances samples outputs"]:
        if self.readout_weight is None:
            return h
        out = torch.bmm(h, self.readout_weight.transpose(1, 2))
        return out if self.readout_bias is None else out.add_(self.readout_bias.unsqueeze(1))


def run(net: ReluNet, x: Float[Tensor, "instances samples hidden"]
        ) -> tuple[list[Bool[Tensor, "instances samples units"]], Float[Tensor, "instances samples outputs"]]:
    """(each layer's on/off pattern, the output) of every point."""
    codes, h = [], x
    for layer in net.layers:
        pre = layer.pre(h)
        on = layer.on(pre)
        codes.append(on)
        h = pre * on
    return codes, net.readout(h)


def spline_codes(net: ReluNet, x: Float[Tensor, "instances samples hidden"]) -> Bool[Tensor, "instances samples units"]:
    """Which units are on at each point, all layers' units side by side: the point's polytope."""
    codes, h = [], x
    for layer in net.layers:
        pre = layer.pre(h)
        on = layer.on(pre)
        codes.append(on)
        h = pre * on
    return torch.cat(codes, dim=-1)


def outputs(net: ReluNet, x: Float[Tensor, "instances samples hidden"]) -> Float[Tensor, "instances samples outputs"]:
    """The network's output at each point."""
    return run(net, x)[1]


def _points(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """x(t) = a + t (b - a) for a (I, P, D), b (I, P, D), t (I, P, ...): (I, P * ..., D)."""
    I, P, D = a.shape
    x = a.view(I, P, *([1] * (t.dim() - 2)), D) + t.unsqueeze(-1) * (b - a).view(I, P, *([1] * (t.dim() - 2)), D)
    return x.reshape(I, -1, D)


def _gated(net: ReluNet, x: Tensor, depth: int, pieces: int) -> Tensor:
    """Layer ``depth``'s input at points grouped in threes (piece start, end, middle; ``pieces`` groups per path
    row): each earlier layer gated by the middle's pattern, so the result is affine along each piece."""
    h = x
    for layer in net.layers[:depth]:
        pre = layer.pre(h)
        grouped = pre.view(pre.shape[0], -1, 3, pre.shape[-1])
        on = layer.on(grouped[:, :, 2])
        h = (grouped * on.unsqueeze(2)).view_as(pre)
    return h


def _piece_ends(knots: Tensor) -> Tensor:
    """(I, P, K-1, 3): each piece's start, end and middle."""
    t0, t1 = knots[..., :-1], knots[..., 1:]
    return torch.stack([t0, t1, (t0 + t1) / 2], dim=-1)


def _sorted_finite(t: Tensor) -> Tensor:
    """Sorted along the last axis, the columns that are inf everywhere dropped."""
    t = t.sort(dim=-1).values
    keep = int(torch.isfinite(t).any(dim=0).any(dim=0).sum()) if t.numel() else 0
    return t[..., :keep]


def path_crossings(net: ReluNet, a: Float[Tensor, "instances paths hidden"], b: Float[Tensor, "instances paths hidden"]
                   ) -> Float[Tensor, "instances paths crossings"]:
    """The parameters t in (0, 1), ascending, where x(t) = a + t (b - a) crosses a boundary of some unit (one entry
    per unit and crossing), padded with inf. Exact: layer by layer, each unit's pre-activation is affine on each
    piece between the earlier layers' crossings, so it crosses its level at t = t0 + (level - pre(t0)) /
    (pre(t1) - pre(t0)) (t1 - t0) when that lies inside the piece. A path that runs along a boundary (pre constant
    at the level) has no crossing there."""
    I, P, _ = a.shape
    if len(net.layers) == 1:  # one piece: each unit's crossing straight from its pre-activations at both ends
        return _one_layer_crossings(net.layers[0], a, b)[0]
    knots = torch.tensor([0.0, 1.0], dtype=a.dtype, device=a.device).expand(I, P, 2)
    found = []
    for depth, layer in enumerate(net.layers):
        ends = _piece_ends(knots)
        pre = layer.pre(_gated(net, _points(a, b, ends), depth, ends.shape[2]))
        pre = pre.view(I, P, ends.shape[2], 3, -1)
        p0, p1 = pre[:, :, :, 0], pre[:, :, :, 1]
        level = layer.level()
        level = level if isinstance(level, float) else level[:, None, None, :]
        s = (level - p0) / (p1 - p0)
        inside = (s > 0) & (s < 1)  # NaN (a piece of length 0, or pre on the level throughout) is never inside
        t0, t1 = ends[..., 0:1], ends[..., 1:2]
        t = torch.where(inside, t0 + s * (t1 - t0), torch.full_like(s, torch.inf))
        if any(earlier.threshold is not None for earlier in net.layers[:depth]):
            # an earlier JumpReLU jumps at a knot, and may carry this unit across its level right there
            flip = (p1[:, :, :-1] > level) != (p0[:, :, 1:] > level)
            at = ends[:, :, :-1, 1:2].expand_as(flip)
            knot = torch.where(flip & (at < 1), at, torch.inf)
            t = torch.cat([t, knot], dim=2)
        t = _sorted_finite(t.reshape(I, P, -1))
        found.append(t)
        if depth + 1 < len(net.layers):  # the next layer's pieces: padding at 1 gives pieces of length 0
            knots = torch.cat([knots, torch.where(torch.isfinite(t), t, torch.ones_like(t))], dim=-1).sort(-1).values
    return _sorted_finite(torch.cat(found, dim=-1))


def path_affine(net: ReluNet, a: Float[Tensor, "instances paths hidden"], b: Float[Tensor, "instances paths hidden"]
                ) -> tuple[Float[Tensor, "instances paths pieces"], Float[Tensor, "instances paths pieces"],
                           Float[Tensor, "instances paths pieces outputs"], Float[Tensor, "instances paths pieces outputs"]]:
    """(t0, t1, slope, intercept) of every piece of the path between consecutive boundary crossings: on [t0, t1]
    the output is slope t + intercept (one affine map per piece, also where a JumpReLU jumps at a boundary).
    Padding gives pieces of length 0 at t = 1 (leave them out: ``t1 > t0``). One layer: the maps follow each other by one unit
    switching at each crossing (a running sum of its readout column); deeper: each piece's ends evaluated."""
    if len(net.layers) == 1:
        return _one_layer_affine(net, a, b)
    I, P, _ = a.shape
    crossings = path_crossings(net, a, b)
    zero = torch.zeros(I, P, 1, dtype=a.dtype, device=a.device)
    knots = torch.cat([zero, torch.where(torch.isfinite(crossings), crossings, 1.0), zero + 1], dim=-1)
    ends = _piece_ends(knots)
    K = ends.shape[2]
    out = net.readout(_gated(net, _points(a, b, ends), len(net.layers), K)).view(I, P, K, 3, -1)
    t0, t1 = ends[..., 0], ends[..., 1]
    length = (t1 - t0).unsqueeze(-1)
    slope = torch.where(length > 0, (out[:, :, :, 1] - out[:, :, :, 0]) / length.clamp(min=1e-300), 0.0)
    return t0, t1, slope, out[:, :, :, 0] - slope * t0.unsqueeze(-1)


def _one_layer_crossings(layer: ReluLayer, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(sorted crossings padded with inf, the unit of each, pre(a), pre(b) - pre(a), the level) of one layer."""
    pa = layer.pre(a)  # (I, P, U): pre(t) = pa + t w
    w = layer.pre(b).sub_(pa)
    level = layer.level()
    level = level if isinstance(level, float) else level.unsqueeze(1)
    s = (level - pa) / w
    s = torch.where((s > 0) & (s < 1), s, torch.inf)
    s, unit = s.sort(dim=-1)
    C = int(torch.isfinite(s).any(dim=0).any(dim=0).sum())
    return s[..., :C], unit[..., :C], pa, w, level


def _running_sum(d: Tensor, start: Tensor) -> Tensor:
    """start, start + d[:, :, 0], start + d[:, :, 0] + d[:, :, 1], ... along axis 2 (a loop: several times faster
    than cumsum over a middle axis at these sizes)."""
    out = torch.empty(d.shape[0], d.shape[1], d.shape[2] + 1, d.shape[3], dtype=d.dtype, device=d.device)
    out[:, :, 0] = start
    for k in range(d.shape[2]):
        torch.add(out[:, :, k], d[:, :, k], out=out[:, :, k + 1])
    return out


def _one_layer_affine(net: ReluNet, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    s, unit, pa, w, level = _one_layer_crossings(net.layers[0], a, b)
    C = s.shape[-1]
    crossed = torch.isfinite(s)
    on = (pa > level) | ((pa == level) & (w > 0))  # just after t = 0
    I, P, U = pa.shape
    R = net.readout_weight.transpose(1, 2) if net.readout_weight is not None else (
        torch.eye(U, dtype=a.dtype, device=a.device).expand(I, U, U))
    slope0 = torch.bmm((on * w), R).unsqueeze(2)  # (I, P, 1, O)
    icept0 = torch.bmm((on * pa), R)
    if net.readout_bias is not None:
        icept0 = icept0 + net.readout_bias.unsqueeze(1)
    # a unit switching on adds its column times its own pre-activation's slope and intercept, switching off removes
    # them: the sign is the direction of the crossing, sign(w)
    sign = torch.gather(w, -1, unit).sign() * crossed
    cols = torch.gather(R.unsqueeze(1).expand(I, P, U, R.shape[-1]), 2,
                        unit.unsqueeze(-1).expand(I, P, C, R.shape[-1]))  # (I, P, C, O)
    d_slope = cols * (sign * torch.gather(w, -1, unit)).unsqueeze(-1)
    d_icept = cols * (sign * torch.gather(pa, -1, unit)).unsqueeze(-1)
    slope = _running_sum(d_slope, slope0[:, :, 0])
    icept = _running_sum(d_icept, icept0)
    zero = torch.zeros(I, P, 1, dtype=a.dtype, device=a.device)
    knots = torch.cat([zero, torch.where(crossed, s, 1.0), zero + 1], dim=-1)
    return knots[..., :-1], knots[..., 1:], slope, icept


def code_ids(codes: Bool[Tensor, "instances samples units"]) -> Int[Tensor, "instances samples"]:
    """An id per point: equal within an instance exactly when the codes are equal; the ids of different instances
    never meet, and each instance's ids are consecutive (instance 0's first)."""
    I, S, U = codes.shape
    words = max(1, -(-U // WORD_BITS))
    # each word a sum of distinct powers of two below 2^52: exact in float64, so one matrix product packs them
    unit = torch.arange(U, device=codes.device)
    powers = torch.zeros(U, words, dtype=torch.float64, device=codes.device)
    powers[unit, unit // WORD_BITS] = torch.exp2((unit % WORD_BITS).double())
    packed = (codes.reshape(I * S, U).double() @ powers).long().view(I, S, words)
    inst = torch.arange(I, device=codes.device).view(I, 1, 1).expand(I, S, 1)
    rows = torch.cat([inst, packed], dim=-1).view(I * S, words + 1)
    # lexicographic order by stable sorts, last word first (torch.unique(dim=0) is many times slower)
    order = torch.arange(I * S, device=codes.device)
    for w in range(words, -1, -1):
        order = order[rows[order, w].argsort(stable=True)]
    ranked = rows[order]
    new = torch.ones(I * S, dtype=torch.int64, device=codes.device)
    new[1:] = (ranked[1:] != ranked[:-1]).any(-1)
    ids = torch.empty_like(order)
    ids[order] = new.cumsum(0) - 1
    return ids.view(I, S)


def ids_per_instance(ids: Int[Tensor, "instances samples"]) -> Int[Tensor, "instances samples"]:
    """``code_ids`` renumbered from 0 within each instance (for colouring a slice)."""
    return ids - ids.amin(dim=1, keepdim=True)


def count_codes(codes: Bool[Tensor, "instances samples units"],
                mask: Bool[Tensor, "instances samples"] | None = None) -> Int[Tensor, " instances"]:
    """The number of distinct codes (polytopes) among each instance's points (those in ``mask``)."""
    ids = code_ids(codes)
    I, S = ids.shape
    inst = torch.arange(I, device=ids.device).view(I, 1).expand(I, S)
    owner = torch.zeros(I * S, dtype=torch.int64, device=ids.device)
    owner[ids.reshape(-1)] = inst.reshape(-1)
    seen = torch.zeros(I * S, dtype=torch.bool, device=ids.device)
    seen[ids[mask] if mask is not None else ids.reshape(-1)] = True
    return torch.bincount(owner[seen], minlength=I)


def plane_basis(u: Float[Tensor, "instances hidden"], v: Float[Tensor, "instances hidden"]
                ) -> Float[Tensor, "instances 2 hidden"]:
    """An orthonormal basis of span(u, v) (Gram-Schmidt, u's direction first)."""
    e1 = u / u.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    w = v - (v * e1).sum(-1, keepdim=True) * e1
    e2 = w / w.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return torch.stack([e1, e2], dim=1)


def slice_grid(basis: Float[Tensor, "instances 2 hidden"], extent: Float[Tensor, " instances"], resolution: int
               ) -> tuple[Float[Tensor, " grid"], Float[Tensor, "instances samples hidden"]]:
    """(coordinates of one axis in units of ``extent``, -1 .. 1; the points c1 e1 + c2 e2 of the grid, rows c2,
    columns c1, resolution^2 per instance)."""
    c = torch.linspace(-1, 1, resolution, dtype=basis.dtype, device=basis.device)
    c2, c1 = torch.meshgrid(c, c, indexing="ij")
    coords = torch.stack([c1.reshape(-1), c2.reshape(-1)], dim=-1)  # (samples, 2)
    pts = torch.einsum("sk,ikd->isd", coords, basis) * extent.view(-1, 1, 1)
    return c, pts


def slice_codes(net: ReluNet, basis: Float[Tensor, "instances 2 hidden"], extent: Float[Tensor, " instances"],
                resolution: int = 201) -> Int[Tensor, "instances grid grid"]:
    """The polytope of every point of a resolution x resolution grid over [-extent, extent]^2 in the plane of
    ``basis`` (through the origin): ids from 0 per instance, equal exactly where the spline codes are."""
    _, pts = slice_grid(basis, extent, resolution)
    ids = ids_per_instance(code_ids(spline_codes(net, pts)))
    return ids.view(-1, resolution, resolution)


def slice_lines(net: ReluNet, basis: Float[Tensor, "instances 2 hidden"]) -> Float[Tensor, "instances units 3"]:
    """The first layer's boundaries in the plane of ``basis``: unit u's line p c1 + q c2 = r (rows (p, q, r)) in
    the plane's coordinates c1 e1 + c2 e2 (deeper layers' boundaries bend at the first layer's: their regions show
    in ``slice_codes``)."""
    layer = net.layers[0]
    pq = torch.einsum("iud,ikd->iuk", layer.weight, basis)
    bias = torch.zeros(pq.shape[:2], dtype=pq.dtype, device=pq.device) if layer.bias is None else layer.bias
    r = layer.level() - bias
    return torch.cat([pq, r.unsqueeze(-1)], dim=-1)
