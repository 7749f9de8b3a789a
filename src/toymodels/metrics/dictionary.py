"""How well a dictionary (an SAE's decoder and its latents) recovers known true features: one implementation of
each metric, in torch, batched over the instance axis (docs/dictionary_learning.md §Metrics).

Notation: D (instances, latents, hidden) are the SAE's decoder directions, F (instances, features, hidden) the true
feature directions (hidden: the width of the layer the SAE reads), cos = |cosine| between rows of D and F. On
samples: ``acts`` (instances, batch, latents) the SAE's latent activations, ``feats`` (instances, batch, features)
the true feature activations (a feature is on when != 0), x the inputs and x_hat the reconstructions. The
definitions follow SAELens' synthetic evals (``sae_lens.synthetic.evals``, v6.54) and the papers cited per function;
tests/metrics/test_dictionary.py checks each on a hand-built case and, where SAELens computes the same quantity,
against it.

Example:
    >>> D = torch.eye(3)[None]            # three latents on the three axes
    >>> F = torch.eye(3)[None, [2, 0]]    # two true features
    >>> mcc(abs_cosines(D, F)).tolist()
    [1.0]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as nnf
from einops import einsum
from jaxtyping import Bool, Float, Int
from torch import Tensor

from toymodels.metrics.features import MONO_THRESHOLD, is_mono

#: a true feature counts as recovered when some latent's decoder direction has |cos| above this
RECOVERED_COS = 0.9
#: inputs with a smaller norm are skipped by ``shrinkage`` (its ratio is undefined there)
MIN_INPUT_NORM = 1e-6


def abs_cosines(
    D: Float[Tensor, "instances latents hidden"], F: Float[Tensor, "instances features hidden"]
) -> Float[Tensor, "instances latents features"]:
    """|cos| between every decoder direction and every true direction (norms clamped at 1e-8, as SAELens does)."""
    Dn = D / D.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    Fn = F / F.norm(dim=-1, keepdim=True).clamp(min=1e-8)
    return einsum(Dn, Fn, "instances latents hidden, instances features hidden -> instances latents features").abs()


def mcc(cos: Float[Tensor, "instances latents features"]) -> Float[Tensor, " instances"]:
    """Mean correlation coefficient: the mean |cos| of the optimal one-to-one matching of latents and features
    (Hungarian algorithm on 1 - |cos|, ``scipy.optimize.linear_sum_assignment``), over min(latents, features)
    pairs. 1 = every feature (or latent, if fewer) has its own exact copy. Source: arXiv 2505.20254 (SAELens'
    ``mean_correlation_coefficient``)."""
    # deferred: scipy is needed only when dictionary metrics are computed
    from scipy.optimize import linear_sum_assignment

    out = torch.empty(cos.shape[0], dtype=cos.dtype)
    for i, c in enumerate(cos.detach().cpu()):
        rows, cols = linear_sum_assignment((1 - c).double().numpy())
        out[i] = c[torch.as_tensor(rows), torch.as_tensor(cols)].mean()
    return out.to(cos.device)


def features_recovered(
    cos: Float[Tensor, "instances latents features"], threshold: float = RECOVERED_COS
) -> Float[Tensor, " instances"]:
    """Fraction of true features whose best latent has |cos| > ``threshold`` (0.9): the dictionary-learning
    counterpart of the neuron metric ``features_covered`` (several latents on one feature count once)."""
    return (cos.amax(dim=1) > threshold).to(cos.dtype).mean(-1)


def mean_best_cos(cos: Float[Tensor, "instances latents features"]) -> Float[Tensor, " instances"]:
    """Mean over the true features of their best latent's |cos|: unlike :func:`mcc` (a mean over min(latents,
    features) matched pairs, so a dictionary narrower than the features scores only the features it matched), it
    averages over every true feature, so dictionaries of different widths compare on the same footing."""
    return cos.amax(dim=1).mean(-1)


def covered_features(
    responses: Float[Tensor, "instances units features"], threshold: float = MONO_THRESHOLD
) -> Bool[Tensor, "instances features"]:
    """Which features some unit covers, one criterion for neurons and SAE latents alike: a unit covers feature j
    when it is monosemantic by the paper's test on its single-feature responses (``metrics.features.is_mono``:
    max / sum of the positive part > ``threshold``, 0.999, and not dead) and j is its argmax.

    ``responses[i, u, j]``: unit u's activation when feature j alone is on at amplitude 1: for EM neurons the
    single-feature activations ``sfa`` (then the mean over features is ``em_metrics``' ``features_covered``), for
    SAE latents the latents the SAE infers from the layer's single-feature activations (``encode`` of its true
    directions, which are those activations)."""
    mono = is_mono(responses, threshold)
    hit = nnf.one_hot(responses.argmax(-1), responses.shape[-1]).bool() & mono[..., None]
    return hit.any(-2)


def uniqueness(cos: Float[Tensor, "instances latents features"]) -> Float[Tensor, " instances"]:
    """Distinct true features among the latents' best matches (argmax |cos| per latent), divided by the number of
    latents: 1 = every latent tracks a different feature (SAELens' ``feature_uniqueness``)."""
    best = cos.argmax(dim=-1)
    hit = torch.zeros(cos.shape[0], cos.shape[2], dtype=torch.bool, device=cos.device)
    hit.scatter_(1, best, True)
    return hit.sum(-1).to(cos.dtype) / cos.shape[1]


def best_feature(cos: Float[Tensor, "instances latents features"]) -> Int[Tensor, "instances latents"]:
    """Each latent's best-matching true feature (argmax |cos|)."""
    return cos.argmax(dim=-1)


def classification(
    acts: Float[Tensor, "instances batch latents"], feats: Float[Tensor, "instances batch features"],
    cos: Float[Tensor, "instances latents features"],
) -> dict[str, Float[Tensor, " instances"]]:
    """Each latent as a detector of its best-matching feature: over the samples, TP/FP/FN/TN of (latent != 0)
    against (feature != 0); per-latent precision TP/(TP+FP), recall TP/(TP+FN), F1 and accuracy (0 where a ratio is
    undefined, e.g. the precision of a dead latent), then the mean over latents (SAELens'
    ``compute_classification_metrics``). Keys ``precision``, ``recall``, ``f1``, ``accuracy``."""
    fired = acts != 0
    idx = best_feature(cos)[:, None, :].expand(-1, feats.shape[1], -1)
    truth = feats.gather(2, idx) != 0
    tp = (fired & truth).sum(1).double()
    fp = (fired & ~truth).sum(1).double()
    fn = (~fired & truth).sum(1).double()
    n = fired.shape[1]
    zero = torch.zeros_like(tp)
    precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp(min=1), zero)
    recall = torch.where(tp + fn > 0, tp / (tp + fn).clamp(min=1), zero)
    pr = precision + recall
    f1 = torch.where(pr > 0, 2 * precision * recall / pr.clamp(min=1e-300), zero)
    accuracy = (n - fp - fn) / max(n, 1)
    return {name: v.mean(-1).to(acts.dtype) for name, v in
            (("precision", precision), ("recall", recall), ("f1", f1), ("accuracy", accuracy))}


