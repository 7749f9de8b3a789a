"""Probes and metrics for monosemanticity and superposition, batched over a leading ``instances`` axis.

The EM model (Engineering Monosemanticity, Jermyn et al. 2022; docs/papers.md §1.3) reads an input
``x = E v`` (``E``: (instances, hidden, features), one unit column per feature) through ``h = act(W1 x + b1)``
(``W1``: (instances, neurons, hidden), ``b1``: (instances, neurons)) and writes ``W2 h``. Every function here takes
tensors with the instances axis first; callers fold checkpoints into it when they want metrics over training. Nothing
couples instances. The axis names are docs/architecture.md's (§Tensor axes).

Conventions shared by all metrics:

* ``sfa`` (single-feature activations, (instances, neurons, features)): ``sfa[i, n, j]`` is neuron ``n``'s
  activation when feature ``j`` alone is on at amplitude 1 (docs/papers.md §1.4).
* A neuron *fires* when its activation is > 0. For all three nonlinearities this is the same as ``pre > 0``.
* GeLU and SoLU give small *negative* activations. The paper's ratio max/sum was written for ReLU; with negative
  entries the sum shrinks and the ratio can exceed 1 (docs/papers.md §1.4 caveat a). Every sfa-based metric here
  therefore uses the **positive part** ``max(sfa, 0)``. For ReLU this is exactly the paper's definition.
* A neuron is *dead* when it fires on no single feature (its positive part is all zero); dead neurons are never
  monosemantic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import einsum
from jaxtyping import Bool, Float, Int
from torch import Tensor

from toymodels.engine.activations import Nonlinearity, activation


# The paper's monosemanticity threshold and the epsilon in its ratio (plot_helper.py, docs/papers.md §1.4).
MONO_THRESHOLD = 0.999
RATIO_EPS = 1e-10
# Elements of the (instances, neurons, samples) activation block the multi-feature probe holds at once.
PROBE_BLOCK_ELEMENTS = 2**22


def net_map(
    W1: Float[Tensor, "instances neurons hidden"], E: Float[Tensor, "instances hidden features"]
) -> Float[Tensor, "instances neurons features"]:
    """``W1 @ E``: the pre-activation each feature adds to each neuron at unit amplitude."""
    return einsum(W1, E, "instances neurons hidden, instances hidden features -> instances neurons features")


def single_feature_activations(
    W1: Float[Tensor, "instances neurons hidden"],
    b1: Float[Tensor, "instances neurons"],
    E: Float[Tensor, "instances hidden features"],
    nonlinearity: Nonlinearity,
    amplitude: float = 1.0,
) -> Float[Tensor, "instances neurons features"]:
    """``sfa[i, n, j] = act(amplitude * (W1 E)[n, j] + b1[n])``: neuron ``n`` with only feature ``j`` on.

    The paper's probe (plot_helper.py; docs/papers.md §1.4) uses amplitude 1.
    """
    pre = amplitude * net_map(W1, E) + b1[..., None]
    return activation(pre, nonlinearity)


def signed_embedding(E: Float[Tensor, "instances hidden features"]) -> Float[Tensor, "instances hidden 2*features"]:
    """``[E, -E]``: feature j at amplitude +1 (column j) and -1 (column N + j), the probe of the abs task.

    The abs task's input v = v1 - v2 (each sampled with density eps/2) is exactly a decoder input over these 2N
    signed features, so every single-feature probe applies to them unchanged.
    """
    return torch.cat([E, -E], dim=-1)


# ------------------------------------------------------------------------------------------ single-feature metrics
def mono_ratio(sfa: Float[Tensor, "instances neurons features"]) -> Float[Tensor, "instances neurons"]:
    """The paper's monosemanticity ratio ``max_j a_nj / (1e-10 + sum_j a_nj)`` (docs/papers.md §1.4).

    ``a`` is the **positive part** of ``sfa``: negative GeLU/SoLU responses are treated as "not firing" instead of
    shrinking the denominator, so the ratio always lies in [0, 1] (the raw GeLU ratio can exceed 1). For ReLU this
    is the paper's formula exactly. Dead neurons (all ``a`` = 0) get 0.
    """
    a = sfa.clamp(min=0)
    return a.amax(-1) / (RATIO_EPS + a.sum(-1))


def is_dead(sfa: Float[Tensor, "instances neurons features"]) -> Bool[Tensor, "instances neurons"]:
    """A neuron is dead when no single feature at amplitude 1 makes it fire (activation > 0)."""
    return ~(sfa > 0).any(-1)


def is_mono(
    sfa: Float[Tensor, "instances neurons features"], threshold: float = MONO_THRESHOLD
) -> Bool[Tensor, "instances neurons"]:
    """Paper's criterion: ``mono_ratio > threshold`` (0.999 in the paper). Dead neurons are never mono."""
    return (mono_ratio(sfa) > threshold) & ~is_dead(sfa)


