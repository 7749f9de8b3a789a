"""The EM model's hot layers as autograd functions: fewer passes over memory than autograd's generic backward.

* ``InstanceLinear``: y = x W^T (+ b) per instance, the gradient of W computed in W's own layout (no transposing copy);
* ``SquaredError``: the per-instance squared error with a one-pass backward;
* ``SparseLinear``: layer 2 for instances whose hidden activations are mostly exactly zero (negative biases, the
  monosemantic regime): the forward product and W2's gradient read only the non-zero activations (a CSR matrix,
  MKL's sparse x dense product); chosen per instance and per step by ``sparse_instances``.

Every function here gives the numbers of the plain formula: the first two bit for bit (same products, same order),
``SparseLinear`` to float rounding (its sums skip zeros and run in another order).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

#: From this many entries per weight matrix, and this many inputs, its gradient is computed in its own layout
#: (``weight_grad``): the paper-size W1 (1024 x 64) and W2; the quick-size ones stay as they were.
DIRECT_GRAD_MIN = 1 << 15
DIRECT_GRAD_MIN_IN = 16
#: An instance takes the sparse layer 2 when at most this share of its hidden activations is non-zero ...
#: Measured per step on the paper-size model at batch 128 (2 cores): 1.30x at 0.1% non-zero, 1.06x at 1%, 0.94x at
#: 3.7%.
SPARSE_MAX_DENSITY = 0.015
#: ... and its layer-2 product has at least this many multiply-adds (batch x neurons x outputs): below it the dense
#: GEMM is too short for the sparse path's fixed costs (index building, gathering and scattering W2's active columns)
#: to pay off. This also keeps the smoke and quick presets on the dense path, bit-identical to earlier versions.
SPARSE_MIN_MACS = 1 << 25
#: The density is measured on this many samples of each batch.
DENSITY_ROWS = 32
#: Below this share of non-zero activations the hidden gradient is one dot product per non-zero (else a GEMM).
DOT_MAX_DENSITY = 0.005


def weight_grad(x: Tensor, g: Tensor) -> Tensor:
    """W's gradient g^T x per instance, in W's own (instances, outputs, inputs) layout.

    bmm's own backward computes x^T g, the gradient of the view W^T, which autograd then copies into W's layout: a
    transposing copy of the largest tensor every step (~10% of a batch-128 step). For large matrices on the CPU g^T x
    is computed directly: MKL sums the same products in the same order there (bit-identical in all 480 shapes tried:
    batch 32-4096, in 16-2048, out 16-2048, 1 and 2 threads, 1 and 3 instances), but not for inner sizes 4 and 8
    (they differ in the last bit), which keep the product and the copy (cheap at that size). GPUs keep it too (the
    copy is cheap there).
    """
    if g.device.type == "cpu" and x.shape[-1] >= DIRECT_GRAD_MIN_IN and g.shape[-1] * x.shape[-1] >= DIRECT_GRAD_MIN:
        return torch.bmm(g.transpose(1, 2), x)
    return torch.bmm(x.transpose(1, 2), g).transpose(1, 2).contiguous()


class InstanceLinear(torch.autograd.Function):
    """y = x W^T (+ b) per instance, W's gradient computed in W's layout (``weight_grad``), bit-identical to
    autograd's bmm/baddbmm backward."""

    @staticmethod
    def forward(ctx, x: Tensor, W: Tensor, b: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, W)
        ctx.has_bias = b is not None
        if b is None:
            return torch.bmm(x, W.transpose(1, 2))
        # baddbmm fuses the bias add into the GEMM
        return torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2))

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, W = ctx.saved_tensors
        dx = torch.bmm(g, W) if ctx.needs_input_grad[0] else None
        dW = weight_grad(x, g) if ctx.needs_input_grad[1] else None
        db = g.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dW, db


class SquaredError(torch.autograd.Function):
    """Per-instance sum of (out - y)^2, whose backward is one pass: the same numbers as autograd's pow backward
    (g * (2 (out - y)), one rounding) without its extra copy and product of the whole output."""

    @staticmethod
    def forward(ctx, out: Tensor, y: Tensor) -> Tensor:
        diff = out - y
        ctx.save_for_backward(diff)
        return diff.pow(2).sum(dim=(1, 2))

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None]:
        (diff,) = ctx.saved_tensors
        # (2 g) diff and g (2 diff) are the same real number rounded once: doubling is exact in floating point
        return diff * (2 * g).view(-1, 1, 1), None


def sparse_instances(h: Tensor, n_out: int, mode: str) -> list[int]:
    """The instances whose layer 2 runs sparse this step: ``mode`` "off" none, "on" all, "auto" those with at most
    ``SPARSE_MAX_DENSITY`` non-zero activations when the product is large enough (``SPARSE_MIN_MACS``).

    Decided per instance from its own activations only, so an instance takes the same path in any group (a group
    stays bit-identical to its instances alone) and on resume (nothing to save). Reading the density is a host
    sync, so "auto" stays dense on a GPU.
    """
    if mode == "off":
        return []
    if mode == "on":
        return list(range(h.shape[0]))
    if mode != "auto":
        raise ValueError(f"EMModel.sparse: must be one of 'auto', 'on', 'off' (got {mode!r})")
    I, B, k = h.shape
    # MKL's sparse products are float32/float64 only (a bf16 autocast run stays dense)
    if h.device.type != "cpu" or h.dtype not in (torch.float32, torch.float64) or B * k * n_out < SPARSE_MIN_MACS:
        return []
    # the first rows of the batch estimate the density well (thousands of entries) at a fraction of a full pass
    rows = min(B, DENSITY_ROWS)
    nonzero = torch.count_nonzero(h[:, :rows].reshape(I, -1), dim=1).tolist()
    return [i for i, n in enumerate(nonzero) if n <= SPARSE_MAX_DENSITY * rows * k]


