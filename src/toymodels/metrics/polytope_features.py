"""The polytope lens against the true features (docs/papers.md §6.2): the measures toy models can take because they
know their features. Torch, batched over ``instances``; the geometry is ``metrics/polytope.py``.

Inputs: a :class:`~toymodels.metrics.polytope.ReluNet` reading the hidden space, each feature's direction there
(``directions``, one row per feature: where a unit coefficient of the feature lands) and samples of the training
law (``coefficients``: each feature's coefficient in each sample). A feature's *magnitudes* are the quantiles of its
non-zero |coefficient| (the pooled quantiles of all features where it fired fewer than ``MIN_DRAWS`` times). With
signed coefficients (EM's abs task) each feature is two *probes*, +direction and -direction (the EM probe's axis).

* :func:`lone_feature_scores`: code purity and completeness on lone-feature inputs, and the same for the partition
  by most active unit (the neuron baseline);
* :func:`ray_codes`: polytopes along each probe's magnitude ray up to the top of its training magnitudes;
* :func:`boundary_density`: boundaries per unit length on paths between two features and along one;
* :func:`validity_range`: how far down and up a probe's ray the output stays within 1% of the affine map it has at
  the top of the training magnitudes;
* :func:`feature_magnitudes`: what the measures need of the training law;
* :func:`lens_measures`: all of them, one number per instance (the lens table's columns).
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from toymodels.metrics.polytope import (
    ReluNet,
    code_ids,
    count_codes,
    path_affine,
    path_crossings,
    spline_codes,
)

#: lone-feature amplitudes per probe for purity: the quantiles (j + 1/2) / AMPLITUDES of its training magnitudes
AMPLITUDES = 16
#: fewer non-zero draws than this and a feature's magnitudes are the pooled ones
MIN_DRAWS = 16
#: the top of a feature's training magnitudes: this quantile of its non-zero |coefficient|
TOP_QUANTILE = 0.99
#: the validity range: relative deviation from the affine map, and how far up the ray it is looked for (x top)
TOLERANCE, HORIZON = 0.01, 8.0
#: how far up the rays the validity search goes first (x top), before the probes still in range go further
STAGES = (1.25, 2.0, 4.0)
#: paths between features: all pairs up to this many per feature, else this many partners each
PAIRS_PER_FEATURE = 16
#: bins of the boundary positions along a path (the density profile)
PROFILE_BINS = 10
#: numbers of one block of rays' pieces in the validity search (bounds its memory: a few arrays of this many
#: float64, where every unit crosses every ray)
RAY_BUDGET = 2**24


def magnitude_quantiles(coefficients: Float[Tensor, "instances samples features"], q: Float[Tensor, " amplitudes"]
                        ) -> Float[Tensor, "instances features amplitudes"]:
    """Quantiles ``q`` of each feature's non-zero |coefficient| (pooled over features where it has fewer than
    ``MIN_DRAWS``; 1 where no feature ever fired)."""
    a = coefficients.abs().double()
    nan = torch.full_like(a, torch.nan)
    fired = a > 0
    own = torch.nanquantile(torch.where(fired, a, nan).transpose(1, 2), q.double(), dim=-1).permute(1, 2, 0)
    pooled = torch.nanquantile(torch.where(fired, a, nan).flatten(1), q.double(), dim=-1).T.unsqueeze(1)
    out = torch.where((fired.sum(1) < MIN_DRAWS).unsqueeze(-1), pooled, own)
    return torch.nan_to_num(out, nan=1.0).to(coefficients.dtype)


def probes(directions: Float[Tensor, "instances features hidden"], signed: bool) -> Float[Tensor, "instances probes hidden"]:
    """The features' directions, then (signed coefficients) their negatives."""
    return torch.cat([directions, -directions], dim=1) if signed else directions


def activations(net: ReluNet, x: Float[Tensor, "instances samples hidden"]) -> Float[Tensor, "instances samples units"]:
    """Every unit's activation (all layers side by side)."""
    out, h = [], x
    for layer in net.layers:
        pre = layer.pre(h)
        h = pre * layer.on(pre)
        out.append(h)
    return torch.cat(out, dim=-1)


