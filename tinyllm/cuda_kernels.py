"""Fused GPU kernels: GELU, softmax, LayerNorm, dropout and AdamW in a pass or three over memory.

In NumPy style a formula is a chain of small steps (square, scale, add, exp, ...)
and every step is one pass over the whole array: each element read and written
once more. On the CPU that is the plain way to write it. On a GPU the arithmetic
is nearly free and the passes are what cost, in memory traffic and in one kernel
launch each: GELU's forward and backward made 19 passes over a (16384, 1536)
array per layer of the char-small model, and PyTorch, which runs each of these
functions as one kernel, was 3x faster at everything but the matrix products.

So on a GPU, functional.py hands these formulas to the kernels below: the same
maths, written once more as a line of CUDA C that CuPy compiles (on first use,
cached on disk) into one kernel.

- ``ElementwiseKernel(inputs, outputs, body)``: one thread per element runs
  ``body``, reading its inputs and writing its outputs once. Inputs broadcast as
  in NumPy (a (C,) weight against (N, C) rows; a scalar such as ``eps``).
- ``ReductionKernel(inputs, output, map, reduce, post_map, identity)``: along the
  reduced axis each element is mapped (``map``), the results combined pairwise
  (``reduce``, of ``a`` and ``b``, starting from ``identity``), and the total
  written through ``post_map``. Here every reduction runs along the last axis
  with ``keepdims``: (..., C) -> (..., 1). What is combined may be a small struct
  (``reduce_type``, declared in ``preamble``): softmax carries a max and a sum together.

``T`` is the arrays' float type (float32, or float64 in gradient checks; 16 bits for attention
under amp.autocast). CuPy takes it from the arrays handed in, as it takes ``A``, the type softmax sums in.
tests/test_devices.py checks on a GPU machine that each op agrees with its NumPy
version. Nothing here imports CuPy before a kernel is first called.
"""
from __future__ import annotations

import math

from .backend import array_module, sum_dtype


class _Kernel:
    """A CuPy kernel, made on its first call (so importing this module needs no CuPy)."""

    def __init__(self, kind: str, *args: str, **options: str):
        self.kind, self.args, self.options = kind, args, options  # CuPy's arguments: strings of CUDA C
        self.kernel = None

    def __call__(self, *inputs, **options):
        if self.kernel is None:
            import cupy
            self.kernel = getattr(cupy, self.kind)(*self.args, **self.options)
        return self.kernel(*inputs, **options)


def _elementwise(inputs: str, outputs: str, body: str, name: str) -> _Kernel:
    """One GPU thread per element (of the inputs broadcast together) runs ``body``."""
    return _Kernel("ElementwiseKernel", inputs, outputs, body, name)


def _row_sum(inputs: str, output: str, term: str, result: str, name: str) -> _Kernel:
    """A reduction along the last axis: Σ ``term`` over the row, then ``result`` (of that sum, ``a``)."""
    return _Kernel("ReductionKernel", inputs, output, term, "a + b", result, "0", name)


# ---------------------------------------------------------------------------
# GELU: y = x·σ(2u), u = c·(x + k·x³), c = √(2/π), k = 0.044715 (functional.gelu).
# The backward works σ out again from x instead of keeping it: one array less in memory.
# ---------------------------------------------------------------------------
_gelu = _elementwise(
    "T x, T c, T k", "T y",
    "y = x / (T(1) + exp(T(-2) * c * x * (T(1) + k * x * x)))",        # σ(2u) = 1 / (1 + e^(-2u))
    "tinyllm_gelu")
_gelu_backward = _elementwise(
    "T x, T g, T c, T k", "T dx",
    "const T s = T(1) / (T(1) + exp(T(-2) * c * x * (T(1) + k * x * x)));"         # σ(2u)
    "dx = g * (s + x * s * (T(1) - s) * T(2) * c * (T(1) + T(3) * k * x * x))",    # σ + x·σ(1-σ)·2u'
    "tinyllm_gelu_backward")


def gelu(x, c: float, k: float):
    """GELU's forward in one pass: x -> y."""
    return _gelu(x, c, k)


def gelu_backward(x, g, c: float, k: float):
    """GELU's backward in one pass: (x, dL/dy) -> dL/dx."""
    return _gelu_backward(x, g, c, k)


