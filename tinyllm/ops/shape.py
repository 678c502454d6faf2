"""Shape ops: the same numbers, arranged differently.

Their backward moves the gradient back to where each number came from:
reshape it back, transpose it back, or scatter it into the slots an index read.
"""
from __future__ import annotations

from itertools import accumulate
from typing import Sequence

import numpy as np

from ..backend import array_module, is_cupy_array, scatter_add
from ..tensor import Tensor, as_tensors, from_op, from_op_outputs
from .reduce import normalize_axes


def reshape(a: Tensor, *shape) -> Tensor:
    """``a.reshape(B, T, C)`` or ``a.reshape((B, T, C))``; one size may be -1."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    try:
        out = a.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot view {a.shape} ({a.size} elements) as {shape}") from None
    return from_op(out, (a,), lambda g: (g.reshape(a.shape),), "reshape")


def permute(a: Tensor, *dims) -> Tensor:
    """Reorder the axes: output axis i is input axis ``dims[i]``."""
    dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
    axes = normalize_axes(dims, a.ndim)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"permute: {dims} is not an ordering of the {a.ndim} axes of {a.shape}")
    inverse = tuple(int(i) for i in np.argsort(axes))
    # The backward undoes the reordering with the inverse permutation.
    return from_op(a.data.transpose(dims), (a,), lambda g: (g.transpose(inverse),), "permute")


def transpose(a: Tensor, dim0: int = -2, dim1: int = -1) -> Tensor:
    """Swap two axes (by default the last two, as a matrix transpose)."""
    dim0, dim1 = normalize_axes((dim0, dim1), a.ndim)
    dims = list(range(a.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(a, dims)


def _is_basic_index(index) -> bool:
    """Slices, integers, None and ``...`` only: each input element is read at most once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (slice, int, type(None), type(Ellipsis))) for p in parts)


def getitem(a: Tensor, index) -> Tensor:
    """``a[index]``: slicing, and gathering with integer arrays (the embedding lookup).

    Backward puts each output gradient into the slot it was read from. An integer
    array may read one row many times (a token that occurs twice), so those
    gradients must be *added* into the slot: a scatter-add.
    """
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    xp = array_module(a.data)
    basic = _is_basic_index(index)
    checks = []
    if not basic and is_cupy_array(a.data):
        index, checks = _in_range_on_the_device(xp, index, a.shape)

    def backward(g):
        # BEGIN EXERCISE 6.1: backward of indexing: put g back where it was read; add up rows read twice
        grad = xp.zeros_like(a.data)
        if basic:
            grad[index] = g
        else:
            scatter_add(grad, index, g)
        return (grad,)
        # END EXERCISE
    try:
        out = a.data[index]
    except IndexError as e:
        raise IndexError(f"index into a tensor of shape {a.shape}: {e}") from None
    result = from_op(out, (a,), backward, "getitem")
    for failed, message in checks:
        result.defer_check(failed, message)
    return result


def _in_range_on_the_device(xp, index, shape: tuple[int, ...]):
    """Integer index arrays on a GPU, checked there: NumPy raises an IndexError for an index out
    of range, CuPy reads some other element without a word, and asking at once would make the
    host wait. So each such index is replaced by 0 (no read outside the array) and the check
    travels with the result, read where it is (``Tensor.defer_check``)."""
    parts, checks = list(index) if isinstance(index, tuple) else [index], []
    for axis, part in enumerate(parts):
        if part is Ellipsis or part is None:
            break                                  # later parts no longer name their axis by position
        if is_cupy_array(part) and part.dtype.kind in "iu":
            n = shape[axis]
            outside = (part < -n) | (part >= n)
            parts[axis] = xp.where(outside, 0, part)
            checks.append((outside.any(), f"index out of range for axis {axis} of a tensor of shape {shape} "
                                          f"(on the GPU, where it is checked when the result is read)"))
    return (tuple(parts) if isinstance(index, tuple) else parts[0]), checks


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (``torch.cat``)."""
    tensors = as_tensors("concat", *tensors)
    axis, = normalize_axes(axis, tensors[0].ndim)
    xp = array_module(tensors[0].data)
    try:
        out = xp.concatenate([t.data for t in tensors], axis=axis)
    except ValueError:
        raise ValueError(f"concat along axis {axis}: shapes {[t.shape for t in tensors]} "
                         "must match on every other axis") from None
    ends = list(accumulate(t.shape[axis] for t in tensors))

    def backward(g):  # each input gets back its own stretch of the gradient
        return tuple(xp.split(g, ends[:-1], axis=axis))
    return from_op(out, tensors, backward, "concat")


def split(a: Tensor, split_size_or_sections: int | Sequence[int], axis: int = 0) -> tuple[Tensor, ...]:
    """Cut ``a`` along ``axis`` into pieces of one size (the last may be shorter), or of the listed sizes."""
    axis, = normalize_axes(axis, a.ndim)
    n = a.shape[axis]
    if isinstance(split_size_or_sections, int):
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        sizes += [n % split_size_or_sections] if n % split_size_or_sections else []
    else:
        sizes = list(split_size_or_sections)
    if sum(sizes) != n:
        raise ValueError(f"split: sizes {sizes} do not add up to {n}, the length of axis {axis} of {a.shape}")
    xp = array_module(a.data)
    pieces = xp.split(a.data, list(accumulate(sizes))[:-1], axis=axis)  # views into a

    def backward(gs):
        # One op with several results: each piece's gradient goes back to its own stretch of a,
        # all in one concatenation (zeros for a piece no gradient reached). Slicing each piece
        # on its own would instead make one full-size gradient of a per piece, mostly zeros.
        # Written into a fresh row-major array (left alone, NumPy lays the result out like the
        # pieces, and a reshape of it would then have to copy).
        grad = xp.empty(a.shape, dtype=a.dtype)
        return (xp.concatenate([g if g is not None else xp.zeros_like(p) for g, p in zip(gs, pieces)], axis=axis,
                               out=grad),)
    return from_op_outputs(pieces, (a,), backward, "split")