def own_feature(sfa: Float[Tensor, "instances neurons features"]) -> Int[Tensor, "instances neurons"]:
    """Each neuron's feature: the argmax of its sfa row; -1 for dead neurons (they have none)."""
    return torch.where(is_dead(sfa), -1, sfa.argmax(-1))


def participation(sfa: Float[Tensor, "instances neurons features"]) -> Float[Tensor, "instances neurons"]:
    """Participation ratio ``(sum_j a_nj)^2 / sum_j a_nj^2`` of each neuron's sfa row (positive part ``a``).

    It is the effective number of features a neuron responds to: 1 for a neuron reading one feature, N for one that
    responds equally to all. Dead neurons get 0 (they respond to none).
    """
    a = sfa.clamp(min=0)
    # Dividing by the row maximum first keeps tiny activations from underflowing when squared; PR is scale-free.
    a = a / a.amax(-1, keepdim=True).clamp(min=torch.finfo(a.dtype).tiny)
    sq = (a**2).sum(-1)
    return torch.where(sq > 0, a.sum(-1) ** 2 / sq.clamp(min=1.0), torch.zeros_like(sq))


# ---------------------------------------------------------------------------------------------- geometry metrics
def capacity(W: Float[Tensor, "instances hidden features"]) -> Float[Tensor, "instances features"]:
    """Capacity of each feature: ``C_i = (W_i . W_i)^2 / sum_j (W_i . W_j)^2`` for the columns ``W_i`` of ``W``.

    Polysemanticity & Capacity (Scherlis et al. 2022, docs/papers.md §3): the fraction of a dimension feature ``i``
    uses; 1 = a dedicated orthogonal direction, 0 = ignored. Identical to TMS's feature dimensionality
    ``D_i = ||W_i||^2 / sum_j (W_i_hat . W_j)^2`` (docs/papers.md §2.1), hence the alias ``feature_dimensionality``.
    Always in [0, 1] and ``sum_i C_i <= rank(W) <= d``. A zero column gets ``C_i = 0`` (ignored), not NaN.
    """
    gram = einsum(W, W, "instances hidden features, instances hidden others -> instances features others")
    num = torch.diagonal(gram, dim1=-2, dim2=-1) ** 2
    den = (gram**2).sum(-1)  # includes j = i, so den >= num and C_i <= 1
    return torch.where(den > 0, num / den.clamp(min=torch.finfo(W.dtype).tiny), torch.zeros_like(den))


feature_dimensionality = capacity


def superposition(W: Float[Tensor, "instances hidden features"]) -> Float[Tensor, "instances features"]:
    """TMS per-feature superposition ``sum_{j != i} (W_i_hat . W_j)^2`` (docs/papers.md §2.1) for the columns of ``W``.

    How much the other features interfere along feature ``i``'s direction: 0 for a feature with a direction of its
    own, about 1 per other feature sharing it. A zero column gets 0.
    """
    norms = W.norm(dim=-2)
    W_hat = W / norms.clamp(min=1e-12).unsqueeze(-2)
    overlap = (W_hat.transpose(-1, -2) @ W).pow(2)  # (instances, features, others)
    out = overlap.sum(-1) - torch.diagonal(overlap, dim1=-2, dim2=-1)
    return torch.where(norms > 0, out, torch.zeros_like(out))