# ---------------------------------------------------------------------------
# Softmax along the last axis: y = e^(x - m) / s with m = max x and s = Σ e^(x - m).
# A masked entry counts as x = -inf: it is left out of m and s, and its y is 0.
#
# m and s come from one pass over the row (the "online softmax"). Each GPU thread
# keeps a running pair (m, s) for the part of the row it reads, and two pairs merge
# into one by rescaling the sum whose max is smaller:
#     (m1, s1) + (m2, s2) = (m1, s1 + s2·e^(m2 - m1))   where m1 >= m2.
# An element x is the pair (x, 1); an empty part (or a masked entry) is (-inf, 0).
#
# ``T`` is the type of the scores and probabilities, ``A`` the one the sums are made in:
# the same, except for 16-bit scores (attention under amp.autocast), whose m, s and Σ g·y
# are float32 while the (T, T) arrays in memory stay 16 bits. ``A(x)`` and ``T(...)`` convert.
# ---------------------------------------------------------------------------
_MAX_AND_SUM = """
struct MaxAndSum {                                   // m: the largest x so far; s: Σ e^(x - m)
    A m, s;
    __device__ MaxAndSum(A m = A(0), A s = A(0)) : m(m), s(s) {}
};
__device__ MaxAndSum merge_max_and_sum(MaxAndSum p, MaxAndSum q) {
    if (p.m < q.m) { MaxAndSum t = p; p = q; q = t; }    // p: the larger max
    // Equal maxima need no rescaling; asking keeps e^(-inf - -inf) = e^NaN out when both are -inf.
    return MaxAndSum(p.m, q.m == p.m ? p.s + q.s : p.s + q.s * exp(q.m - p.m));
}
"""
_row_max_and_sum_exp = _Kernel(                      # minus_inf: -inf, handed in from Python
    "ReductionKernel", "T x, bool masked, A minus_inf", "A m, A s",
    "masked ? MaxAndSum(minus_inf, 0) : MaxAndSum(A(x), 1)", "merge_max_and_sum(a, b)", "m = a.m, s = a.s",
    "MaxAndSum(minus_inf, 0)", "tinyllm_row_max_and_sum_exp",
    reduce_type="MaxAndSum", preamble=_MAX_AND_SUM)
_softmax = _elementwise(
    "T x, bool masked, A m, A s", "T y",
    "y = masked ? T(0) : T(exp(A(x) - m) / s)",
    "tinyllm_softmax")
_softmax_backward = _elementwise(
    "T y, T g, A gy", "T dx",
    "dx = T(A(y) * (A(g) - gy))",                                       # y·(g - Σ g·y)
    "tinyllm_softmax_backward")
_row_dot = _Kernel("ReductionKernel", "T p, T q", "A s", "A(p) * A(q)", "a + b", "s = a", "0",  # Σ p·q, in A
                   "tinyllm_row_dot", reduce_type="A")
# Σ p·q·r along the last axis (r = 1 for a plain dot product): LayerNorm's backward sums.
_row_sum_of_products = _row_sum("T p, T q, T r", "T s", "p * q * r", "s = a", "tinyllm_row_sum_of_products")


def _row_result(x):
    """An empty (..., 1) array of ``sum_dtype``: where a reduction along x's rows writes."""
    return array_module(x).empty(x.shape[:-1] + (1,), sum_dtype(x.dtype))


def softmax_statistics(x, masked=False):
    """m = max x and s = Σ e^(x - m) along the last axis, (..., 1) each, in one pass (log Σ e^x = m + log s).

    ``masked``: a boolean array broadcastable to x, True where an entry is left out;
    every row needs one entry that is not.
    """
    m, s = _row_result(x), _row_result(x)
    _row_max_and_sum_exp(x, masked, sum_dtype(x.dtype).type(-math.inf), m, s, axis=-1, keepdims=True)  # writes both
    return m, s


def softmax(x, masked=False, statistics=None):
    """Softmax along the last axis: y = e^(x - m)/s, in two passes (m and s together, then y),
    or in one when ``statistics`` holds the (m, s) that ``softmax_statistics`` found for x."""
    m, s = statistics if statistics is not None else softmax_statistics(x, masked)
    return _softmax(x, masked, m, s)


def softmax_backward(y, g):
    """Softmax's backward in two passes: dx = y·(g - Σ g·y)."""
    gy = _row_result(y)
    _row_dot(g, y, gy, axis=-1, keepdims=True)
    return _softmax_backward(y, g, gy)


# Σ x², accumulated in double: the squares of gradients past ~1.8e19 overflow float32 (clip_grad_norm_).
_sum_of_squares = _Kernel("ReductionKernel", "T x", "float64 s", "double(x) * double(x)", "a + b", "s = a", "0",
                          "tinyllm_sum_of_squares", reduce_type="double")


