"""Neural-network functions, imported as ``F`` (as ``torch.nn.functional`` is).

Each could be written from the basic ops (``exp``, ``sum``, ``/``): lesson 03 builds
cross-entropy that way, and lesson 07 attention. Here each is *fused*: one op whose
backward is the derivative worked out on paper, which needs fewer saved arrays and
far fewer passes over memory than the chain of small ops it replaces. The derivation sits
beside each backward, and tests check every one against finite differences.

On a GPU, GELU, softmax, LayerNorm and dropout run their formulas as fused CUDA
kernels instead (cuda_kernels.py): the same maths in one to three passes over memory
rather than one per arithmetic step. There memory runs out before time does, so
cross_entropy and layer_norm keep less for their backward and make the rest again.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from . import cuda_kernels
from .amp import compute_dtype
from .backend import array_module, column_sums, device_of, is_cupy_array, rng, row_sums, sum_dtype
from .tensor import Tensor, as_tensors, from_op, sum_to_shape


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weightᵀ + bias``, with ``weight`` of shape (out, in) as in PyTorch's ``nn.Linear``.

    The batch axes of ``x`` are folded into rows, so each product is one large GEMM.
    """
    n_out, n_in = weight.shape
    if x.shape[-1] != n_in:
        raise ValueError(f"linear: input {x.shape} has {x.shape[-1]} features, weight {weight.shape} expects {n_in}")
    if (dtype := compute_dtype()) is not None:     # inside amp.autocast: the products in 16 bits
        return _linear_in_16_bits(dtype, x, weight, bias)
    # BEGIN EXERCISE 3.3: forward of linear: fold the batch axes into rows, one product with Wᵀ, add the bias
    x2 = x.data.reshape(-1, n_in)                       # (N, in)
    out = x2 @ weight.data.T                            # (N, in) @ (in, out) -> (N, out)
    if bias is not None:
        out += bias.data
    # END EXERCISE
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g):
        # out = x Wᵀ + b   =>   dx = g W,   dW = gᵀ x,   db = Σ_rows g
        # BEGIN EXERCISE 3.4: backward of linear: dx = g W, dW = gᵀ x, db = g summed over the rows
        g2 = g.reshape(-1, n_out)                       # (N, out)
        grads = [(g2 @ weight.data).reshape(x.shape) if x.requires_grad else None,  # (N, out) @ (out, in)
                 g2.T @ x2 if weight.requires_grad else None]                       # (out, N) @ (N, in)
        if bias is not None:
            grads.append(column_sums(g2) if bias.requires_grad else None)  # (N, out) -> (out,)
        return tuple(grads)
        # END EXERCISE
    return from_op(out.reshape(*x.shape[:-1], n_out), parents, backward, "linear")


