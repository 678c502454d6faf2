"""Reductions: sum, mean and max over some axes.

A reduction maps many inputs to one output, so its backward sends the output's
gradient back to every input that took part: broadcasting in reverse.
"""
from __future__ import annotations

from ..backend import array_module
from ..tensor import Tensor, from_op

Axis = int | tuple[int, ...] | None


def normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """Axes as non-negative numbers (-1 is the last); None is all of them. Out of range: an error."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for ax in axes:
        if not -ndim <= ax < (ndim or 1):
            raise ValueError(f"axis {ax} is out of range for a tensor with {ndim} dimensions")
    return tuple(ax % (ndim or 1) for ax in axes)


def _expand_like(g, axes: tuple[int, ...], keepdims: bool, shape: tuple[int, ...]):
    """Give a reduced gradient its reduced axes back (as size 1), ready to broadcast to ``shape``."""
    if not keepdims:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return g


def sum(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    axes = normalize_axes(axis, a.ndim)
    xp = array_module(a.data)

    def backward(g):  # every input contributed with slope 1: copy g back over the summed axes
        # BEGIN EXERCISE 2.2: backward of sum: copy g back over the summed axes
        return (xp.broadcast_to(_expand_like(g, axes, keepdims, a.shape), a.shape),)
        # END EXERCISE
    return from_op(a.data.sum(axis=axes, keepdims=keepdims), (a,), backward, "sum")


def mean(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    axes = normalize_axes(axis, a.ndim)
    xp = array_module(a.data)
    count = 1
    for ax in axes:
        count *= a.shape[ax]

    def backward(g):  # mean = sum / count, so each input gets g / count
        return (xp.broadcast_to(_expand_like(g, axes, keepdims, a.shape) / count, a.shape),)
    return from_op(a.data.mean(axis=axes, keepdims=keepdims), (a,), backward, "mean")


def max(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    axes = normalize_axes(axis, a.ndim)
    out = a.data.max(axis=axes, keepdims=True)

    def backward(g):
        # Only the largest entry moved the output. Where several tie, they share
        # the gradient equally (the subgradient PyTorch's amax uses).
        # (The tie count is made in a's dtype: an integer count would turn float32 into float64.)
        winners = a.data == out
        ties = winners.sum(axis=axes, keepdims=True, dtype=a.dtype)
        return (winners * (_expand_like(g, axes, keepdims, a.shape) / ties),)
    return from_op(out if keepdims else out.reshape([n for i, n in enumerate(a.shape) if i not in axes]),
                   (a,), backward, "max")