def sum_of_squares(x):
    """Σ x² of a 1-D array, in float64: a 0-d array on the device."""
    return _sum_of_squares(x.reshape(1, -1), axis=-1, keepdims=True).reshape(())


# ---------------------------------------------------------------------------
# LayerNorm along the last axis: x̂ = (x - μ)/σ, y = x̂·w + b, σ = √(var + eps).
# The backward, with d = g·w:  dx = (d - mean(d) - x̂·mean(d·x̂)) / σ.
# ---------------------------------------------------------------------------
_row_mean = _row_sum("T x, T n", "T mean", "x", "mean = a / n", "tinyllm_row_mean")
_row_rstd = _row_sum("T x, T mean, T n, T eps", "T rstd", "(x - mean) * (x - mean)",      # 1/σ
                     "rstd = rsqrt(a / n + eps)", "tinyllm_row_rstd")
_layer_norm = _elementwise(
    "T x, T mean, T rstd, T w, T b", "T y",
    "y = (x - mean) * rstd * w + b",
    "tinyllm_layer_norm")
_layer_norm_xhat = _elementwise("T x, T mean, T rstd", "T xhat", "xhat = (x - mean) * rstd", "tinyllm_layer_norm_xhat")
_layer_norm_backward = _elementwise(
    "T g, T w, T xhat, T rstd, T sum_d, T sum_d_xhat, T n", "T dx",
    "dx = (g * w - (sum_d + xhat * sum_d_xhat) / n) * rstd",
    "tinyllm_layer_norm_backward")


def layer_norm(x, w, b, eps: float):
    """LayerNorm's forward in three passes: returns y, μ and 1/σ (..., 1). w and b may be 1 and 0."""
    n = x.shape[-1]
    mean = _row_mean(x, n, axis=-1, keepdims=True)
    rstd = _row_rstd(x, mean, n, eps, axis=-1, keepdims=True)
    return _layer_norm(x, mean, rstd, w, b), mean, rstd


def layer_norm_xhat(x, mean, rstd):
    """x̂ = (x - μ)/σ in one pass, made again for the backward from what the forward kept."""
    return _layer_norm_xhat(x, mean, rstd)


def layer_norm_backward(g, w, xhat, rstd):
    """dL/dx of LayerNorm in three passes (two row sums, then the formula); w may be 1."""
    sum_d = _row_sum_of_products(g, w, 1, axis=-1, keepdims=True)               # Σ d
    sum_d_xhat = _row_sum_of_products(g, w, xhat, axis=-1, keepdims=True)       # Σ d·x̂
    return _layer_norm_backward(g, w, xhat, rstd, sum_d, sum_d_xhat, g.shape[-1])


# ---------------------------------------------------------------------------
# Dropout: keep x·scale where the uniform draw u >= p, else 0. Its backward is the same
# kernel applied to the gradient (d(x·m)/dx = m), with the same draws.
# ---------------------------------------------------------------------------
_dropout = _elementwise("T x, A u, A p, A scale", "T y", "y = u >= p ? T(A(x) * scale) : T(0)",  # u: float32 for
                        "tinyllm_dropout")                                                     # 16-bit x


def dropout(x, u, p: float, scale: float):
    """x·scale where u >= p, else 0, in one pass."""
    return _dropout(x, u, p, scale)


# ---------------------------------------------------------------------------
# AdamW over the one flat array of every parameter (optim.AdamW), written in place.
# The weight matrices come first in that array: ``i < n_decay`` marks them (i is the index).
# ---------------------------------------------------------------------------
_adamw = _elementwise(
    "T g, T b1, T b2, T decay, T lr_over_bias1, T rsqrt_bias2, T eps, int64 n_decay", "T p, T m, T v",
    "if (i < n_decay) p *= decay;"                                       # p -= lr·wd·p, matrices only
    "m = b1 * m + (T(1) - b1) * g;"                                      # m = β1·m + (1-β1)·g
    "v = b2 * v + (T(1) - b2) * g * g;"                                  # v = β2·v + (1-β2)·g²
    "p -= lr_over_bias1 * m / (sqrt(v) * rsqrt_bias2 + eps)",            # p -= lr·m̂/(√v̂ + eps)
    "tinyllm_adamw")


def adamw_step(p, g, m, v, lr: float, betas: tuple[float, float], bias1: float, bias2: float,
               eps: float, weight_decay: float, n_decay: int) -> None:
    """One AdamW update of the flat parameters p and moments m, v, in place, in one pass."""
    b1, b2 = betas
    _adamw(g, b1, b2, 1 - lr * weight_decay, lr / bias1, bias2 ** -0.5, eps, n_decay, p, m, v)