def _linear_in_16_bits(dtype, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``linear`` under ``amp.autocast``: the three products in ``dtype`` (float16 or bfloat16, the
    format of a GPU's tensor cores), each cast back to float32; the bias and its gradient in float32."""
    n_out, n_in = weight.shape
    x16 = x.data.reshape(-1, n_in).astype(dtype)      # (N, in)
    w16 = weight.data.astype(dtype)                   # (out, in): a 16-bit copy; the float32 weight is the master
    out = (x16 @ w16.T).astype(x.dtype)               # (N, in) @ (in, out) in 16 bits -> float32
    if bias is not None:
        out += bias.data
    parents = (x, weight) if bias is None else (x, weight, bias)

    def backward(g):
        g2 = g.reshape(-1, n_out)                     # (N, out), float32
        g16 = g2.astype(dtype)
        grads = [(g16 @ w16).astype(x.dtype).reshape(x.shape) if x.requires_grad else None,   # dx = g W
                 (g16.T @ x16).astype(weight.dtype) if weight.requires_grad else None]        # dW = gᵀ x
        if bias is not None:
            grads.append(column_sums(g2) if bias.requires_grad else None)
        return tuple(grads)
    return from_op(out.reshape(*x.shape[:-1], n_out), parents, backward, "linear")


def _device_mask(mask, data):
    """``mask`` (array or Tensor) as a boolean array on ``data``'s device: a NumPy mask may meet CuPy data."""
    return array_module(data).asarray(mask.data if isinstance(mask, Tensor) else mask)


def _mask_bias(mask, data):
    """0 where the boolean ``mask`` is false and -inf where it is true, in ``data``'s dtype.

    Adding it to scores masks them; a broadcast add of a (T, T) bias is several times
    faster than ``where`` over the whole (B, H, T, T) array."""
    xp = array_module(data)
    return xp.where(_device_mask(mask, data), xp.asarray(-math.inf, dtype=data.dtype), xp.asarray(0, dtype=data.dtype))


def _sum_along(a, axis: int):
    """``a.sum(axis, keepdims=True)``; along the last axis as a matrix-vector product (faster)."""
    return row_sums(a) if axis in (-1, a.ndim - 1) else a.sum(axis=axis, keepdims=True)


def softmax(x: Tensor, axis: int = -1, mask=None) -> Tensor:
    """exp(x) / Σ exp(x) along ``axis``; the max is subtracted first so exp cannot overflow.

    ``mask`` (boolean, broadcastable to x): where True the probability is exactly 0, as if
    the score were -inf. Attention's causal mask goes here, fused: no extra op, no extra
    backward, and the masked entries need no gradient of their own (their y is 0 below).
    A row masked everywhere is all 0 (it takes from nothing), on the GPU too.
    """
    y = _softmax_forward(x.data, axis, mask)
    return from_op(y, (x,), lambda g: (_softmax_backward(y, g, axis),), "softmax")


def _softmax_forward(x, axis: int = -1, mask=None):
    """softmax's forward on an array (attention calls it too): a new array, x is not changed."""
    xp = array_module(x)
    if is_cupy_array(x) and axis in (-1, x.ndim - 1):   # on a GPU: the same maths, fused kernels
        return cuda_kernels.softmax(x, False if mask is None else _device_mask(mask, x))
    if (wide := sum_dtype(x.dtype)) != x.dtype:         # 16-bit scores (amp.autocast): the sums in float32
        return _softmax_forward(x.astype(wide), axis, mask).astype(x.dtype)
    # BEGIN EXERCISE 7.1: forward of softmax: subtract the max (after adding the mask's -inf), exp, divide by the sum
    # softmax(x) = softmax(x - m) for any m; with m the max every exponent is <= 0: no overflow.
    if mask is None:
        y = x - x.max(axis=axis, keepdims=True)
    else:
        y = x + _mask_bias(mask, x)                     # -inf where masked: e^-inf = 0
        # A row masked everywhere has the max -inf, and -inf - -inf is nan: take the lowest float instead.
        y -= xp.maximum(y.max(axis=axis, keepdims=True), xp.finfo(y.dtype).min)
    xp.exp(y, out=y)
    y /= xp.maximum(_sum_along(y, axis), xp.finfo(y.dtype).tiny)   # such a row sums to 0: it stays all 0
    return y
    # END EXERCISE


def _softmax_backward(y, g, axis: int = -1):
    """softmax's backward on arrays: dLoss/dx from the forward's output y and g = dLoss/dy."""
    if is_cupy_array(y) and axis in (-1, y.ndim - 1):
        return cuda_kernels.softmax_backward(y, g)
    if (wide := sum_dtype(y.dtype)) != y.dtype:         # 16-bit weights (amp.autocast): the sums in float32
        return _softmax_backward(y.astype(wide), g.astype(wide), axis).astype(y.dtype)
    # BEGIN EXERCISE 7.2: backward of softmax: dx = y·(g - Σ g·y)
    # dy_i/dx_j = y_i (δ_ij - y_j)   =>   dx = y · (g - Σ_j g_j y_j)
    dx = g - _sum_along(g * y, axis)
    dx *= y
    return dx
    # END EXERCISE


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) computed stably as (x - max) - log Σ exp(x - max)."""
    xp = array_module(x.data)
    # BEGIN EXERCISE 4.1: forward of log_softmax: (x - max) - log Σ exp(x - max) along the axis
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    y = shifted - xp.log(_sum_along(xp.exp(shifted), axis))
    # END EXERCISE

    def backward(g):
        # BEGIN EXERCISE 4.2: backward of log_softmax: dx = g - softmax(x)·Σg
        # y_i = x_i - log Σ_j e^{x_j}   =>   dx = g - softmax(x) · Σ_i g_i
        return (g - xp.exp(y) * _sum_along(g, axis),)
        # END EXERCISE
    return from_op(y, (x,), backward, "log_softmax")


_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715


def gelu(x: Tensor) -> Tensor:
    """GELU with GPT-2's tanh approximation: 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³).

    Computed as x·σ(2u), the same number (½(1 + tanh u) = σ(2u)), because exp is
    much faster than tanh in NumPy; every step writes into one buffer.
    """
    xp = array_module(x.data)
    a = x.data
    if is_cupy_array(a):  # on a GPU: the same formulas, one kernel each way
        return from_op(cuda_kernels.gelu(a, _GELU_C, _GELU_K), (x,),
                       lambda g: (cuda_kernels.gelu_backward(a, g, _GELU_C, _GELU_K),), "gelu")
    s = a * a                                   # s becomes σ(2u) = 1 / (1 + e^(-2u)), in place:
    s *= -2 * _GELU_C * _GELU_K
    s -= 2 * _GELU_C
    s *= a                                      # -2u = -2c(x + k·x³)
    with np.errstate(over="ignore"):            # for x < -10, e^(-2u) overflows to inf, and σ = 1/(1 + inf)
        xp.exp(s, out=s)                        # is 0, as it should be: no warning wanted (NumPy's; CuPy gives none)
    s += 1
    xp.reciprocal(s, out=s)

    def backward(g):
        # y = x·σ(2u)   =>   dy/dx = σ + x·σ(1 - σ)·2u',   with 2u' = 2c(1 + 3k·x²)
        # BEGIN EXERCISE 8.3: backward of gelu: dy/dx = σ + x·σ(1 - σ)·2u'
        d = a * a
        d *= 6 * _GELU_C * _GELU_K
        d += 2 * _GELU_C
        d *= a                                  # x·2u'
        d *= s
        d *= 1 - s
        d += s
        d *= g
        return (d,)
        # END EXERCISE
    return from_op(a * s, (x,), backward, "gelu")


def cross_entropy(logits: Tensor, targets, ignore_index: int = -100) -> Tensor:
    """Mean negative log-likelihood of ``targets`` under ``softmax(logits)``.

    logits (..., V), targets (...) of integer class ids; positions whose target is
    ``ignore_index`` count for nothing (they are left out of the mean too).
    """
    xp = array_module(logits.data)
    targets = targets.data if isinstance(targets, Tensor) else xp.asarray(targets)
    if targets.shape != logits.shape[:-1] or targets.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy: logits {logits.shape} need integer targets of shape "
                         f"{logits.shape[:-1]}, got {targets.dtype} {targets.shape}")
    V = logits.shape[-1]
    z = logits.data.reshape(-1, V)                      # (N, V)
    t = targets.reshape(-1)                             # (N,)
    out_of_range = f"cross_entropy: a target id is outside 0..{V - 1} (and is not ignore_index)"
    valid = t != ignore_index
    if device_of(t) == "cpu":
        if len(t) and (t.max() >= V or (t.min() < 0 and (t[t < 0] != ignore_index).any())):
            raise ValueError(out_of_range)
        failed = None
    else:   # on a GPU, reading the answer now would stall it: checked there, read with the loss
        failed = ((t >= V) | ((t < 0) & valid)).any()
        t = xp.clip(t, 0, V - 1)                        # meanwhile, never a read outside the logits
    t = xp.where(valid, t, 0)                           # any real row; ignored rows are weighted 0 below
    rows = xp.arange(len(t))

    # loss_n = log Σ_v e^{z_nv} - z_n,t = log Σ_v e^{z_nv - m} - (z_n,t - m), m the row's max (for stability)
    if is_cupy_array(z):
        # On a GPU, fused kernels, and memory is what runs short while a pass over it is cheap:
        # keep only m and Σ e^(z - m), (N, 1) each, and make softmax(z) again in the backward
        # from z (which the graph holds anyway). Kept, it would be a second array as large as
        # the logits until the backward: 3 GiB for GPT-2 at batch 16.
        m, total = cuda_kernels.softmax_statistics(z)
        probs = None
        target_logit = z[rows, t] - m[:, 0]
    else:
        # On a CPU, exp over the vocabulary is the op's largest cost: do it once, keep the result.
        shifted = z - z.max(axis=1, keepdims=True)
        target_logit = shifted[rows, t]
        probs = xp.exp(shifted, out=shifted)            # reuse the buffer: shifted is no longer needed
        total = row_sums(probs)                         # (N, 1)
        probs /= total
    nll = xp.log(total[:, 0]) - target_logit
    count = xp.maximum(valid.sum(), 1).astype(z.dtype)
    loss = (nll * valid).sum() / count

    def backward(g):
        softmax_z = probs if probs is not None else cuda_kernels.softmax(z, statistics=(m, total))  # (N, V)
        # BEGIN EXERCISE 4.3: backward of cross_entropy: (softmax - onehot(target)) / count, 0 for ignored rows
        # d loss_n / dz_n = softmax(z_n) - onehot(t_n); the mean divides by count.
        row_scale = (valid * (g / count)).astype(z.dtype)[:, None]   # (N, 1); 0 for ignored rows
        dz = softmax_z * row_scale
        dz[rows, t] -= row_scale[:, 0]
        return (dz.reshape(logits.shape),)
        # END EXERCISE
    result = from_op(loss, (logits,), backward, "cross_entropy")
    return result if failed is None else result.defer_check(failed, out_of_range)


def layer_norm(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise the last axis to mean 0 and variance 1, then scale by ``weight`` and shift by ``bias``."""
    xp = array_module(x.data)
    C = x.shape[-1]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (C,):
            raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected ({C},) for input {x.shape}")
    w = weight.data if weight is not None else 1
    on_gpu = is_cupy_array(x.data)
    if on_gpu:
        # On a GPU, fused kernels, and x̂ is not kept: the backward makes it again from x (which
        # the graph holds anyway) and μ, 1/σ, (..., 1) each, rather than hold a second array as
        # large as x until then. (A CPU keeps x̂, as it keeps cross_entropy's probabilities:
        # there time runs short before memory does.)
        y, mean, rstd = cuda_kernels.layer_norm(x.data, w, bias.data if bias is not None else 0, eps)
        normalized = lambda: cuda_kernels.layer_norm_xhat(x.data, mean, rstd)  # noqa: E731
    else:
        # BEGIN EXERCISE 8.1: forward of layer_norm: x̂ = (x - μ)/σ along the last axis, y = x̂·w + b; keep x̂ and 1/σ
        xhat = x.data - row_sums(x.data) / C                             # x - μ
        rstd = 1.0 / xp.sqrt(row_sums(xhat * xhat) / C + eps)            # 1/σ, (..., 1)
        xhat *= rstd                                                     # (x - μ)/σ, (..., C)
        y = xhat * weight.data if weight is not None else xhat.copy()
        if bias is not None:
            y += bias.data
        # END EXERCISE
        normalized = lambda: xhat  # noqa: E731
    parents = [p for p in (x, weight, bias) if p is not None]

    def backward(g):
        # y = x̂·w + b with x̂ = (x - μ)/σ. With d = g·w = dL/dx̂, differentiating μ and σ too:
        #   dx = (d - mean(d) - x̂ · mean(d·x̂)) / σ
        xhat = normalized()
        if on_gpu:
            dx = cuda_kernels.layer_norm_backward(g, w, xhat, rstd)
        else:
            # BEGIN EXERCISE 8.2: backward of layer_norm: dx = (d - mean(d) - x̂·mean(d·x̂))/σ with d = g·w
            d = g * w
            dx = d - row_sums(d) / C
            dx -= xhat * (row_sums(d * xhat) / C)
            dx *= rstd
            # END EXERCISE
        grads = [dx]
        if weight is not None:
            grads.append(column_sums(g * xhat))  # dw = Σ g·x̂ over all rows
        if bias is not None:
            grads.append(column_sums(g))         # db = Σ g
        return tuple(grads)
    return from_op(y, parents, backward, "layer_norm")


def masked_fill(x: Tensor, mask, value: float) -> Tensor:
    """``x`` with ``value`` wherever the boolean ``mask`` (broadcastable to x) is true."""
    xp = array_module(x.data)
    mask = _device_mask(mask, x.data)
    out = xp.where(mask, xp.asarray(value, dtype=x.dtype), x.data)
    # The filled places no longer depend on x: their gradient is 0.
    return from_op(out, (x,), lambda g: (sum_to_shape(xp.where(mask, 0, g), x.shape),), "masked_fill")


def where(condition, a, b) -> Tensor:
    """Elementwise choice: ``a`` where ``condition`` is true, else ``b`` (all broadcast together)."""
    a, b = as_tensors("where", a, b)
    xp = array_module(a.data)
    cond = xp.asarray(condition.data if isinstance(condition, Tensor) else condition)
    out = xp.where(cond, a.data, b.data)

    def backward(g):  # each gradient flows to the input that was chosen
        zero = xp.zeros((), dtype=g.dtype)
        return (sum_to_shape(xp.where(cond, g, zero), a.shape) if a.requires_grad else None,
                sum_to_shape(xp.where(cond, zero, g), b.shape) if b.requires_grad else None)
    return from_op(out, (a, b), backward, "where")


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), in training only.

    The scaling keeps the expected value unchanged, so evaluation needs no dropout.
    ``generator`` is an ``xp.random.Generator``; by default the one ``manual_seed`` seeds.
    """
    if not training or _dropout_probability(p) == 0:
        return x
    drop = _dropout_draw(x.data, p, generator)
    return from_op(drop(x.data), (x,), lambda g: (drop(g),), "dropout")  # y = x·m   =>   dx = g·m


def _dropout_probability(p: float) -> float:
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return p


def _dropout_draw(like, p: float, generator=None):
    """One draw of dropout for arrays shaped like ``like``: a function that zeroes each element
    with probability p and scales the rest by 1/(1-p), the same elements at every call (so the
    forward and the backward drop the same ones)."""
    xp = array_module(like)
    generator = generator if generator is not None else rng(xp)
    # uniform in [0, 1): keep where u >= p. (Drawn in float32 at least: generators make no 16-bit numbers.)
    u = xp.asarray(generator.random(like.shape, dtype=np.promote_types(like.dtype, np.float32)))
    scale = 1.0 / (1.0 - p)
    if is_cupy_array(u):  # on a GPU: a·scale or 0, one kernel
        return lambda a: cuda_kernels.dropout(a, u, p, scale)
    # BEGIN EXERCISE 15.1: dropout's draw: keep where u >= p, scaled by 1/(1-p); the same mask at every call
    mask = (u >= p).astype(like.dtype)
    mask *= scale
    return lambda a: a * mask
    # END EXERCISE


@lru_cache(maxsize=16)
def causal_mask(T_query: int, T_key: int, xp=np):
    """(T_query, T_key) boolean, True where a query may not look: keys in its future.

    Queries are the last ``T_query`` of the ``T_key`` positions (all of them in training;
    only the new one when generating with a KV cache, which then sees every key).
    Made once per shape and shared by every layer and step: read it, never change it."""
    mask = xp.triu(xp.ones((T_query, T_key), dtype=bool), k=1 + T_key - T_query)
    if xp is np:
        mask.flags.writeable = False
    return mask


def attention_weights(q, k, is_causal: bool = False):
    """softmax(q kᵀ / √D) on arrays q (..., T, D) and k (..., S, D): the (..., T, S) weights,
    row t saying how much query t takes from each key (with ``is_causal``, none from its future)."""
    # BEGIN EXERCISE 7.3: attention weights: softmax(q kᵀ / √D), the causal mask applied when is_causal
    # Scaling q first is the same number and touches T·D values instead of T·S.
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.swapaxes(-2, -1)  # (B, H, T, D) @ (B, H, D, S) -> (B, H, T, S)
    mask = causal_mask(q.shape[-2], k.shape[-2], array_module(q)) if is_causal else None
    return _softmax_forward(scores, -1, mask)  # no peeking ahead; each row sums to 1
    # END EXERCISE


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, *, is_causal: bool = False,
                                 dropout_p: float = 0.0, generator=None) -> Tensor:
    """Attention as one op, as PyTorch's function of this name: dropout(softmax(q kᵀ / √D)) @ v.

    q (..., T, D), k (..., S, D), v (..., S, Dv) -> (..., T, Dv). ``is_causal``: query t sees
    no key after it, the queries being the last T of the S positions (a KV cache's one new
    query sees every key; PyTorch's ``is_causal`` takes them as the first T instead, the same
    when T = S). ``dropout_p`` drops weights; pass 0 when not training.

    Written as its five small ops, attention's graph would keep the scores, the weights and
    the dropped weights: three (T, S) arrays per head, the largest arrays of a GPT step.
    Fused, it keeps the weights only (and dropout's draw), and the backward recomputes the rest.
    Inside ``amp.autocast`` its four products run in 16 bits and the (T, S) arrays are 16-bit
    (softmax sums in float32); the answer is float32 still.
    """
    if q.shape[-1] != k.shape[-1] or k.shape[:-1] != v.shape[:-1] or q.shape[:-2] != k.shape[:-2]:
        raise ValueError(f"scaled_dot_product_attention: q {q.shape}, k {k.shape}, v {v.shape} must be "
                         "(..., T, D), (..., S, D), (..., S, Dv) with the same leading axes")
    if is_causal and q.shape[-2] > k.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: causal attention needs no more queries ({q.shape[-2]}) "
                         f"than keys ({k.shape[-2]}): a query before the first key would see nothing")
    sixteen = compute_dtype()                  # inside amp.autocast: the products in 16 bits, q, k, v cast once
    dtype = q.dtype if sixteen is None else sixteen
    q_data, k_data, v_data = (t.data.astype(dtype, copy=False) for t in (q, k, v))
    att = attention_weights(q_data, k_data, is_causal)                     # (B, H, T, S)
    drop = _dropout_draw(att, dropout_p, generator) if _dropout_probability(dropout_p) else (lambda a: a)
    y = drop(att) @ v_data                                                 # (B, H, T, S) @ (B, H, S, D) -> (B, H, T, D)

    def backward(g):
        g = g.astype(dtype, copy=False)        # the engine turns the 16-bit gradients back into q, k, v's float32
        # y = A v with A = dropout(P), P = softmax(s), s = q kᵀ / √D:
        #   dv = Aᵀ g,   dP = dropout(g vᵀ),   ds = softmax's backward(P, dP),   dq = ds k / √D,   dk = dsᵀ q / √D
        # BEGIN EXERCISE 7.4: backward of attention: dv, then ds through dropout and softmax, then dq and dk
        dv = drop(att).swapaxes(-2, -1) @ g                                # (B, H, S, T) @ (B, H, T, D) -> (B, H, S, D)
        ds = _softmax_backward(att, drop(g @ v_data.swapaxes(-2, -1)))     # (B, H, T, D) @ (B, H, D, S) -> (B, H, T, S)
        dq = ds @ k_data                                                   # (B, H, T, S) @ (B, H, S, D) -> (B, H, T, D)
        dk = ds.swapaxes(-2, -1) @ q_data                                  # (B, H, S, T) @ (B, H, T, D) -> (B, H, S, D)
        scale = 1.0 / math.sqrt(q.shape[-1])
        dq *= scale
        dk *= scale
        return dq, dk, dv
        # END EXERCISE
    return from_op(y.astype(q.dtype, copy=False), (q, k, v), backward, "attention")