def l0(acts: Float[Tensor, "instances batch units"]) -> Float[Tensor, " instances"]:
    """Mean number of nonzero entries per sample: the SAE's L0 on latents, the true L0 on feature activations."""
    return (acts != 0).sum(-1).to(torch.float64).mean(-1).to(acts.dtype)


def dead_latents(acts: Float[Tensor, "instances batch latents"]) -> Float[Tensor, " instances"]:
    """Number of latents that never fire (== 0 on every sample)."""
    return (~(acts != 0).any(dim=1)).sum(-1).to(acts.dtype)


def shrinkage(
    x_hat: Float[Tensor, "instances batch hidden"], x: Float[Tensor, "instances batch hidden"],
    min_norm: float = MIN_INPUT_NORM,
) -> Float[Tensor, " instances"]:
    """Mean over samples of ||x_hat|| / ||x|| (1 = no shrinkage; L1 penalties push it below 1), skipping inputs
    with ||x|| <= ``min_norm``; 0 when none is left (SAELens' ``ShrinkageCalculator``; Wright & Sharkey 2024)."""
    xn, hn = x.norm(dim=-1), x_hat.norm(dim=-1)
    ok = xn > min_norm
    ratio = torch.where(ok, hn / xn.clamp(min=min_norm), torch.zeros_like(xn))
    return ratio.sum(-1) / ok.sum(-1).clamp(min=1)


def explained_variance(
    x_hat: Float[Tensor, "instances batch hidden"], x: Float[Tensor, "instances batch hidden"]
) -> Float[Tensor, " instances"]:
    """Fraction of variance explained, 1 - E||x - x_hat||^2 / (E||x||^2 - ||E x||^2) (the total variance summed
    over dimensions); 1 (perfect) or 0 when the inputs have no variance (SAELens' ``ExplainedVarianceCalculator``)."""
    x64, h64 = x.double(), x_hat.double()
    mse = (x64 - h64).pow(2).sum(-1).mean(-1)
    var = x64.pow(2).sum(-1).mean(-1) - x64.mean(1).pow(2).sum(-1)
    degenerate = torch.where(mse < 1e-10, torch.ones_like(mse), torch.zeros_like(mse))
    return torch.where(var < 1e-10, degenerate, 1 - mse / var.clamp(min=1e-10)).to(x.dtype)


