"""Tensor: an n-dimensional array that remembers how it was made.

This file is the whole autograd engine. A ``Tensor`` wraps an array (``.data``)
and, when it was produced by an op on tensors that need gradients, it also
keeps its parents and a ``backward`` function: given dLoss/d(output), that
function returns dLoss/d(each parent). ``loss.backward()`` walks this graph
from the loss back to the leaves in reverse topological order, applying the
chain rule one op at a time.

The ops themselves (``+``, ``@``, ``sum``, ...) live in ``tinyllm/ops/``, each
forward beside its backward; they build their results with ``from_op`` below.

In-place safety: no op changes an array in place that another tensor holds (forward
values or gradients), and each ``.grad`` that ``backward()`` leaves is an array of its
own, shared with no other ``.grad``. So code that changes gradients in place after the
backward (scaling them, averaging them across processes) changes only the one it means to.
"""
from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np

from .backend import array_module, check_device, device_of, is_cupy_array, to_device, to_numpy, xp_for

# ---------------------------------------------------------------------------
# Grad mode: inside ``with no_grad():`` ops record nothing (inference, updates).
# ---------------------------------------------------------------------------
_grad_enabled = True


@contextmanager
def no_grad() -> Iterator[None]:
    """Context manager (or decorator) under which no graph is recorded."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``: ops then record no graph."""
    return _grad_enabled


# ---------------------------------------------------------------------------
# Broadcasting, undone. ``(2,1,3) + (4,3)`` gives ``(2,4,3)``: the second input
# was copied along two axes, so its gradient is the sum over those axes.
# Every op with broadcasting inputs sends its gradients through this helper.
# ---------------------------------------------------------------------------
def sum_to_shape(grad, shape: tuple[int, ...]):
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if grad.shape == shape:
        return grad
    # BEGIN EXERCISE 2.1: sum a gradient over the axes broadcasting added or stretched
    lead = grad.ndim - len(shape)  # axes broadcasting added in front
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=tuple(range(lead)) + stretched, keepdims=True).reshape(shape)
    # END EXERCISE


