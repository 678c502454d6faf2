"""Optimizers: how a gradient becomes a step. ``from tinyllm import optim``.

    SGD      p -= lr · (momentum buffer of g)
    AdamW    p -= lr · m̂ / (√v̂ + eps), plus decoupled weight decay on matrices

Plus global-norm gradient clipping and the warmup + cosine learning-rate
schedule GPT training uses. Updates happen in place, on the parameters' own
device; state buffers are made on the first step, beside their parameters.
Gradients are read, never modified in place (see ``Tensor._accumulate_grad``).
"""
from __future__ import annotations

import math
from typing import Iterable

from .backend import array_module, to_device
from .nn import Parameter


class Optimizer:
    """Holds the parameters and the per-parameter state buffers (``self.state[name]``)."""

    state_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Parameter], lr: float):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        self.lr = lr
        self.steps = 0
        self.state: dict[str, list] = {name: [None] * len(self.params) for name in self.state_names}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _buffer(self, name: str, i: int):
        """State buffer ``name`` of parameter ``i``: zeros shaped like it, made on first use."""
        buf = self.state[name][i]
        if buf is None:
            buf = self.state[name][i] = array_module(self.params[i].data).zeros_like(self.params[i].data)
        return buf

    def state_dict(self) -> dict:
        """Step count, learning rate and every state buffer (None where a parameter never had a grad)."""
        return {"steps": self.steps, "lr": self.lr, "state": {k: list(v) for k, v in self.state.items()}}

    def load_state_dict(self, state: dict) -> None:
        for name, buffers in state["state"].items():
            if name not in self.state or len(buffers) != len(self.params):
                raise ValueError(f"optimizer state {name!r} does not match this optimizer's "
                                 f"{len(self.params)} parameters")
            for i, (p, buf) in enumerate(zip(self.params, buffers)):
                if buf is not None and tuple(buf.shape) != p.shape:
                    raise ValueError(f"optimizer state {name}[{i}] has shape {tuple(buf.shape)}, "
                                     f"its parameter {p.shape}")
        self.steps, self.lr = int(state["steps"]), float(state["lr"])
        self.state = {name: [None] * len(self.params) for name in self.state_names}  # buffers not saved: zeros
        for name, buffers in state["state"].items():
            self.state[name] = [None if b is None else to_device(b, p.device).astype(p.dtype, copy=True)
                                for p, b in zip(self.params, buffers)]


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum: v = μ·v + g;  p -= lr·v."""

    state_names = ("momentum_buffer",)

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.0):
        super().__init__(params, lr)
        self.momentum = momentum

    def step(self) -> None:
        self.steps += 1
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            # BEGIN EXERCISE 3.2: SGD with momentum: v = μ·v + g, then p -= lr·v
            g = p.grad.data
            if self.momentum:
                v = self._buffer("momentum_buffer", i)
                v *= self.momentum
                v += g
                g = v
            p.data -= self.lr * g
            # END EXERCISE


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    m = β1·m + (1-β1)·g          running mean of gradients
    v = β2·v + (1-β2)·g²         running mean of squared gradients
    p -= lr · (m/(1-β1ᵗ)) / (√(v/(1-β2ᵗ)) + eps)
    and, separately, p -= lr·wd·p for weight matrices only (ndim ≥ 2): biases,
    LayerNorm gains and other vectors are not pulled towards zero.
    """

    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Iterable[Parameter], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        bias1, bias2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps  # undo the zero start of m and v
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad.data
            m, v = self._buffer("exp_avg", i), self._buffer("exp_avg_sq", i)
            # BEGIN EXERCISE 9.1: AdamW: decay matrices, update m and v, step by lr·m̂/(√v̂ + eps)
            if self.weight_decay and p.ndim >= 2:
                p.data *= 1 - self.lr * self.weight_decay
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            denom = array_module(v).sqrt(v / bias2)
            denom += self.eps
            p.data -= (self.lr / bias1) * m / denom
            # END EXERCISE


def clip_grad_norm_(params: Iterable[Parameter], max_norm: float):
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping as a 0-d array (``float(norm)`` reads it;
    on a GPU that read waits for the GPU, so only do it when logging).
    """
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    xp = array_module(params[0].grad.data)
    # BEGIN EXERCISE 9.2: global-norm clipping: one scale min(1, max_norm/‖g‖) for every gradient
    norm = xp.sqrt(sum((p.grad.data * p.grad.data).sum() for p in params))
    scale = xp.minimum(1.0, max_norm / (norm + 1e-6)).astype(params[0].grad.dtype)
    for p in params:
        p.grad.data = p.grad.data * scale  # a new array: gradients are never changed in place
    return norm
    # END EXERCISE


def cosine_lr(step: int, max_lr: float, min_lr: float, warmup_steps: int, decay_steps: int) -> float:
    """Linear warmup to ``max_lr`` over ``warmup_steps``, then a cosine down to ``min_lr`` at ``decay_steps``."""
    # BEGIN EXERCISE 9.3: learning rate: linear warmup, then a cosine from max_lr to min_lr
    if step < warmup_steps:
        return max_lr * (step + 1) / (warmup_steps + 1)
    if step >= decay_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, decay_steps - warmup_steps)  # 0 -> 1
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)
    # END EXERCISE