def partition_scores(groups: Int[Tensor, "instances samples"], labels: Int[Tensor, "instances samples"],
                     mask: Bool[Tensor, "instances samples"], n_labels: int
                     ) -> tuple[Float[Tensor, " instances"], Float[Tensor, " instances"]]:
    """(purity, completeness) of a partition of labelled points (``mask``'s), per instance: purity = sum over
    groups of the count of its most common label / points; completeness = sum over labels of the count in its most
    common group / points (NaN without points). ``groups`` must never meet across instances (``code_ids``)."""
    I, S = groups.shape
    inst = torch.arange(I, device=groups.device).view(I, 1).expand(I, S)[mask]
    g, lab = groups[mask], labels[mask]
    pairs, counts = torch.unique(g * n_labels + lab, return_counts=True)
    counts = counts.double()
    pair_inst = torch.zeros(int(g.max()) + 1 if g.numel() else 1, dtype=torch.int64, device=g.device)
    pair_inst[g] = inst
    grp, lbl = pairs // n_labels, pairs % n_labels
    owner = pair_inst[grp]
    per_group = torch.zeros(int(grp.max()) + 1 if grp.numel() else 1, dtype=torch.float64, device=g.device)
    per_group = per_group.scatter_reduce(0, grp, counts, "amax")
    group_owner = torch.zeros_like(per_group, dtype=torch.int64).scatter(0, grp, owner)
    used = torch.zeros_like(per_group, dtype=torch.bool).scatter(0, grp, torch.ones_like(grp, dtype=torch.bool))
    pure = torch.zeros(I, dtype=torch.float64, device=g.device).index_add(0, group_owner[used], per_group[used])
    per_label = torch.zeros(I * n_labels, dtype=torch.float64, device=g.device)
    per_label = per_label.scatter_reduce(0, owner * n_labels + lbl, counts, "amax")
    complete = per_label.view(I, n_labels).sum(-1)
    total = mask.sum(-1).double()
    return pure / total, complete / total


def lone_feature_scores(net: ReluNet, directions: Float[Tensor, "instances probes hidden"],
                        amplitudes: Float[Tensor, "instances probes amplitudes"]) -> dict[str, Tensor]:
    """Code purity and completeness on lone-feature inputs a d_p (``amplitudes``: a per probe), against the neuron
    baseline (each input's group: its most active unit). Only inputs outside the origin's polytope count (the
    layer's state there is the one with no feature at all); ``origin_share`` is the fraction left out and
    ``lone_codes`` the distinct codes of the inputs that count."""
    I, P, D = directions.shape
    Q = amplitudes.shape[-1]
    x = (amplitudes.unsqueeze(-1) * directions.unsqueeze(2)).reshape(I, P * Q, D)
    labels = torch.arange(P, device=x.device).repeat_interleave(Q).expand(I, P * Q)
    codes = spline_codes(net, x)
    origin = spline_codes(net, torch.zeros(I, 1, D, dtype=x.dtype, device=x.device))
    seen = (codes != origin).any(-1)
    purity, completeness = partition_scores(code_ids(codes), labels, seen, P)
    acts = activations(net, x)
    top = acts.argmax(-1) + torch.arange(I, device=x.device).view(I, 1) * acts.shape[-1]
    n_purity, n_completeness = partition_scores(top, labels, seen, P)
    return {"code_purity": purity, "code_completeness": completeness, "neuron_purity": n_purity,
            "neuron_completeness": n_completeness, "origin_share": 1 - seen.double().mean(-1),
            "lone_codes": count_codes(codes, seen).double()}


def ray_codes(net: ReluNet, directions: Float[Tensor, "instances probes hidden"], top: Float[Tensor, "instances probes"]
              ) -> Float[Tensor, "instances probes"]:
    """Polytopes the ray t d_p, 0 < t < top_p, passes through: 1 + its boundary crossings."""
    zero = torch.zeros_like(directions)
    t = path_crossings(net, zero, directions * top.unsqueeze(-1))
    return 1 + torch.isfinite(t).sum(-1).to(directions.dtype)