def absorption_gap(
    acts: Float[Tensor, "instances batch latents"], feats: Float[Tensor, "instances batch features"],
    cos: Float[Tensor, "instances latents features"], parents: Sequence[Int[Tensor, " features"]],
) -> Float[Tensor, " instances"]:
    """Feature absorption in a hierarchy: for every parent -> child edge, with the parent's latent the one whose
    decoder is closest to the parent's direction, P(parent latent fires | parent on, child off) - P(parent latent
    fires | child on); the mean over edges with samples in both conditions (NaN without any). Near 0: the parent's
    latent fires whenever the parent is on; near 1: the child absorbed it (the latent goes silent when the child
    fires). Source: Chanin et al. 2024 ("A is for Absorption"), in the form proposed for SAELens' synthetic evals
    (issue #729). ``parents[i]`` lists instance i's parent index per feature (-1 for roots)."""
    out = torch.full((acts.shape[0],), float("nan"), dtype=acts.dtype, device=acts.device)
    for i, par in enumerate(parents):
        par = par.to(acts.device)
        child = (par >= 0).nonzero().flatten()
        if child.numel() == 0:
            continue
        parent = par[child]
        latent = cos[i].argmax(dim=0)[parent]  # the parent's latent, per edge
        fires = acts[i][:, latent] != 0
        p_on, c_on = feats[i][:, parent] != 0, feats[i][:, child] != 0
        only_parent = p_on & ~c_on
        n1, n2 = only_parent.sum(0), c_on.sum(0)
        ok = (n1 > 0) & (n2 > 0)
        if ok.any():
            gap = (fires & only_parent).sum(0) / n1.clamp(min=1) - (fires & c_on).sum(0) / n2.clamp(min=1)
            out[i] = gap[ok].double().mean().to(acts.dtype)
    return out


def pair_gap(
    acts: Float[Tensor, "instances batch latents"], feats: Float[Tensor, "instances batch features"],
    cos: Float[Tensor, "instances latents features"], parents: Sequence[Int[Tensor, " features"]],
) -> Float[Tensor, " instances"]:
    """:func:`absorption_gap` conditioned on the parent in both terms: P(parent latent fires | parent on, child off)
    - P(it fires | parent on, child on), the mean over edges with samples in both (NaN without any). On
    hierarchical features (a child fires only with its parent) it equals ``absorption_gap``; on features without
    a hierarchy, with ``parents`` naming the same index pairs, it is the null baseline: how often a second active
    feature silences the first one's latent by chance (a TopK limit, an L1 penalty), with no hierarchy to absorb."""
    out = torch.full((acts.shape[0],), float("nan"), dtype=acts.dtype, device=acts.device)
    for i, par in enumerate(parents):
        par = par.to(acts.device)
        child = (par >= 0).nonzero().flatten()
        if child.numel() == 0:
            continue
        parent = par[child]
        fires = acts[i][:, cos[i].argmax(dim=0)[parent]] != 0
        p_on, c_on = feats[i][:, parent] != 0, feats[i][:, child] != 0
        alone, both = p_on & ~c_on, p_on & c_on
        n1, n2 = alone.sum(0), both.sum(0)
        ok = (n1 > 0) & (n2 > 0)
        if ok.any():
            gap = (fires & alone).sum(0) / n1.clamp(min=1) - (fires & both).sum(0) / n2.clamp(min=1)
            out[i] = gap[ok].double().mean().to(acts.dtype)
    return out


def dictionary_metrics(
    D: Float[Tensor, "instances latents hidden"], F: Float[Tensor, "instances features hidden"],
    acts: Float[Tensor, "instances batch latents"], feats: Float[Tensor, "instances batch features"],
    x: Float[Tensor, "instances batch hidden"], x_hat: Float[Tensor, "instances batch hidden"],
    parents: Sequence[Int[Tensor, " features"]] | None = None,
) -> dict[str, Float[Tensor, " instances"]]:
    """Every metric of this module for a batch of SAEs on one evaluation sample each: ``mcc``,
    ``features_recovered``, ``uniqueness``, ``precision``, ``recall``, ``f1``, ``accuracy``, ``l0``, ``true_l0``,
    ``dead_latents``, ``shrinkage``, ``explained_variance`` and (when ``parents`` has an edge) ``absorption_gap``."""
    cos = abs_cosines(D, F)
    out = {"mcc": mcc(cos), "features_recovered": features_recovered(cos), "uniqueness": uniqueness(cos)}
    out.update(classification(acts, feats, cos))
    out.update({"l0": l0(acts), "true_l0": l0(feats), "dead_latents": dead_latents(acts),
                "shrinkage": shrinkage(x_hat, x), "explained_variance": explained_variance(x_hat, x)})
    if parents is not None and any(bool((p >= 0).any()) for p in parents):
        out["absorption_gap"] = absorption_gap(acts, feats, cos, parents)
    return {name: v.to(D.dtype) for name, v in out.items()}

