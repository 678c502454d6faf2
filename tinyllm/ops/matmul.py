"""Matrix multiplication, the op where a GPT spends most of its time.

For ``out = a @ b`` with ``a`` (..., n, k) and ``b`` (..., k, m), each output entry
is ``out[i, j] = Σ_k a[i, k] b[k, j]``, so

    dLoss/da = g @ bᵀ        (..., n, m) @ (..., m, k) -> (..., n, k)
    dLoss/db = aᵀ @ g        (..., k, n) @ (..., n, m) -> (..., k, m)

with the batch axes (the ``...``) broadcast like any elementwise op, and the
gradient summed back over the batch axes an input was broadcast along.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, as_tensors, from_op, sum_to_shape


def _check_shapes(a: Tensor, b: Tensor) -> None:
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: both operands need 2 or more dimensions")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: inner sizes {a.shape[-1]} and {b.shape[-2]} differ")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: batch dimensions cannot be broadcast") from None


def matmul(a, b) -> Tensor:
    a, b = as_tensors("matmul", a, b)
    _check_shapes(a, b)
    k, m = b.shape[-2], b.shape[-1]
    # A 2-D b (a Linear layer's weight) is shared by every row of a batched a.
    # Folding a's batch axes into rows makes each product one large GEMM,
    # (B·T, k) @ (k, m), instead of B small ones: BLAS is much faster that way.
    shared_b = b.ndim == 2 and a.ndim > 2
    if shared_b:
        out = (a.data.reshape(-1, k) @ b.data).reshape(*a.shape[:-1], m)
    else:
        out = a.data @ b.data

    def backward(g):
        # BEGIN EXERCISE 2.3: backward of matmul: dA = g @ Bᵀ, dB = Aᵀ @ g (summed over broadcast batch axes)
        grad_a = grad_b = None
        if shared_b:
            g2 = g.reshape(-1, m)  # (B·T, m)
            if a.requires_grad:
                grad_a = (g2 @ b.data.T).reshape(a.shape)  # (B·T, m) @ (m, k)
            if b.requires_grad:
                grad_b = a.data.reshape(-1, k).T @ g2  # (k, B·T) @ (B·T, m): summed over the batch
            return grad_a, grad_b
        if a.requires_grad:
            grad_a = sum_to_shape(g @ b.data.swapaxes(-1, -2), a.shape)
        if b.requires_grad:
            grad_b = sum_to_shape(a.data.swapaxes(-1, -2) @ g, b.shape)
        return grad_a, grad_b
        # END EXERCISE
    return from_op(out, (a, b), backward, "matmul")
