"""Weight quantization: store each weight in 8 or 4 bits instead of 32, and compute as before.

Round to nearest, symmetric, one float32 scale per group of weights:

    scale = max|w| / qmax            over the group (qmax = 127 for 8 bits, 7 for 4 bits)
    q     = round(w / scale)         an integer in [-qmax, qmax]
    w'    = q · scale                what the model computes with; |w - w'| ≤ scale / 2

A group is a run of ``group_size`` weights along the input axis of one output channel
(one row of W, shape (n_out, n_in)); without a group size, the whole row is one group:
"per output channel". One scale per row is enough for 8 bits; 4 bits has only 15 levels,
so one outlier in a long row would leave every other weight of the row a level or two,
and groups of 32–128 keep the scale local. A 4-bit weight takes half a byte: two are packed
into each uint8.

``QuantizedLinear`` holds the integers and the scales, and dequantizes its weight in each
forward: the model stays small in memory and on disk, and computes in float32 as before
(inference only: a quantized model does not train). ``quantize_model`` replaces every
Linear of a GPT; with ``embedding=True`` also the token embedding, and the output layer
tied to it keeps sharing it. ``tinyllm quantize`` writes such a model as a checkpoint.
"""
from __future__ import annotations

from . import functional as F
from .backend import array_module
from .nn import Linear, Module, Parameter, initializing
from .tensor import Tensor

BITS = (8, 4)


