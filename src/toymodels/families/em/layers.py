"""The EM model's hot layers as autograd functions: fewer passes over memory than autograd's generic backward.

* ``InstanceLinear``: y = x W^T (+ b) per instance, the gradient of W computed in W's own layout (no transposing copy);
* ``SquaredError``: the per-instance squared error with a one-pass backward;
* ``SparseMLP``: ReLU, layer 2 and both layers' gradients for instances whose hidden activations are mostly exactly
  zero (negative biases, the monosemantic regime), through the non-zero activations only (a CSR matrix per
  instance, MKL's sparse x dense products and a sampled product for the hidden gradient); chosen per instance and
  per step by ``sparse_instances``.

Every function here gives the numbers of the plain formula: the first two bit for bit (same products, same order),
``SparseMLP`` to float rounding for its sparse instances (its sums skip zeros and run in another order).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

#: From this many entries per weight matrix, and this many inputs, its gradient is computed in its own layout
#: (``weight_grad``): the paper-size W1 (1024 x 64) and W2; the quick-size ones stay as they were.
DIRECT_GRAD_MIN = 1 << 15
DIRECT_GRAD_MIN_IN = 16
#: An instance's training step takes the sparse path (``SparseMLP``) when at most this share of its hidden
#: activations is non-zero: below the crossover where a sparse step is as fast as a dense one, measured by
#: benchmarks/sparse_step.py on the paper-size model (N=512, m=64, k=1024; biases shifted so that nearly every neuron
#: fires somewhere in a batch, the path's harder case), 2-core machine: 13% at batch 256, 15% at 512, 16% at 1024
#: and 2048, 15% at 8192 (2 threads; 15% at 1 thread). Below it the step is faster, e.g. at batch 8192: 5.2x at 1%
#: non-zero, 2.9x at 4%, 1.7x at 8% (1 thread; 4.7x, 2.7x, 1.7x at 2 threads).
SPARSE_MAX_DENSITY = 0.12
#: ... or this share below ``SPARSE_SMALL_BATCH`` samples, where the fixed costs (W2 and its gradient transposed, the
#: index building) weigh more: batch 128 crosses over at 8.0% (2 threads; 13% at 1 thread); its sparse step is
#: 2.1x / 3.2x the dense one at 0.1% non-zero, 1.4x / 2.0x at 1%, 1.3x / 1.9x at 2%, 1.2x / 1.7x at 4% (2 / 1
#: threads).
SPARSE_MAX_DENSITY_SMALL = 0.06
SPARSE_SMALL_BATCH = 256
#: ... and its layer-2 product has at least this many multiply-adds (batch x neurons x outputs): below it the dense
#: GEMM is too short for the sparse path's fixed costs (index building, W2 transposed or its active columns gathered)
#: to pay off. This also keeps the smoke and quick presets on the dense path, bit-identical to earlier versions.
SPARSE_MIN_MACS = 1 << 25
#: The density is measured on this many samples of each batch.
DENSITY_ROWS = 32
#: The sparse path gathers an instance's active neurons' columns of W2 (non-zero somewhere in the batch) when at most
#: this share of the neurons is active, else it transposes W2 whole (and back for its gradient). Gathering and
#: scattering cost ~3.4 us per active neuron, the two transposes ~0.4 ms (paper size, 1 thread): a step of a model
#: with 6% of its neurons active took 2.92 ms gathered, 3.24 ms transposed; 12%: 3.49 / 3.58 ms; 30%: 3.46 / 2.72 ms.
COMPACT_MAX_ACTIVE = 0.125


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


def sparse_instances(pre: Tensor, n_out: int, mode: str) -> list[int]:
    """The instances whose step runs sparse: ``mode`` "off" none, "on" all, "auto" those with at most
    ``SPARSE_MAX_DENSITY`` (``SPARSE_MAX_DENSITY_SMALL`` for small batches) non-zero ReLU activations (positive
    entries of ``pre``, layer 1's output) when layer 2's product is large enough (``SPARSE_MIN_MACS``).

    Decided per instance from its own activations only, so an instance takes the same path in any group (a group
    stays bit-identical to its instances alone) and on resume (nothing to save). Reading the density is a host
    sync, so "auto" stays dense on a GPU.
    """
    if mode == "off":
        return []
    if mode == "on":
        return list(range(pre.shape[0]))
    if mode != "auto":
        raise ValueError(f"EMModel.sparse: must be one of 'auto', 'on', 'off' (got {mode!r})")
    _, B, k = pre.shape
    # MKL's sparse products are float32/float64 only (a bf16 autocast run stays dense)
    if pre.device.type != "cpu" or pre.dtype not in (torch.float32, torch.float64) or B * k * n_out < SPARSE_MIN_MACS:
        return []
    # the first rows of the batch estimate the density well (thousands of entries) at a fraction of a full pass
    rows = min(B, DENSITY_ROWS)
    positive = (pre[:, :rows] > 0).sum((1, 2)).tolist()
    limit = SPARSE_MAX_DENSITY if B >= SPARSE_SMALL_BATCH else SPARSE_MAX_DENSITY_SMALL
    return [i for i, n in enumerate(positive) if n <= limit * rows * k]


_CSR_NOTICE = {"silenced": False}


def csr(crow: Tensor, col: Tensor, vals: Tensor, size: tuple[int, int]) -> Tensor:
    """A CSR matrix from indices built here (valid by construction: torch's invariant checks skipped)."""
    if _CSR_NOTICE["silenced"]:
        return torch.sparse_csr_tensor(crow, col, vals, size, check_invariants=False)
    with warnings.catch_warnings():  # torch's "sparse CSR support is in beta" notice, given once per process
        warnings.simplefilter("ignore")
        _CSR_NOTICE["silenced"] = True
        return torch.sparse_csr_tensor(crow, col, vals, size, check_invariants=False)


def product(A: Tensor, B: Tensor, out: Tensor) -> Tensor:
    """out = A B for a CSR matrix A, in place: ``addmm_`` with beta 0 skips the zero matrix and the copy that
    ``torch.mm``/``torch.sparse.mm`` add (~40% of the product's time here)."""
    if A.values().numel() == 0:
        return out.zero_()
    return out.addmm_(A, B, beta=0.0)


class Pattern:
    """One instance's non-zero hidden activations h (batch, neurons) as a CSR matrix over its columns: the active
    neurons only (those non-zero somewhere in the batch) when at most ``COMPACT_MAX_ACTIVE`` of them are, else all.

    ``flat``: the non-zeros' positions in h, row-major (CSR order); ``row``/``col``/``vals`` their row, column and
    value; ``active``: the neurons behind the columns (None: column j is neuron j); ``counts``: non-zeros per column.
    """

    def __init__(self, h: Tensor):
        B, k = h.shape
        self.flat = h.reshape(-1).nonzero().squeeze(1)
        self.vals = h.reshape(-1).take(self.flat)
        self.row = self.flat.div(k, rounding_mode="floor")
        col = self.neuron = self.flat.remainder(k)
        counts = torch.bincount(col, minlength=k)
        self.active = None
        if int(torch.count_nonzero(counts)) <= COMPACT_MAX_ACTIVE * k:
            self.active = counts.nonzero().squeeze(1)
            renumber = torch.empty_like(counts).index_copy_(0, self.active, torch.arange(
                self.active.numel(), device=h.device))
            col, counts = renumber[col], counts[self.active]
        self.col, self.counts = col, counts
        self.shape = (B, counts.numel())
        # row r's non-zeros start at the first position >= r k
        crow = torch.searchsorted(self.flat, torch.arange(0, B * k + 1, k, device=h.device))
        self.H = csr(crow, col, self.vals, self.shape)

    def columns(self, W: Tensor) -> Tensor:
        """W (outputs, neurons) as the dense (columns, outputs) factor of H W^T: W^T, or its active rows."""
        if self.active is None:
            return W.t().contiguous()  # a 2D transposing copy is ~5x faster than torch's batched one
        return W.index_select(1, self.active).t().contiguous()  # row-wise gather, then a small transpose

    def by_column(self) -> tuple[Tensor, Tensor, Tensor]:
        """H^T's pattern: the non-zeros' order by column (a stable sort keeps each column's rows ascending), its
        column pointers and row indices."""
        order = torch.sort(self.col, stable=True).indices
        ccol = torch.zeros(self.shape[1] + 1, dtype=torch.long, device=self.col.device)
        ccol[1:] = self.counts.cumsum(0)
        return order, ccol, self.row[order]

    def transposed(self, pattern: tuple[Tensor, Tensor, Tensor], values: Tensor) -> Tensor:
        """H^T as CSR with the pattern ``by_column`` and ``values`` (one per non-zero, in H's order)."""
        order, ccol, rows = pattern
        return csr(ccol, rows, values[order], (self.shape[1], self.shape[0]))

    def rows_product(self, Ht: Tensor, X: Tensor, dst: Tensor) -> None:
        """Ht X ((columns, batch) x (batch, n)) into dst (neurons, n): rows of silent neurons exactly zero."""
        if self.active is None:
            product(Ht, X, dst)
        else:
            dst.zero_().index_copy_(0, self.active, product(Ht, X, X.new_empty(self.shape[1], X.shape[1])))

    def weight_grad(self, Ht: Tensor, g: Tensor, dW: Tensor, spare: Tensor) -> None:
        """W's gradient (H^T g)^T into dW (outputs, neurons), computed in ``spare`` (a (columns, outputs) buffer no
        longer needed: one fresh 2 MB block fewer per step). A silent neuron's column is exactly zero, as in the
        dense product."""
        product(Ht, g, spare)
        if self.active is None:
            dW.copy_(spare.t())
        else:
            dW.zero_()
            dW.index_copy_(1, self.active, spare.t())


class SparseMLP(torch.autograd.Function):
    """ReLU and layer 2 of the EM model, and the gradients of both layers, through the non-zero hidden activations
    of the instances listed in ``sparse``: ``(out, h)`` from layer 1's output ``pre`` (computed by the caller with
    the dense path's own product, without a graph: its gradients come from here).

    Each listed instance's non-zeros form a CSR matrix H (``Pattern``); MKL's sparse x dense products give the
    forward H W2^T, W2's gradient (H^T g)^T and W1's gradient D^T x (D: the pre-activation gradient, non-zero only
    where h is, in W1's own layout: no transposing copy), and a sampled product (torch.sparse.sampled_addmm) the
    hidden gradient g W2 at the non-zeros only (ReLU's backward zeroes the rest). Instances are handled one by one,
    so an instance's numbers do not depend on its group. Unlisted instances repeat the dense path's operations
    (``InstanceLinear``, ReLU, autograd's sum of the two hidden gradients): the same bits as without this function.
    """

    @staticmethod
    def forward(ctx, x: Tensor, W1: Tensor, b1: Tensor, W2: Tensor, pre: Tensor,
                sparse: list[int]) -> tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)  # no L1 term: no hidden-gradient tensor of zeros
        I, B = pre.shape[:2]
        h = torch.relu(pre)
        listed = set(sparse)
        dense = [i for i in range(I) if i not in listed]
        out = h.new_empty(I, B, W2.shape[1])
        if dense:
            d = torch.tensor(dense, device=h.device)
            out[d] = torch.bmm(h[d], W2[d].transpose(1, 2))
        patterns, factors = [], []
        for i in sparse:
            p = Pattern(h[i])
            Wt = p.columns(W2[i])
            product(p.H, Wt, out[i])
            patterns.append(p)
            factors.append(Wt)
        ctx.save_for_backward(x, W1, W2, h)
        ctx.patterns, ctx.factors, ctx.sparse, ctx.dense = patterns, factors, sparse, dense
        return out, h

    @staticmethod
    def backward(ctx, g: Tensor | None, g_h: Tensor | None):
        x, W1, W2, h = ctx.saved_tensors
        need_x, need_W1, need_b1, need_W2 = ctx.needs_input_grad[:4]
        if g is None:
            g = torch.zeros(h.shape[:2] + (W2.shape[1],), dtype=h.dtype, device=h.device)
        g = g.contiguous()
        dpre = torch.zeros_like(h)
        dW1 = torch.empty_like(W1) if need_W1 else None
        db1 = torch.empty(W1.shape[:2], dtype=W1.dtype, device=W1.device) if need_b1 else None
        dW2 = torch.empty_like(W2) if need_W2 else None
        if ctx.dense:  # the dense path's operations, in its order
            d = torch.tensor(ctx.dense, device=h.device)
            hd, gd = h[d], g[d]
            dh = torch.bmm(gd, W2[d])
            if g_h is not None:
                dh = dh + g_h[d]
            dpre_d = torch.ops.aten.threshold_backward(dh, hd, 0)  # ReLU's backward
            dpre[d] = dpre_d
            if need_W1:
                dW1[d] = weight_grad(x[d], dpre_d)
            if need_b1:
                db1[d] = dpre_d.sum(1)
            if need_W2:
                dW2[d] = weight_grad(hd, gd)
        for j, (i, p) in enumerate(zip(ctx.sparse, ctx.patterns)):
            # W2's factor from the forward, used up below as a buffer: a second backward (retain_graph) remakes it
            Wt = ctx.factors[j] if ctx.factors[j] is not None else p.columns(W2[i])
            ctx.factors[j] = None
            dots = torch.sparse.sampled_addmm(p.H, g[i], Wt.t(), beta=0.0).values()
            if g_h is not None:
                dots = dots + g_h[i].reshape(-1).take(p.flat)
            dpre[i].view(-1).index_copy_(0, p.flat, dots)
            by_column = p.by_column()
            if need_W2:  # after the hidden gradient: Wt is free now
                p.weight_grad(p.transposed(by_column, p.vals), g[i], dW2[i], Wt)
            if need_W1:
                p.rows_product(p.transposed(by_column, dots), x[i], dW1[i])  # W1's own layout
            if need_b1:
                db1[i].zero_().index_add_(0, p.neuron, dots)
        dx = torch.bmm(dpre, W1) if need_x else None
        return dx, dW1, db1, dW2, None, None