def feature_pairs(n: int, per_feature: int = PAIRS_PER_FEATURE) -> Int[Tensor, "paths 2"]:
    """The pairs of features the between-feature paths join: all pairs i < j while there are at most
    ``per_feature`` per feature, else each feature with ``per_feature`` partners at evenly spread index shifts."""
    if n < 2:
        return torch.zeros(0, 2, dtype=torch.int64)
    if n - 1 <= 2 * per_feature:
        return torch.combinations(torch.arange(n), 2)
    shifts = torch.linspace(1, n - 1, per_feature).round().long().unique()
    i = torch.arange(n).repeat_interleave(len(shifts))
    return torch.stack([i, (i + shifts.repeat(n)) % n], dim=-1)


def _profile(t: Float[Tensor, "instances paths crossings"], bins: int) -> Float[Tensor, "instances bins"]:
    """Mean boundaries per path in each of ``bins`` equal parts of the path."""
    I, P, _ = t.shape
    which = (t.clamp(max=1 - 1e-9) * bins).floor().long().clamp(max=bins - 1)
    ok = torch.isfinite(t)
    out = torch.zeros(I, bins, dtype=t.dtype, device=t.device)
    out.scatter_add_(1, torch.where(ok, which, 0).flatten(1), ok.to(t.dtype).flatten(1))
    return out / max(P, 1)


def boundary_density(net: ReluNet, directions: Float[Tensor, "instances features hidden"],
                     typical: Float[Tensor, "instances features"], low: Float[Tensor, "instances features"],
                     high: Float[Tensor, "instances features"], pairs: Int[Tensor, "paths 2"],
                     bins: int = PROFILE_BINS) -> dict[str, Tensor]:
    """Boundary crossings per unit length (in the hidden space) on the straight paths from typical_i d_i to
    typical_j d_j (``between``, the pairs ``pairs``) and from low_i d_i to high_i d_i (``within``: one feature, its
    magnitude changing); each pooled over the paths (all crossings / all length). ``*_profile`` (instances, bins):
    mean crossings per path in each tenth of the path (between: from feature i to feature j)."""
    i, j = pairs[:, 0].to(directions.device), pairs[:, 1].to(directions.device)
    a = directions[:, i] * typical[:, i].unsqueeze(-1)
    b = directions[:, j] * typical[:, j].unsqueeze(-1)
    between = path_crossings(net, a, b)
    lo, hi = directions * low.unsqueeze(-1), directions * high.unsqueeze(-1)
    within = path_crossings(net, lo, hi)

    def density(t: Tensor, start: Tensor, end: Tensor) -> Tensor:
        return torch.isfinite(t).sum((1, 2)).to(t.dtype) / (end - start).norm(dim=-1).sum(-1).clamp(min=1e-12)

    return {"between_density": density(between, a, b), "within_density": density(within, lo, hi),
            "between_profile": _profile(between, bins), "within_profile": _profile(within, bins)}