def quantize(w, bits: int, group_size: int | None = None):
    """Symmetric round-to-nearest quantization of ``w`` (n_out, n_in) in groups along its rows:
    returns ``q`` (int8, like ``w``) and ``scales`` (float32, (n_out, n_in // group_size))."""
    n_out, n_in = w.shape
    group_size = group_size or n_in
    check_group_size(bits, group_size, n_in)
    # BEGIN EXERCISE 20.1: quantize: one scale per group = max|w| / qmax, q = round(w / scale)
    qmax = 2 ** (bits - 1) - 1                                 # 127 or 7: symmetric, -qmax..qmax
    xp = array_module(w)
    groups = w.reshape(n_out, n_in // group_size, group_size)  # (n_out, G, group_size)
    scales = xp.abs(groups).max(axis=-1) / qmax                # (n_out, G)
    safe = xp.where(scales > 0, scales, 1)                     # an all-zero group: q = 0 whatever its scale
    q = xp.rint(groups / safe[..., None]).astype(xp.int8)      # rint: round half to even, as round()
    return q.reshape(n_out, n_in), scales.astype(xp.float32)
    # END EXERCISE


def dequantize(q, scales):
    """The float32 weights ``q`` stands for: each group's integers times its scale."""
    n_out, n_in = q.shape
    groups = q.reshape(n_out, scales.shape[1], -1)             # (n_out, G, group_size)
    return (groups * scales[..., None]).reshape(n_out, n_in).astype(scales.dtype, copy=False)


def check_group_size(bits: int, group_size: int, width: int, name: str = "a weight") -> None:
    """Refuse a bit width or group size that cannot quantize rows of ``width`` numbers."""
    if bits not in BITS:
        raise ValueError(f"quantization to {bits} bits: tinyllm quantizes to {' or '.join(map(str, BITS))} bits")
    if group_size < 1 or width % group_size:
        raise ValueError(f"group size {group_size} does not divide the width {width} of {name}: "
                         "choose one that does (32, 64 and 128 divide GPT-2's widths)")
    if bits == 4 and group_size % 2:
        raise ValueError(f"group size {group_size}: 4-bit weights are packed in pairs, so it must be even")


def pack_int4(q):
    """Integers in [-8, 7], (..., 2n) int8 -> (..., n) uint8: two per byte, the first in the low half."""
    u = (q + 8).astype(array_module(q).uint8)                  # 0..15: one nibble each
    return u[..., 0::2] | (u[..., 1::2] << 4)


def unpack_int4(packed):
    """The inverse of ``pack_int4``: (..., n) uint8 -> (..., 2n) int8 in [-8, 7]."""
    xp = array_module(packed)
    low, high = (packed & 0x0F).astype(xp.int8) - 8, (packed >> 4).astype(xp.int8) - 8
    return xp.stack([low, high], axis=-1).reshape(*packed.shape[:-1], 2 * packed.shape[-1])


class QuantizedWeight(Module):
    """A weight matrix stored as integers and scales (``qweight``: int8, or uint8 with 4-bit pairs)."""

    def __init__(self, w, bits: int, group_size: int | None = None):
        if initializing():
            q, scales = quantize(w, bits, group_size)
        else:   # inside skip_init: the file being loaded holds them; zeros of the right shapes will do
            n_out, n_in = w.shape
            check_group_size(bits, group_size or n_in, n_in)
            xp = array_module(w)
            q, scales = xp.zeros((n_out, n_in), xp.int8), xp.zeros((n_out, n_in // (group_size or n_in)), xp.float32)
        self.bits, self.group_size = bits, group_size
        self.qweight = Parameter(pack_int4(q) if bits == 4 else q, requires_grad=False)
        self.scales = Parameter(scales, requires_grad=False)

    def dequantized(self):
        """The float32 (n_out, n_in) weight, made afresh (the model keeps only the integers)."""
        q = unpack_int4(self.qweight.data) if self.bits == 4 else self.qweight.data
        return dequantize(q, self.scales.data)

    def rows(self, ids):
        """Rows ``ids`` of the dequantized weight, without making the rest: an embedding lookup."""
        q = self.qweight.data[ids].reshape(ids.size, -1)                       # (N, n_in or n_in / 2)
        q = unpack_int4(q) if self.bits == 4 else q
        scales = self.scales.data[ids].reshape(ids.size, -1)                   # (N, G)
        return dequantize(q, scales).reshape(*ids.shape, q.shape[1])          # (..., n_in)


class QuantizedLinear(Module):
    """``Linear`` with a quantized weight: y = x W'ᵀ + b, W' dequantized in each forward."""

    def __init__(self, weight: QuantizedWeight, bias: Parameter | None):
        self.weight = weight
        self.bias = bias

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, Tensor(self.weight.dequantized()), self.bias)


class QuantizedEmbedding(Module):
    """``Embedding`` with a quantized table: each looked-up row is dequantized on its own."""

    def __init__(self, weight: QuantizedWeight):
        self.weight = weight

    def forward(self, ids) -> Tensor:
        ids = ids.data if isinstance(ids, Tensor) else array_module(self.weight.scales.data).asarray(ids)
        return Tensor(self.weight.rows(ids))


def quantize_model(model: Module, bits: int, group_size: int | None = None, embedding: bool = False) -> Module:
    """Replace every Linear of ``model`` (and with ``embedding`` the token embedding ``wte`` and
    the output layer tied to it) by its quantized form, in place; returns ``model``. Every
    group size is checked against every layer before anything changes."""
    layers = [(parent, attr, getattr(parent, attr)) for parent, attr, _ in model.layers_of_type(Linear)]
    tied = {id(model.wte.weight)} if hasattr(model, "wte") else set()
    chosen = [(p, a, c) for p, a, c in layers if id(c.weight) not in tied]
    for parent, attr, child in chosen:
        check_group_size(bits, group_size or child.weight.shape[1], child.weight.shape[1], attr)
    for parent, attr, child in chosen:
        bias = child.bias
        if bias is not None:
            bias.requires_grad = False
        setattr(parent, attr, QuantizedLinear(QuantizedWeight(child.weight.data, bits, group_size), bias))
    if embedding:   # one quantized table for both: the lookup's rows are the output layer's rows
        table = QuantizedWeight(model.wte.weight.data, bits, group_size)
        model.wte = QuantizedEmbedding(table)
        model.lm_head = QuantizedLinear(table, None)
    for p in model.parameters():
        p.requires_grad = False
    return model


def quantization_of(model: Module) -> dict | None:
    """bits, group size and whether the embedding is quantized, for a model ``quantize_model``
    changed (what a checkpoint records to build it again); None for a float model."""
    weights = [m for m in model.modules() if isinstance(m, QuantizedWeight)]
    if not weights:
        return None
    return {"bits": weights[0].bits, "group_size": weights[0].group_size,
            "embedding": isinstance(getattr(model, "wte", None), QuantizedEmbedding)}
