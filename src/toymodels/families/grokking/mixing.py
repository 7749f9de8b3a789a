"""Each row's attention output, already mapped into the neurons and the logits, as a sparse product.

The last position's attention output, through W_O and then W_in (or W_U), is a sum over heads and positions of the
attention weight times a row of a table indexed by (head, position, token): R[h, j, t] = (W_E[t] + W_pos[j]) W_V^h
W_O^h W_in. A row of the batch uses a handful of those table rows, so the product is a sparse (rows x table rows)
matrix of attention weights times the dense table: a few multiply-adds per used table entry instead of a
(heads d_head) x d_mlp product per row. Forward and backward are torch's CSR kernels (MKL on the CPU): the table's
gradient is the transposed matrix times the output gradient, the weights' gradient the output gradient sampled at
the non-zeros (``torch.sparse.sampled_addmm``). Every sum runs over one row's non-zeros or one table row's users in
row order, so an instance gets the same numbers in any group and with any thread count (tests/families/grokking).
"""

from __future__ import annotations

import warnings

import torch
from jaxtyping import Float, Int
from torch import Tensor


def _csr(values: Tensor, crow: Tensor, col: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():  # torch calls its CSR support beta; the kernels used here are MKL's own
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _times(S: Tensor, T: Tensor) -> Tensor:
    """S @ T for CSR S and dense T, written into a fresh tensor: torch's ``addmm`` with beta 0 and ``out`` (which
    never reads the uninitialised output) took 15 ms where ``torch.sparse.mm`` took 58 ms for 6 x 3,830 rows."""
    out = torch.empty(S.shape[0], T.shape[1], dtype=T.dtype, device=T.device)
    return torch.addmm(out, S, T, beta=0.0, out=out)


class SparseMix(torch.autograd.Function):
    """``outputs[k] = S @ tables[k]`` for the CSR matrix S of (``values``, ``crow``, ``col``, ``shape``)."""

    @staticmethod
    def forward(ctx, values: Tensor, crow: Tensor, col: Tensor, shape: tuple[int, int], *tables: Tensor
                ) -> tuple[Tensor, ...]:
        S = _csr(values, crow, col, shape)
        ctx.save_for_backward(values, crow, col, *tables)
        ctx.shape = shape
        return tuple(_times(S, T.contiguous()) for T in tables)

    @staticmethod
    def backward(ctx, *grads: Tensor) -> tuple[Tensor | None, ...]:
        values, crow, col, *tables = ctx.saved_tensors
        S = _csr(values, crow, col, ctx.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # the transpose as CSR: each table row sums its users' gradients in row order (one thread per row)
            St = S.t().to_sparse_csr()
        d_values = torch.zeros_like(values)
        d_tables = []
        for T, g in zip(tables, grads):
            if g is None:
                d_tables.append(None)
                continue
            g = g.contiguous()
            if ctx.needs_input_grad[0]:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    d_values = d_values + torch.sparse.sampled_addmm(S, g, T.t(), beta=0.0).values()
            d_tables.append(_times(St, g))
        return (d_values, None, None, None, *d_tables)


def mix(weights: Float[Tensor, "instances batch terms"], columns: Int[Tensor, "instances batch terms"],
        tables: list[Float[Tensor, "instances entries features"]]) -> list[Float[Tensor, "instances batch features"]]:
    """For every instance and row, sum_k weights[k] tables[columns[k]]: each table is (instances, entries, width);
    a row's ``columns`` must be distinct and increasing (CSR order)."""
    I, B, n = weights.shape
    entries = tables[0].shape[1]
    col = (columns + torch.arange(I, device=columns.device).view(I, 1, 1) * entries).reshape(-1)
    crow = torch.arange(0, I * B * n + 1, n, device=columns.device)
    flat = [T.reshape(I * entries, -1) for T in tables]
    out = SparseMix.apply(weights.reshape(-1), crow, col, (I * B, I * entries), *flat)
    return [o.view(I, B, -1) for o in out]
