"""Layers with parameters, as in ``torch.nn``: Module, Linear, Embedding, LayerNorm, ...

A ``Module`` is an object that owns ``Parameter`` tensors, directly or through
child modules, and computes something in ``forward``. It finds its parameters by
looking at its own attributes, so ``self.fc = Linear(4, 8)`` is all it takes to
register a child. Names follow the attribute path: ``h.0.attn.c_attn.weight``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import numpy as np

from . import functional as F
from .backend import check_device, rng, to_device
from .tensor import Tensor


class Parameter(Tensor):
    """A tensor a module learns: it requires grad unless told otherwise."""

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)


class Module:
    """Base class of every layer and model."""

    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        hooks = vars(self).get("_forward_hooks")
        if hooks:                       # a list only once a hook was registered (most modules: never)
            for hook in list(hooks):
                hook(self, args, out)
        return out

    def register_forward_hook(self, hook: Callable[["Module", tuple, object], None]) -> Callable[[], None]:
        """Call ``hook(module, inputs, output)`` after every forward of this module (to look at
        activations, as PyTorch's method of this name does). Returns a function that removes it."""
        hooks = vars(self).setdefault("_forward_hooks", [])
        hooks.append(hook)
        return lambda: hooks.remove(hook) if hook in hooks else None

    # --- walking the tree ---------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """(attribute name, module) for each module held directly by this one."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module (named ``prefix``, "" by default) and every one below it."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        """This module and every module below it."""
        return (m for _, m in self.named_modules())

    def layers_of_type(self, kind: type, not_inside: type | tuple = ()) -> list[tuple["Module", str, str]]:
        """(parent, attribute, dotted name) of every ``kind`` module below this one, but those held
        by a ``not_inside`` module: where ``setattr(parent, attribute, new)`` swaps a layer."""
        return [(parent, attr, f"{name}.{attr}" if name else attr) for name, parent in self.named_modules()
                if not isinstance(parent, not_inside) for attr, child in parent.named_children()
                if isinstance(child, kind)]

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules appears once."""
        seen: set[int] = set()
        for name, p in self._all_named_parameters(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _all_named_parameters(self, prefix: str) -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value._all_named_parameters(prefix + name + ".")

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter of this module and those below it, each once (what an optimizer takes)."""
        return (p for _, p in self.named_parameters())

    # --- modes and gradients ------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active); ``eval()`` switches it off."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> "Module":
        """Evaluation mode: dropout off. Returns the module, for ``model.eval()(ids)``."""
        return self.train(False)

    @contextmanager
    def evaluating(self) -> Iterator["Module"]:
        """``with model.evaluating():`` evaluation mode inside, the mode it had before restored after
        (on an error too): for code that measures or predicts in the middle of a training run."""
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    def zero_grad(self) -> None:
        """Forget the gradients of the last backward (set them to None, as PyTorch does)."""
        for p in self.parameters():
            p.grad = None

    def to(self, device: str | None = None, dtype=None) -> "Module":
        """Move every parameter to ``device`` and/or cast it to ``dtype``, in place."""
        for p in self.parameters():
            data = p.data if device is None else to_device(p.data, check_device(device))
            p.data = data if dtype is None else data.astype(dtype)
            p.grad = None
        return self

    # --- saving and loading ------------------------------------------------
    def state_dict(self) -> dict[str, object]:
        """Parameter name -> array (the parameter's own array, not a copy)."""
        return {name: p.data for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, object], strict: bool = True) -> None:
        """Copy arrays into the parameters, checking every name and shape before changing any.

        With ``strict`` a missing or unexpected name is an error; a wrong shape always is.
        Arrays may come from either device: each goes to its parameter's device and dtype.
        """
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, value in state.items():
            if name in params and tuple(value.shape) != params[name].shape:
                raise ValueError(f"load_state_dict: {name} has shape {tuple(value.shape)} in the "
                                 f"state dict but {params[name].shape} in the model")
        for name, value in state.items():
            if name in params:
                p = params[name]
                # order="C": stored as rows, even when given a transposed view
                p.data = to_device(value, p.device).astype(p.dtype, order="C", copy=True)

    # --- printing -----------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n" + "\n".join(children) + "\n)"


class ModuleList(Module):
    """A list of modules whose parameters are found like any other child's (named 0, 1, ...)."""

    def __init__(self, modules: Iterable[Module] = ()):
        self._length = 0
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> None:
        """Add ``module`` at the end, under the name of its index."""
        setattr(self, str(self._length), module)
        self._length += 1

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Module]:
        return (getattr(self, str(i)) for i in range(self._length))

    def __getitem__(self, i: int) -> Module:
        return getattr(self, str(range(self._length)[i]))


_draw_weights = True


@contextmanager
def skip_init() -> Iterator[None]:
    """Layers made inside start with zero weights instead of random draws: for a model whose
    weights are loaded next. Drawing is the slow part of making one (GPT-2: 124M normal
    samples, about 3 s on a laptop core; gpt2-xl's 1.5 billion, about 35 s)."""
    global _draw_weights
    previous, _draw_weights = _draw_weights, False
    try:
        yield
    finally:
        _draw_weights = previous


def initializing() -> bool:
    """False inside ``skip_init``: a layer made now gets its numbers from a file, so it need not compute them."""
    return _draw_weights


def _normal(shape: tuple[int, ...], std: float) -> np.ndarray:
    """float32 samples from N(0, std²) from tinyllm's seeded generator (see ``manual_seed``)."""
    if not _draw_weights:
        return np.zeros(shape, np.float32)  # the OS hands out zeroed pages lazily: nearly free
    return rng(np).standard_normal(shape, dtype=np.float32) * np.float32(std)


class Linear(Module):
    """y = x Wᵀ + b, with W of shape (out_features, in_features) as in PyTorch."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, std: float = 0.02):
        self.weight = Parameter(_normal((out_features, in_features), std))
        self.bias = Parameter(np.zeros(out_features, np.float32)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        out_f, in_f = self.weight.shape
        return f"in_features={in_f}, out_features={out_f}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` is the vector for id ``i``."""

    def __init__(self, num_embeddings: int, embedding_dim: int, std: float = 0.02):
        self.weight = Parameter(_normal((num_embeddings, embedding_dim), std))

    def forward(self, ids) -> Tensor:
        # BEGIN EXERCISE 6.2: embedding lookup: the row of weight for each id, by indexing the Tensor
        # weight[ids]: (V, C)[(B, T)] -> (B, T, C); the backward scatter-adds into the rows used.
        return self.weight[ids]
        # END EXERCISE

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"


class LayerNorm(Module):
    """Normalise the last axis, then scale and shift it by learned weight (1s) and bias (0s)."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5, bias: bool = True):
        self.eps = eps
        self.weight = Parameter(np.ones(normalized_shape, np.float32))
        self.bias = Parameter(np.zeros(normalized_shape, np.float32)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class Dropout(Module):
    """In training, zero each value with probability ``p`` and scale the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GELU(Module):
    """The Gaussian error linear unit, GPT-2's activation (tanh approximation)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x)
