"""Elementwise ops: arithmetic with broadcasting, and the unary functions.

Each op computes its forward with the array module, then defines ``backward(g)``
where ``g`` is dLoss/d(out) and returns dLoss/d(input) for each input, via the
chain rule: dLoss/dx = dLoss/dout * dout/dx. A gradient is computed only for an
input that requires one (``x * 0.5`` needs none for the 0.5), and summed back
over broadcast axes by ``sum_to_shape``.
"""
from __future__ import annotations

import numpy as np

from ..backend import array_module
from ..tensor import Tensor, as_tensors, from_op, sum_to_shape


def _broadcast_check(op: str, a: Tensor, b: Tensor) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


def _binary(op: str, a, b) -> tuple[Tensor, Tensor]:
    a, b = as_tensors(op, a, b)
    _broadcast_check(op, a, b)
    return a, b


# --- arithmetic ---------------------------------------------------------------
def add(a, b) -> Tensor:
    a, b = _binary("add", a, b)

    def backward(g):  # d(a+b)/da = 1, d(a+b)/db = 1
        return (sum_to_shape(g, a.shape) if a.requires_grad else None,
                sum_to_shape(g, b.shape) if b.requires_grad else None)
    return from_op(a.data + b.data, (a, b), backward, "add")


def sub(a, b) -> Tensor:
    a, b = _binary("sub", a, b)

    def backward(g):  # d(a-b)/da = 1, d(a-b)/db = -1
        return (sum_to_shape(g, a.shape) if a.requires_grad else None,
                sum_to_shape(-g, b.shape) if b.requires_grad else None)
    return from_op(a.data - b.data, (a, b), backward, "sub")


def mul(a, b) -> Tensor:
    a, b = _binary("mul", a, b)

    def backward(g):  # d(ab)/da = b, d(ab)/db = a
        # BEGIN EXERCISE 1.2: backward of mul: d(ab)/da = b, d(ab)/db = a
        return (sum_to_shape(g * b.data, a.shape) if a.requires_grad else None,
                sum_to_shape(g * a.data, b.shape) if b.requires_grad else None)
        # END EXERCISE
    return from_op(a.data * b.data, (a, b), backward, "mul")


def div(a, b) -> Tensor:
    a, b = _binary("div", a, b)
    out = a.data / b.data

    def backward(g):  # d(a/b)/da = 1/b, d(a/b)/db = -a/b² = -out/b
        return (sum_to_shape(g / b.data, a.shape) if a.requires_grad else None,
                sum_to_shape(-g * out / b.data, b.shape) if b.requires_grad else None)
    return from_op(out, (a, b), backward, "div")


def pow(a, b) -> Tensor:
    """``a ** b``; ``b`` is usually a number (``x ** 2``) but may be a tensor."""
    a, b = _binary("pow", a, b)
    xp = array_module(a.data)
    out = a.data ** b.data

    def backward(g):  # d(a^b)/da = b·a^(b-1), d(a^b)/db = a^b·ln(a)
        return (sum_to_shape(g * b.data * a.data ** (b.data - 1), a.shape) if a.requires_grad else None,
                sum_to_shape(g * out * xp.log(a.data), b.shape) if b.requires_grad else None)
    return from_op(out, (a, b), backward, "pow")


def neg(a: Tensor) -> Tensor:
    return from_op(-a.data, (a,), lambda g: (-g,), "neg")


# --- unary functions ----------------------------------------------------------
def exp(a: Tensor) -> Tensor:
    out = array_module(a.data).exp(a.data)
    return from_op(out, (a,), lambda g: (g * out,), "exp")  # d(e^a)/da = e^a


def log(a: Tensor) -> Tensor:
    out = array_module(a.data).log(a.data)
    return from_op(out, (a,), lambda g: (g / a.data,), "log")  # d(ln a)/da = 1/a


def sqrt(a: Tensor) -> Tensor:
    out = array_module(a.data).sqrt(a.data)
    return from_op(out, (a,), lambda g: (g * 0.5 / out,), "sqrt")  # d√a/da = 1/(2√a)


def tanh(a: Tensor) -> Tensor:
    out = array_module(a.data).tanh(a.data)

    def backward(g):
        # BEGIN EXERCISE 1.3: backward of tanh: d tanh(a)/da = 1 - tanh(a)²
        return (g * (1 - out * out),)  # d tanh/da = 1 - tanh²
        # END EXERCISE
    return from_op(out, (a,), backward, "tanh")


def relu(a: Tensor) -> Tensor:
    xp = array_module(a.data)
    out = xp.maximum(a.data, 0)

    def backward(g):
        # BEGIN EXERCISE 3.1: backward of relu: the slope is 1 where a > 0, else 0
        # The slope is 1 where a > 0 and 0 elsewhere (0 at a = 0 itself, as PyTorch).
        return (g * (a.data > 0),)
        # END EXERCISE
    return from_op(out, (a,), backward, "relu")