def _first_violation(A: Tensor, B: Tensor, C: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """The smallest s in [lo, hi] with A s^2 + B s + C > 0 (inf if none): lo itself, or the root where it turns
    positive (the derivative there > 0)."""
    at_lo = A * lo**2 + B * lo + C > 0
    linear = A.abs() <= 1e-12 * (B.abs() + C.abs() + 1e-300)
    disc = B * B - 4 * A * C
    sq = disc.clamp(min=0).sqrt()
    best = torch.full_like(A, torch.inf)
    candidates = (((-B - sq) / (2 * A), (disc >= 0) & ~linear), ((-B + sq) / (2 * A), (disc >= 0) & ~linear),
                  (-C / B, linear & (B != 0)))
    for r, ok in candidates:
        good = ok & (2 * A * r + B > 0) & (r > lo) & (r <= hi) & torch.isfinite(r)
        best = torch.where(good, torch.minimum(best, r), best)
    return torch.where(at_lo, lo, best)


def validity_range(net: ReluNet, directions: Float[Tensor, "instances probes hidden"],
                   top: Float[Tensor, "instances probes"], horizon: float = HORIZON, tolerance: float = TOLERANCE
                   ) -> tuple[Float[Tensor, "instances probes"], Float[Tensor, "instances probes"]]:
    """(lower, upper) of each probe (``_validity``), the rays searched up to ``STAGES`` x top first and only the
    probes still within 1% there searched further (most leave their range soon above top: the long rays' pieces
    are the lens's largest arrays)."""
    reach = min(STAGES[0], horizon)
    lower, upper = _validity(net, directions, top, reach, tolerance)
    for stage in [*(s for s in STAGES[1:] if s < horizon), horizon]:
        still = upper >= reach * top * (1 - 1e-12)  # no deviation found up to the last reach
        if stage <= reach or not still.any():
            break
        n = int(still.sum(1).max())
        idx = still.to(torch.int8).argsort(dim=1, descending=True, stable=True)[:, :n]  # the open probes first
        picked = directions.gather(1, idx.unsqueeze(-1).expand(-1, -1, directions.shape[-1]))
        _, up = _validity(net, picked, top.gather(1, idx), stage, tolerance)
        upper = upper.scatter(1, idx, torch.where(still.gather(1, idx), up, upper.gather(1, idx)))
        reach = stage
    return lower, upper


def _validity(net: ReluNet, directions: Float[Tensor, "instances probes hidden"],
              top: Float[Tensor, "instances probes"], horizon: float, tolerance: float
              ) -> tuple[Float[Tensor, "instances probes"], Float[Tensor, "instances probes"]]:
    """(lower, upper): along the ray t d_p the output f is piecewise affine in t; g is the affine map of the piece
    that holds t = top_p. Upper: the first t > top_p where ||f - g|| > tolerance sqrt(||g||^2 + floor^2) (squared,
    a quadratic in t on each piece, solved exactly), ``horizon`` top_p if none up to there; lower: the last such t
    below top_p, 0 if none. floor = 1e-6 max ||f|| on the ray keeps a map that is zero from making every deviation
    infinite."""
    zero = torch.zeros_like(directions)
    t0, t1, slope, icept = path_affine(net, zero, directions * (top * horizon).unsqueeze(-1))
    ref = 1.0 / horizon
    r = ((t0 <= ref).sum(-1, keepdim=True) - 1).clamp(min=0)
    r_slope = slope.gather(2, r.unsqueeze(-1).expand(*r.shape, slope.shape[-1]))
    r_icept = icept.gather(2, r.unsqueeze(-1).expand(*r.shape, slope.shape[-1]))
    # the deviation f - g = ds t + di on each piece, ds = slope - slope_r, di = icept - icept_r: its squared norms
    # from inner products (batched dot products, no (pieces x outputs) temporaries), exactly 0 on the reference
    def dot(u: Tensor, v: Tensor) -> Tensor:
        return torch.einsum("ipko,ipko->ipk", u, v)

    def ref_dot(u: Tensor, v: Tensor) -> Tensor:
        return torch.einsum("ipko,ipo->ipk", u, v[:, :, 0])

    ss, si, ii = dot(slope, slope), dot(slope, icept), dot(icept, icept)
    s_rs, s_ri, i_rs, i_ri = ref_dot(slope, r_slope), ref_dot(slope, r_icept), ref_dot(icept, r_slope), \
        ref_dot(icept, r_icept)
    rr, rq, qq = ss.gather(-1, r), si.gather(-1, r), ii.gather(-1, r)  # the reference's own
    on_ref = torch.arange(slope.shape[2], device=r.device) == r
    dss = torch.where(on_ref, 0.0, ss - 2 * s_rs + rr)
    dsi = torch.where(on_ref, 0.0, si - s_ri - i_rs + rq)
    dii = torch.where(on_ref, 0.0, ii - 2 * i_ri + qq)
    f_end = torch.maximum(ss * t0**2 + 2 * si * t0 + ii, ss * t1**2 + 2 * si * t1 + ii).clamp(min=0).sqrt()
    floor2 = (1e-6 * f_end.amax(-1, keepdim=True)) ** 2
    tol2 = tolerance**2
    A = dss - tol2 * rr
    B = 2 * (dsi - tol2 * rq)
    C = dii - tol2 * (qq + floor2)
    real = t1 > t0
    up = _first_violation(A, B, C, t0.clamp(min=ref), t1)
    upper = torch.where(real & (t1 > ref), up, torch.inf).amin(-1).clamp(max=1.0)
    # below the reference: the same search on each piece run backwards (s -> -s: A s^2 - B s + C on [-hi, -lo])
    down = -_first_violation(A, -B, C, -t1.clamp(max=ref), -t0)
    lower = torch.where(real & (t0 < ref), down, -torch.inf).amax(-1).clamp(min=0.0)
    scale = top * horizon
    return lower * scale, upper * scale


def feature_magnitudes(coefficients: Float[Tensor, "instances samples features"]) -> dict[str, Tensor]:
    """What the lens needs of the training law (docs/papers.md §6.2), float64: ``amplitudes`` (instances, features,
    AMPLITUDES) the lone-feature amplitudes, ``low`` / ``typical`` / ``high`` / ``top`` (instances, features) the
    10%, 50%, 90% and ``TOP_QUANTILE`` quantiles of each feature's magnitudes, ``signed`` (instances,) whether
    coefficients take both signs (then each feature is two probes)."""
    dtype = torch.float64
    q = (torch.arange(AMPLITUDES, dtype=dtype) + 0.5) / AMPLITUDES
    levels = torch.tensor([0.1, 0.5, 0.9, TOP_QUANTILE], dtype=dtype)
    amps = magnitude_quantiles(coefficients.to(dtype), torch.cat([q, levels]))
    low, typical, high, top = amps[..., AMPLITUDES:].unbind(-1)
    return {"amplitudes": amps[..., :AMPLITUDES], "low": low, "typical": typical, "high": high, "top": top,
            "signed": (coefficients < 0).flatten(1).any(-1)}


def lens_measures(net: ReluNet, directions: Float[Tensor, "instances features hidden"],
                  inputs: Float[Tensor, "instances samples hidden"], magnitudes: dict[str, Tensor]
                  ) -> dict[str, Tensor]:
    """Every measure of the lens, one number per instance (docs/papers.md §6.2), plus the two boundary profiles
    (instances, bins): ``data_codes`` (distinct polytopes of the training-law samples ``inputs``), the lone-feature
    scores and their harmonic means ``code_match`` / ``neuron_match``, ``ray_codes`` (mean over probes),
    ``between_density`` / ``within_density`` and their ratio ``density_ratio``, ``validity_lower`` /
    ``validity_upper`` (medians over probes, in units of the probe's top training magnitude) and
    ``valid_to_horizon`` (the fraction of probes affine up to the horizon). ``magnitudes``: ``feature_magnitudes``
    of the training law (signed must be one value for the batch)."""
    dtype = torch.float64
    net = net.to(dtype)
    directions, inputs = directions.to(dtype), inputs.to(dtype)
    m = magnitudes
    two = 2 if bool(m["signed"].any()) else 1
    dirs = probes(directions, two == 2)
    out: dict[str, Tensor] = {"data_codes": count_codes(spline_codes(net, inputs)).to(dtype)}
    out.update(lone_feature_scores(net, dirs, m["amplitudes"].repeat(1, two, 1)))
    for kind in ("code", "neuron"):
        p, c = out[f"{kind}_purity"], out[f"{kind}_completeness"]
        out[f"{kind}_match"] = 2 * p * c / (p + c)
    top = m["top"].repeat(1, two)
    out["ray_codes"] = ray_codes(net, dirs, top).mean(-1)
    dens = boundary_density(net, directions, m["typical"], m["low"], m["high"], feature_pairs(directions.shape[1]))
    out.update(dens)
    out["density_ratio"] = dens["between_density"] / dens["within_density"]
    # the rays' pieces take (instances, probes, units + 2, outputs) numbers: a block of probes at a time
    outs = net.readout_weight.shape[1] if net.readout_weight is not None else net.layers[-1].weight.shape[1]
    per_probe = net.n_instances * (net.units() + 2) * outs * (3 if len(net.layers) > 1 else 1)
    block = max(1, RAY_BUDGET // per_probe)
    parts = [validity_range(net, dirs[:, k:k + block], top[:, k:k + block]) for k in range(0, dirs.shape[1], block)]
    lower, upper = torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)
    out["validity_lower"] = (lower / top).median(-1).values
    out["validity_upper"] = (upper / top).median(-1).values
    out["valid_to_horizon"] = (upper >= HORIZON * top * (1 - 1e-9)).to(dtype).mean(-1)
    return out