def dims_per_feature(W: Float[Tensor, "instances hidden features"]) -> Float[Tensor, " instances"]:
    """TMS dimensions per feature ``D* = d / ||W||_F^2`` (docs/papers.md §2.1), ``d`` = number of rows of ``W``.

    With unit-norm represented columns it is d / (number of represented features). It depends on the column norms
    (unlike ``capacity``). An all-zero ``W`` gets 0 rather than infinity, so the value stays finite.
    """
    sq = (W**2).sum(dim=(-2, -1))
    return torch.where(sq > 0, W.shape[-2] / sq.clamp(min=torch.finfo(W.dtype).tiny), torch.zeros_like(sq))


# --------------------------------------------------------------------------------------------- summary per model
@torch.no_grad()  # a probe of trained weights: no graph, less memory
def em_metrics(
    W1: Float[Tensor, "instances neurons hidden"],
    b1: Float[Tensor, "instances neurons"],
    E: Float[Tensor, "instances hidden features"],
    nonlinearity: Nonlinearity,
    threshold: float = MONO_THRESHOLD,
    signed: bool = False,
) -> dict[str, Float[Tensor, " instances"]]:
    """Per-instance summary metrics of an EM model; every value is an (instances,) float tensor.

    ``signed`` (the abs task, whose inputs are v = v1 - v2) probes each feature at amplitude +1 and -1: the
    single-feature probe then has 2N columns (the embedding ``[E, -E]``), so a neuron that answers only -v_i is
    alive and can be mono (its signed feature), and one answering both signs of a feature is not mono.
    ``mono_per_feature`` still divides by N (so a fully monosemantic abs model reaches 2: one neuron per sign) and
    ``features_covered`` is the fraction of the 2N signed features with a mono neuron.

    * ``mono_neurons``: count of paper-mono neurons; ``mono_per_feature`` = that / N (the paper's y-axis, can
      exceed 1); ``mono_per_neuron`` = that / k.
    * ``features_covered``: fraction of features with at least one mono neuron (a mono neuron's feature is its sfa
      argmax), so duplicates count once.
    * ``dead_neurons``: neurons firing on no single feature.
    * ``mean_participation``: mean participation ratio over live neurons; 0 when every neuron is dead.
    * ``mean_bias``, ``min_bias``, ``max_bias``, ``positive_bias_neurons`` (count of ``b1 > 0``).
    * ``mean_capacity`` (mean over features of ``capacity(W1 @ E)``, at most m / N) and ``dims_per_feature``
      (``dims_per_feature(W1 @ E)`` = k / ||W1 E||_F^2; 0 for an all-zero map).

    All values are finite for finite inputs, including all-dead models (then mono counts, coverage and
    participation are 0).
    """
    sfa = single_feature_activations(W1, b1, signed_embedding(E) if signed else E, nonlinearity)
    k, N = sfa.shape[-2], E.shape[-1]
    mono = is_mono(sfa, threshold)
    live = ~is_dead(sfa)
    mono_count = mono.sum(-1).to(sfa.dtype)
    # A feature is covered when some mono neuron has it as its argmax.
    covering = F.one_hot(sfa.argmax(-1), sfa.shape[-1]).bool() & mono[..., None]
    live_count = live.sum(-1).to(sfa.dtype)
    W = net_map(W1, E)
    return {
        "mono_neurons": mono_count,
        "mono_per_feature": mono_count / N,
        "mono_per_neuron": mono_count / k,
        "features_covered": covering.any(-2).to(sfa.dtype).mean(-1),
        "dead_neurons": k - live_count,
        "mean_participation": (participation(sfa) * live).sum(-1) / live_count.clamp(min=1),
        "mean_bias": b1.mean(-1),
        "min_bias": b1.amin(-1),
        "max_bias": b1.amax(-1),
        "positive_bias_neurons": (b1 > 0).sum(-1).to(b1.dtype),
        "mean_capacity": capacity(W).mean(-1),
        "dims_per_feature": dims_per_feature(W),
    }