class Tensor:
    """An array with an optional gradient, on the "cpu" (NumPy) or "cuda" (CuPy) device.

    Floating-point data becomes float32 unless ``dtype`` says otherwise (gradcheck
    uses float64). Integer data (token ids) stays integer and cannot require grad.
    """

    # Makes ``ndarray + Tensor`` call ``Tensor.__radd__`` instead of NumPy's own add.
    __array_priority__ = 1000

    def __init__(self, data, requires_grad: bool = False, dtype=None, device: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        if device is None:
            xp = array_module(data)
        else:
            xp = xp_for(device)
            if device == "cpu" and is_cupy_array(data):
                data = data.get()
        data = xp.asarray(data, dtype=dtype)
        if data.dtype.kind not in "biuf":   # bool, int, unsigned, float: what gradients and ids are made of
            raise TypeError(f"Tensor holds numbers (bool, integer or float), got {data.dtype} data")
        if dtype is None and data.dtype.kind == "f" and data.dtype != np.float32:
            data = data.astype(np.float32)
        self.data = data
        self.grad: Tensor | None = None
        self.requires_grad = False
        self.is_leaf = True  # made by the user, not by an op
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Callable | None = None
        self._op = ""
        self._retains_grad = False
        self._outputs: tuple[Tensor, ...] = ()  # all outputs of the op that made this one, if several
        if requires_grad:
            self.requires_grad_(True)

    # --- what it is --------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def device(self) -> str:
        return device_of(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = ", device='cuda'" if self.device == "cuda" else ""
        body = np.array2string(to_numpy(self.data), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{dev}{grad})"

    # --- conversions -------------------------------------------------------
    def requires_grad_(self, flag: bool = True) -> "Tensor":
        """Mark this tensor as a leaf whose gradient ``backward`` should compute."""
        if flag and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients; this one is {self.dtype}")
        self.requires_grad = flag
        return self

    def retain_grad(self) -> "Tensor":
        """Keep ``.grad`` on this non-leaf tensor too (for inspecting a graph)."""
        self._retains_grad = True
        return self

    def detach(self) -> "Tensor":
        """The same data, cut out of the graph: no parents, no gradient."""
        return Tensor(self.data, dtype=self.dtype)

    def to(self, device: str) -> "Tensor":
        """A copy on ``device`` (or this tensor, if it is already there). Not differentiable."""
        if self.device == check_device(device):
            return self
        return Tensor(to_device(self.data, device), requires_grad=self.requires_grad, dtype=self.dtype)

    # Checks a GPU cannot make at once: a flag computed on the device (say, "a target id is out
    # of range") travels with the result and is read where the result is, by ``numpy`` or ``item``,
    # which wait for the device anyway. ``defer_check`` adds one.
    _deferred: tuple = ()

    def defer_check(self, failed, message: str) -> "Tensor":
        """Raise ``ValueError(message)`` when this tensor is read (``numpy``, ``item``) if the
        0-d boolean array ``failed`` (on the device: not read now) is true."""
        self._deferred = self._deferred + ((failed, message),)
        return self

    def _read_with_checks(self, value=None):
        """The deferred checks' flags, and ``value`` (an array of one number) with them, read from the
        device in one transfer; a failed check raises. Returns the value read (None without one)."""
        xp = array_module(self.data)
        arrays = ([] if value is None else [value]) + [flag for flag, _ in self._deferred]
        read = xp.concatenate([xp.asarray(a).reshape(1).astype(xp.float64) for a in arrays]).tolist()
        failed = read if value is None else read[1:]
        for flag, (_, message) in zip(failed, self._deferred):
            if flag:
                raise ValueError(message)
        return None if value is None else read[0]

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array on the host."""
        if self._deferred:
            self._read_with_checks()
        return to_numpy(self.data)

    def item(self) -> float:
        """The single number in a one-element tensor, as a Python scalar."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        if not self._deferred:
            return self.data.item()
        value = self._read_with_checks(self.data)          # the value and the checks: one read, not one each
        return value if self.dtype.kind == "f" else int(value)

    # --- reverse-mode autodiff -------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires grad, adding it to ``leaf.grad``.

        ``grad`` is d(final loss)/d(self); it defaults to 1 for a scalar. The graph is
        freed as the walk goes (each op's saved arrays are let go once used) unless
        ``retain_graph`` is true.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: "
                               "no input of the computation had requires_grad=True")
        xp = array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() on a non-scalar tensor of shape {self.shape} needs "
                                   "a gradient of the same shape: t.backward(grad)")
            grad = xp.ones_like(self.data)
        else:
            grad = xp.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(grad): grad has shape {grad.shape}, tensor has {self.shape}")

        grads = {id(self): grad}  # node -> dLoss/dNode, summed over all its consumers
        kept: set[int] = set()    # the arrays handed to a .grad so far (by owner): no two may share one
        order = self._topological_order()
        # An op with several outputs (``split``) runs its backward once for all of them, when
        # the walk reaches the last of them: by then every consumer of each one is done.
        outputs_to_come = Counter(id(node._outputs) for node in order if node._outputs)
        for node in reversed(order):
            if node._outputs:
                outputs_to_come[id(node._outputs)] -= 1
                if outputs_to_come[id(node._outputs)]:
                    continue
                g = [grads.pop(id(out), None) for out in node._outputs]  # the backward takes them all
                if all(out_grad is None for out_grad in g):
                    continue
                for out, out_grad in zip(node._outputs, g):
                    if out._retains_grad and out_grad is not None:
                        out._accumulate_grad(out_grad, kept)
            else:
                g = grads.pop(id(node), None)
                if g is None:
                    continue  # no path from this node to the loss carried a gradient
                if node.is_leaf or node._retains_grad:
                    node._accumulate_grad(g, kept)
                if node.is_leaf:
                    continue
            if node._backward is None:
                raise RuntimeError(f"backward through the {node._op} op a second time: its saved arrays "
                                   "were freed by the first backward (use backward(retain_graph=True))")
            for parent, parent_grad in zip(node._parents, node._backward(g)):
                if parent_grad is None or not parent.requires_grad:
                    continue
                if parent_grad.shape != parent.shape:  # catches a wrong backward formula early
                    raise RuntimeError(f"{node._op} backward gave a gradient of shape {parent_grad.shape} "
                                       f"for an input of shape {parent.shape}")
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad
            if not retain_graph:
                # Let go of what this backward needed. Several outputs of one op also drop their
                # shared tuple: each is in it, a cycle that only the garbage collector would free.
                for out in node._outputs or (node,):
                    out._parents, out._backward, out._outputs = (), None, ()

    def _topological_order(self) -> list["Tensor"]:
        """Every tensor this one depends on (that requires grad), parents before children.

        An explicit stack instead of recursion: a deep network must not hit
        Python's recursion limit.
        """
        # BEGIN EXERCISE 1.1: topological order: every parent (that requires grad) before its children
        order, seen = [], set()
        stack = [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if p.requires_grad and id(p) not in seen)
        return order
        # END EXERCISE

    def _accumulate_grad(self, g, kept: set[int]) -> None:
        """Add ``g`` to ``self.grad``. The array ``self.grad`` ends up holding is its own: ops hand
        one array to several inputs (``a + b`` gives both the same ``g``), and whoever changes a
        gradient in place afterwards (scaling it, averaging it across processes) must not change
        another tensor's with it. So an array (or a view of one) already kept by another .grad in
        this backward is copied; ``kept`` holds the owners of the arrays kept so far."""
        if g.dtype != self.dtype:
            g = g.astype(self.dtype)
        owner = id(g if g.base is None else g.base)
        if not g.flags.c_contiguous or owner in kept:  # a broadcast view (stride 0), or someone else's
            g = g.copy()
            owner = id(g)
        if self.grad is not None:
            g = self.grad.data + g                         # a new array: the old one is not changed
            owner = id(g)
        kept.add(owner)
        self.grad = Tensor(g, dtype=self.dtype)


def from_op(data, parents: Sequence[Tensor], backward: Callable, op: str) -> Tensor:
    """Wrap an op's result, recording its parents and ``backward`` when a gradient can flow.

    ``backward(g)`` receives dLoss/d(result) as an array and returns one array (or
    None) per parent: dLoss/d(parent), already summed back to the parent's shape.
    """
    out = Tensor.__new__(Tensor)
    out.data = data
    out.grad = None
    out._op = op
    out._retains_grad = False
    out._outputs = ()
    if any(p._deferred for p in parents):      # a check not yet read travels on to what was made from it
        out._deferred = tuple({id(check): check for p in parents for check in p._deferred}.values())
    out.requires_grad = _grad_enabled and any(p.requires_grad for p in parents)
    out.is_leaf = not out.requires_grad
    out._parents = tuple(parents) if out.requires_grad else ()
    out._backward = backward if out.requires_grad else None
    return out


def from_op_outputs(datas: Sequence, parents: Sequence[Tensor], backward: Callable, op: str) -> tuple[Tensor, ...]:
    """``from_op`` for an op with several results. ``backward(gs)`` receives a list holding
    dLoss/d(each result), None for a result no gradient reached, and runs once for all."""
    outputs = tuple(from_op(data, parents, backward, op) for data in datas)
    if outputs[0].requires_grad:
        for out in outputs:
            out._outputs = outputs
    return outputs


def as_tensors(op: str, *values) -> list[Tensor]:
    """Turn an op's operands into tensors on one device (numbers adopt the first tensor's dtype)."""
    like = next(v for v in values if isinstance(v, Tensor))
    xp = array_module(like.data)
    # A plain number takes the dtype of the tensor beside it: x * 0.5 stays float32.
    dtype = like.dtype if like.dtype.kind == "f" else None
    tensors = [v if isinstance(v, Tensor) else
               Tensor(xp.asarray(v, dtype=dtype) if isinstance(v, (int, float)) else v, dtype=dtype)
               for v in values]
    # Integer tensors meeting a float one take its dtype: NumPy would make int64 + float32 float64.
    floats = [t.dtype for t in tensors if t.dtype.kind == "f"]
    if floats:
        tensors = [t if t.dtype.kind == "f" else Tensor(t.data.astype(floats[0])) for t in tensors]
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        where = ", ".join(f"{t.shape} on {t.device}" for t in tensors)
        raise RuntimeError(f"{op}: tensors on different devices ({where}); move them with .to(device)")
    return tensors
