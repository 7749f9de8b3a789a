"""The Fourier view of modular arithmetic (docs/papers.md §5.3): the real Fourier basis of Z_P, the norms of a weight
matrix's Fourier components, key frequencies, the Gini coefficient of those norms, the (a+b) directions over the
pairs, restricted and excluded logits, and each neuron's best frequency. Torch, batched over any leading axes
(``*instances``); every function is a definition of docs/papers.md §5.3 and is tested on hand-built weights.

Frequencies are numbered k = 1..(P-1)/2 (P odd), w_k = 2 pi k / P; a tensor over frequencies has index k - 1.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Bool, Float
from torch import Tensor

#: a frequency is key when the norm of its Fourier components is at least this share of the largest frequency's
#: (docs/papers.md §5.3; TransformerLens' grokking demo reads the embedding with the same quarter)
KEY_FRACTION = 0.25
#: a neuron counts as explained by one frequency above this share of its variance (the paper's §4.3: 85%)
NEURON_EXPLAINED = 0.85


def n_frequencies(P: int) -> int:
    return (P - 1) // 2


def fourier_basis(P: int, dtype: torch.dtype = torch.float64) -> Float[Tensor, "components tokens"]:
    """The orthonormal real Fourier basis of functions on 0..P-1 (P odd): row 0 the constant 1/sqrt(P), rows 2k-1
    and 2k cos(w_k x) and sin(w_k x), each scaled to norm 1 (the paper's code's layout)."""
    x = torch.arange(P, dtype=torch.float64)
    rows = [torch.full((P,), 1 / math.sqrt(P), dtype=torch.float64)]
    for k in range(1, n_frequencies(P) + 1):
        rows += [torch.cos(2 * math.pi * k * x / P), torch.sin(2 * math.pi * k * x / P)]
    basis = torch.stack(rows)
    return (basis / basis.norm(dim=1, keepdim=True)).to(dtype)


def component_norms(W: Float[Tensor, "*instances tokens features"]) -> Float[Tensor, "*instances components"]:
    """The norm of each Fourier component of W along its token axis: ||(F W)_c|| over the features (the paper's
    Figure 3 for W = W_E)."""
    F = fourier_basis(W.shape[-2], W.dtype).to(W.device)
    return torch.linalg.vector_norm(F @ W, dim=-1)


def frequency_norms(components: Float[Tensor, "*instances components"]) -> Float[Tensor, "*instances frequencies"]:
    """Per frequency k, the norm of its cos and sin components together, sqrt(|c_{2k-1}|^2 + |c_{2k}|^2)."""
    pairs = components[..., 1:].unflatten(-1, (-1, 2))
    return torch.linalg.vector_norm(pairs, dim=-1)


def key_frequencies(norms: Float[Tensor, "*instances frequencies"], fraction: float = KEY_FRACTION
                    ) -> Bool[Tensor, "*instances frequencies"]:
    """The key frequencies: those whose norm is at least ``fraction`` of the largest (none for an all-zero W)."""
    top = norms.amax(dim=-1, keepdim=True)
    return (norms >= fraction * top) & (top > 0)


def gini(values: Float[Tensor, "*instances units"]) -> Float[Tensor, "*instances"]:
    """Gini coefficient of non-negative ``values`` (Hurley & Rickard 2009, the paper's §5.1): with c sorted
    ascending, 1 - 2 sum_i (c_i / |c|_1) (n - i + 1/2) / n. 0 for equal values, 1 - 1/n for a single non-zero."""
    c, _ = torch.sort(values.to(torch.float64), dim=-1)
    n = c.shape[-1]
    i = torch.arange(1, n + 1, dtype=torch.float64, device=c.device)
    total = c.sum(-1, keepdim=True)
    share = torch.where(total > 0, c / total.clamp(min=torch.finfo(torch.float64).tiny), 0.0)
    return 1 - 2 * (share * (n - i + 0.5) / n).sum(-1)


def wave_directions(P: int, sign: int = 1, dtype: torch.dtype = torch.float64) -> Float[Tensor, "directions pairs"]:
    """Unit vectors over the P^2 pairs (a * P + b): rows 2(k-1) and 2(k-1)+1 are cos(w_k (a + sign b)) and
    sin(w_k (a + sign b)) normalised (sign +1: addition's waves; -1: subtraction's). Orthonormal rows."""
    a = torch.arange(P, dtype=torch.float64).view(P, 1)
    b = torch.arange(P, dtype=torch.float64).view(1, P)
    rows = []
    for k in range(1, n_frequencies(P) + 1):
        phase = (2 * math.pi * k / P) * (a + sign * b)
        rows += [torch.cos(phase).flatten(), torch.sin(phase).flatten()]
    d = torch.stack(rows)
    return (d / d.norm(dim=1, keepdim=True)).to(dtype)


def wave_parts(logits: Float[Tensor, "*instances pairs outputs"], keep: Bool[Tensor, "*instances frequencies"],
               sign: int = 1) -> Float[Tensor, "*instances pairs outputs"]:
    """The part of the logits (over all P^2 pairs) along the waves cos / sin(w_k (a + sign b)) of the frequencies
    in ``keep``: the orthogonal projection onto them along the pair axis, for every output separately (the paper's
    code's ``get_component_cos_xpy`` + ``..._sin_xpy``)."""
    P = math.isqrt(logits.shape[-2])
    D = wave_directions(P, sign, logits.dtype).to(logits.device)
    if keep.numel() == keep.shape[-1]:  # one set of frequencies: only its waves (a few of the (P - 1) / 2)
        rows = keep.reshape(-1).repeat_interleave(2)
        return torch.einsum("dp,...do->...po", D[rows], torch.einsum("dp,...po->...do", D[rows], logits))
    coefficients = torch.einsum("dp,...po->...do", D, logits)
    coefficients = coefficients * keep.repeat_interleave(2, dim=-1).unsqueeze(-1).to(logits.dtype)
    return torch.einsum("dp,...do->...po", D, coefficients)


def restricted_logits(logits: Float[Tensor, "*instances pairs outputs"], keep: Bool[Tensor, "*instances frequencies"],
                      sign: int = 1) -> Float[Tensor, "*instances pairs outputs"]:
    """Only the key waves and the constant term (each output's mean over the pairs) kept: the logits of the paper's
    restricted loss (§5.1)."""
    return logits.mean(dim=-2, keepdim=True) + wave_parts(logits, keep, sign)


def excluded_logits(logits: Float[Tensor, "*instances pairs outputs"], keep: Bool[Tensor, "*instances frequencies"],
                    sign: int = 1) -> Float[Tensor, "*instances pairs outputs"]:
    """The key waves removed, everything else kept: the logits of the paper's excluded loss (§5.1)."""
    return logits - wave_parts(logits, keep, sign)


def neuron_frequencies(acts: Float[Tensor, "*instances pairs neurons"]
                       ) -> tuple[Tensor, Float[Tensor, "*instances neurons"]]:
    """Each neuron's best frequency and the share of its variance over the P^2 pairs that frequency explains.

    The activations are centred over the pairs and written in the 2D Fourier basis of (a, b); frequency k explains
    the squared coefficients of the 3 x 3 block {const, cos_k, sin_k} x {const, cos_k, sin_k} (its linear and
    quadratic terms: the paper's §4.3 and its code's ``extract_freq_2d``), divided by the neuron's total. Returns
    (best k (1-based) per neuron, its share); a constant neuron gets k = 0 and share 0."""
    P = math.isqrt(acts.shape[-2])
    x = acts - acts.mean(dim=-2, keepdim=True)
    F = fourier_basis(P, acts.dtype).to(acts.device)
    grid = x.unflatten(-2, (P, P))  # (*, a, b, neurons)
    coef = torch.einsum("fa,...abn,gb->...fgn", F, grid, F).pow(2)
    total = coef.sum(dim=(-3, -2))
    K = n_frequencies(P)
    cs = torch.arange(K, device=acts.device) * 2 + 1  # cos_k rows; sin_k is the next
    rows = torch.stack([cs, cs + 1], -1)  # (K, 2)
    both = coef[..., rows.unsqueeze(-1), rows.unsqueeze(-2), :].sum(dim=(-3, -2))  # (*, K, neurons): cos/sin x cos/sin
    linear = coef[..., 0, rows, :].sum(-2) + coef[..., rows, 0, :].sum(-2)  # const x wave and wave x const
    share = (both + linear) / total.unsqueeze(-2).clamp(min=torch.finfo(acts.dtype).tiny)
    best, k = share.max(dim=-2)
    alive = total > 0
    return torch.where(alive, k + 1, 0), torch.where(alive, best, 0.0)