# ------------------------------------------------------------------------------------------ multi-feature probe
def _draw_features(
    probs: Float[Tensor, "instances features"],
    n: int,
    generator: torch.Generator | Sequence[torch.Generator] | None,
) -> Float[Tensor, "instances samples features"]:
    """``n`` training-like feature vectors per instance: feature on with its probability, value U[0, 1)."""
    I, N = probs.shape
    gens = list(generator) if isinstance(generator, Sequence) else [generator] * I
    if len(gens) != I:
        raise ValueError(f"got {len(gens)} generators for {I} instances")
    kw = {"device": probs.device, "dtype": probs.dtype}
    # One draw per instance, so that with per-instance generators an instance's inputs do not depend on its group;
    # each sample's values and on/off coins come from one row, so (on CPU) the inputs do not depend on chunking.
    u = torch.stack([torch.rand(n, 2 * N, generator=g, **kw) for g in gens])
    return u[..., :N] * (u[..., N:] < probs[:, None, :])


@torch.no_grad()  # a probe of trained weights: no graph, less memory
def multi_feature_probe(
    W1: Float[Tensor, "instances neurons hidden"],
    b1: Float[Tensor, "instances neurons"],
    E: Float[Tensor, "instances hidden features"],
    nonlinearity: Nonlinearity,
    probs: Float[Tensor, "instances features"] | Float[Tensor, "instances 1"],
    n_samples: int = 4096,
    generator: torch.Generator | Sequence[torch.Generator] | None = None,
    threshold: float = MONO_THRESHOLD,
) -> dict[str, Tensor]:
    """Probe neurons with multi-feature inputs, to catch neurons the single-feature probe wrongly calls mono.

    Darryl Wright found a paper-"mono" neuron that fires on most features when all-but-one are on (docs/papers.md §1.4
    caveat b). Two probes:

    (a) *all but one*: for each held-out feature j the input has every other feature at amplitude 1.
    (b) *random*: ``n_samples`` inputs drawn like training data, each feature on with its probability ``probs``
        ((instances, features), or (instances, 1) / (instances,) for uniform) and value U[0, 1). ``generator`` may
        be one generator or one per instance (then each instance's inputs are independent of which group it is in).

    A neuron's *own feature* is its sfa argmax (dead neurons have none). An *off-feature trigger* of a neuron is a
    multi-feature input (>= 2 features on) in which its own feature is off and on which the neuron fires.

    Returns, per neuron (instances, neurons):
      ``fires_all_but_one`` (long): how many of the N all-but-one inputs make the neuron fire;
      ``fire_rate``: fraction of random inputs on which it fires;
      ``off_feature_triggers`` (long): number of random inputs that are off-feature triggers;
      ``context_features`` (long): number of distinct features f that push the neuron towards firing
        (``(W1 E)[n, f] > 0``) and are on in at least one random off-feature trigger. The positive-weight
        condition leaves out features that merely happen to be on; the own feature is never counted. A neuron
        that only fires with its own feature gets 0; one that also fires on a pair of other features gets >= 2;
      ``own_feature`` (long, -1 if dead), ``mono`` (bool, paper criterion), ``false_mono_neurons`` (bool): mono
        neurons that fire on their own all-but-one input (when N >= 3) or have a random off-feature trigger;
    and per instance (instances,): ``false_mono`` (long): the count of ``false_mono_neurons``.
    """
    I, k, _ = W1.shape
    N = E.shape[-1]
    W = net_map(W1, E)
    sfa = activation(W + b1[..., None], nonlinearity)
    own = own_feature(sfa)
    mono = is_mono(sfa, threshold)
    own_hot = F.one_hot(own.clamp(min=0), N).to(W.dtype) * (own >= 0)[..., None]  # zero row for dead neurons

    # (a) all features on but j
    fires_abo = _fires_all_but_one(W, b1, nonlinearity)  # (instances, neurons, features): feature j held out
    fires_without_own = (fires_abo.to(W.dtype) * own_hot).sum(-1) > 0 if N >= 3 else torch.zeros_like(mono)

    # (b) random inputs, in chunks so the (instances, neurons, samples) block stays bounded.
    probs = probs.to(W).reshape(I, -1).expand(I, N)  # (instances, 1) or (instances,) = one probability for all
    chunk = max(1, PROBE_BLOCK_ELEMENTS // max(1, I * k))
    fires_count = torch.zeros(I, k, dtype=torch.long, device=W.device)
    trigger_count = torch.zeros_like(fires_count)
    context_seen = torch.zeros(I, k, N, dtype=torch.bool, device=W.device)
    per_sample = "instances neurons features, instances samples features -> instances neurons samples"
    per_feature = "instances neurons samples, instances samples features -> instances neurons features"
    for start in range(0, n_samples, chunk):
        v = _draw_features(probs, min(chunk, n_samples - start), generator)
        on = (v > 0).to(W.dtype)
        fires = activation(einsum(W, v, per_sample) + b1[..., None], nonlinearity) > 0
        own_on = einsum(own_hot, on, per_sample) > 0
        multi = (on.sum(-1) >= 2)[:, None, :]
        trigger = fires & ~own_on & multi
        fires_count += fires.sum(-1)
        trigger_count += trigger.sum(-1)
        context_seen |= einsum(trigger.to(W.dtype), on, per_feature) > 0

    false_mono_neurons = mono & (fires_without_own | (trigger_count > 0))
    return {
        "fires_all_but_one": fires_abo.sum(-1),
        "fire_rate": fires_count.to(W.dtype) / max(1, n_samples),
        "off_feature_triggers": trigger_count,
        "context_features": (context_seen & (W > 0)).sum(-1),
        "own_feature": own,
        "mono": mono,
        "false_mono_neurons": false_mono_neurons,
        "false_mono": false_mono_neurons.sum(-1),
    }


def all_but_one_fires(
    W1: Float[Tensor, "instances neurons hidden"],
    b1: Float[Tensor, "instances neurons"],
    E: Float[Tensor, "instances hidden features"],
    nonlinearity: Nonlinearity,
) -> Bool[Tensor, "instances neurons features"]:
    """Probe (a) of ``multi_feature_probe``: does neuron ``n`` fire when every feature but ``j`` is on at amplitude 1?

    ``pre = sum_f (W1 E)[n, f] - (W1 E)[n, j] + b1[n]``; ``fires_all_but_one`` is this grid summed over ``j``.
    """
    return _fires_all_but_one(net_map(W1, E), b1, nonlinearity)


def _fires_all_but_one(
    W: Float[Tensor, "instances neurons features"], b1: Float[Tensor, "instances neurons"], nonlinearity: Nonlinearity
) -> Bool[Tensor, "instances neurons features"]:
    # from the net map W = W1 E, which the probe has already computed
    return activation(W.sum(-1, keepdim=True) - W + b1[..., None], nonlinearity) > 0


# ------------------------------------------------------------------------------------------------- display order
def _lexsort(keys: Sequence[Tensor]) -> Int[Tensor, "instances units"]:
    """Indices that sort the last axis by ``keys`` (most significant first); ties keep index order."""
    order = torch.arange(keys[0].shape[-1], device=keys[0].device).expand_as(keys[0]).contiguous()
    for key in reversed(keys):  # stable sorts from the least significant key up
        order = order.gather(-1, torch.sort(key.gather(-1, order), dim=-1, stable=True).indices)
    return order


@torch.no_grad()
def neuron_order(
    sfa: Float[Tensor, "instances neurons features"],
) -> tuple[Int[Tensor, "instances neurons"], Int[Tensor, "instances features"]]:
    """The display order of neurons and features: every heatmap, bias plot and dashboard panel uses it.

    Neurons: mono neurons first (``is_mono``), grouped by their own feature in feature order so that duplicates of
    one feature sit together; then the other live neurons by ``mono_ratio``, highest first; dead neurons last.
    Features: by the position, in that neuron order, of the neuron that responds to them most strongly (positive
    part; the stronger response first on a tie); features no neuron responds to last. The mono neurons' features
    then lie on a diagonal. Ties keep index order. Returns ``(neurons, features)``: index permutations.
    """
    a = sfa.clamp(min=0)
    mono = is_mono(sfa)
    own = torch.where(mono, own_feature(sfa), 0)
    neurons = _lexsort([is_dead(sfa).long(), (~mono).long(), own, -torch.where(mono, 0.0, mono_ratio(sfa))])
    position = torch.empty_like(neurons).scatter_(-1, neurons, torch.arange(sfa.shape[-2]).expand_as(neurons))
    strongest = a.amax(-2)
    features = _lexsort([(strongest <= 0).long(), position.gather(-1, a.argmax(-2)), -strongest])
    return neurons, features