def csr(crow: Tensor, col: Tensor, vals: Tensor, size: tuple[int, int]) -> Tensor:
    """A CSR matrix from indices built here (valid by construction: torch's invariant checks skipped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's one-time "sparse CSR support is in beta" notice
        return torch.sparse_csr_tensor(crow, col, vals, size, check_invariants=False)


class SparseLinear(torch.autograd.Function):
    """out = h W^T per instance, the instances listed in ``sparse`` through their non-zero activations only.

    Those instances' non-zeros form one block-diagonal CSR matrix over the active (instance, neuron) pairs, so one
    MKL sparse x dense product serves them all: forward H W_A^T and W's gradient (H^T g)^T, W_A being the active
    neurons' columns of W (a neuron silent on the whole batch gets an exactly-zero gradient column). The hidden
    gradient g W is needed only where h is non-zero when ``relu`` (its backward zeroes the rest): one dot product
    per non-zero while they are few (``DOT_MAX_DENSITY``), else the dense product. Unlisted instances take exactly
    the dense path.
    """

    @staticmethod
    def forward(ctx, h: Tensor, W: Tensor, sparse: list[int], relu: bool) -> Tensor:
        I, B, k = h.shape
        n_out = W.shape[1]
        listed = set(sparse)
        dense = [i for i in range(I) if i not in listed]
        out = None
        if dense:
            out = h.new_empty(I, B, n_out)
            d = torch.tensor(dense, device=h.device)
            out[d] = torch.bmm(h[d], W[d].transpose(1, 2))
        S = len(sparse)
        s = torch.tensor(sparse, device=h.device)
        hs = (h[s] if dense else h).reshape(-1)  # all sparse: no gathering copy
        flat = hs.nonzero().squeeze(1)
        vals = hs[flat]
        row = flat // k  # row of the stacked (sparse instances x batch, active neurons) matrix
        active, col = torch.unique((flat // (B * k)) * k + flat % k, return_inverse=True)
        Wa = W[s[active // k], :, active % k]  # (active neurons, outputs): the active neurons' columns of W
        crow = torch.zeros(S * B + 1, dtype=torch.long, device=h.device)
        crow[1:] = torch.bincount(row, minlength=S * B).cumsum(0)
        if flat.numel():
            product = torch.sparse.mm(csr(crow, col, vals, (S * B, active.numel())), Wa).view(S, B, n_out)
        else:
            product = h.new_zeros(S, B, n_out)
        if dense:
            out[s] = product
        else:  # every instance sparse (the usual case): no scatter into a second buffer
            out = product
        ctx.save_for_backward(h, W, flat, row, col, vals, active, Wa)
        ctx.sparse, ctx.dense, ctx.relu = sparse, dense, relu
        return out

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        h, W, flat, row, col, vals, active, Wa = ctx.saved_tensors
        B, k = h.shape[1:]
        n_out = W.shape[1]
        S = len(ctx.sparse)
        s = torch.tensor(ctx.sparse, device=h.device)
        d = torch.tensor(ctx.dense, device=h.device)
        gs = (g[s] if ctx.dense else g).reshape(S * B, n_out)
        dh = None
        if ctx.needs_input_grad[0]:
            if ctx.relu and flat.numel() <= DOT_MAX_DENSITY * S * B * k:
                dots = torch.zeros(S * B * k, dtype=h.dtype, device=h.device)
                dots[flat] = (gs[row] * Wa[col]).sum(1)
                if ctx.dense:
                    dh = torch.zeros_like(h)
                    dh[d] = torch.bmm(g[d], W[d])
                    dh[s] = dots.view(S, B, k)
                else:
                    dh = dots.view(S, B, k)
            else:
                dh = torch.bmm(g, W)
        dW = None
        if ctx.needs_input_grad[1]:
            if ctx.dense:
                dW = torch.empty_like(W)
                dW[d] = weight_grad(h[d], g[d])
                dW[s] = 0.0
            else:
                dW = torch.zeros_like(W)
            if flat.numel():
                # H^T as CSR: the non-zeros ordered by active neuron, then row
                order = torch.argsort(col * (S * B) + row)
                ccol = torch.zeros(active.numel() + 1, dtype=torch.long, device=h.device)
                ccol[1:] = torch.bincount(col, minlength=active.numel()).cumsum(0)
                Ht = csr(ccol, row[order], vals[order], (active.numel(), S * B))
                dW[s[active // k], :, active % k] = torch.sparse.mm(Ht, gs)
        return dh, dW, None, None
