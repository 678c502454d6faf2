"""Optimizers: how a gradient becomes a step. ``from tinyllm import optim``.

    SGD      p -= lr · (momentum buffer of g)
    AdamW    p -= lr · m̂ / (√v̂ + eps), plus decoupled weight decay on matrices

Plus global-norm gradient clipping and the warmup + cosine learning-rate
schedule GPT training uses. Updates happen in place, on the parameters' own
device. Gradients are read, never modified in place (see ``Tensor._accumulate_grad``).

One flat array. Each update rule is a few lines of arithmetic on whole arrays.
Run parameter by parameter, that is a few small calls *per tensor*: some 900 GPU
kernels a step for char-small's 76 tensors, each mostly launch overhead. So the
optimizer gathers every parameter into one flat array, ``self.flat``, and makes
each ``p.data`` a view of its own slice of it; the rule then runs once over all of
it (PyTorch's "foreach" and "fused" optimizers do the same for the same reason).
The model does not notice: its parameters are the same objects, now backed by
the optimizer's array. Decayed parameters come first in it (by default the
matrices), so weight decay touches one leading slice.

Parameter groups, as PyTorch has them: ``AdamW([{"params": [...], "weight_decay": 0.0},
{"params": [...]}])``. A group that names ``weight_decay`` decays all of its parameters by
it; a group that does not (and a plain list of parameters) follows the default rule:
matrices (ndim ≥ 2) decay by the optimizer's ``weight_decay``, vectors do not.
"""
from __future__ import annotations

import math
from typing import Iterable, Union

import numpy as np

from . import cuda_kernels
from .backend import array_module, device_of, is_cupy_array, to_device
from .nn import Parameter


Params = Iterable[Union[Parameter, dict]]  # parameters, or groups {"params": [...], option: value}


class Optimizer:
    """Holds the parameters, gathered into ``self.flat``, and flat state buffers (``self.state[name]``)."""

    state_names: tuple[str, ...] = ()
    group_options: tuple[str, ...] = ()  # what a parameter group may set besides "params"

    def __init__(self, params: Params, lr: float, weight_decay: float = 0.0):
        if not lr >= 0:
            raise ValueError(f"learning rate must be 0 or more, got {lr}")
        self.params, self._decay_of = [], {}   # id(p) -> the weight decay p gets
        for group in self._groups(params):
            for p in {id(p): p for p in group["params"]}.values():  # a parameter given twice is one
                if id(p) in self._decay_of:
                    raise ValueError("a parameter appears in more than one parameter group")
                self.params.append(p)
                default = weight_decay if p.ndim >= 2 else 0.0
                self._decay_of[id(p)] = float(group.get("weight_decay", default))
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        self.lr = lr
        self.steps = 0
        self.state: dict[str, object] = {}  # name -> flat array laid out like self.flat
        self._gather()

    def _groups(self, params: Params) -> list[dict]:
        """``params`` as a list of groups: a plain list of parameters is one group."""
        params = list(params)
        if not any(isinstance(p, dict) for p in params):
            return [{"params": params}]
        if not all(isinstance(g, dict) for g in params):
            raise ValueError("give the optimizer either parameters or parameter groups (dicts), not both")
        groups = []
        for group in params:
            unknown = sorted(set(group) - {"params", *self.group_options})
            if "params" not in group or unknown:
                raise ValueError(f"a parameter group holds 'params' and may set {list(self.group_options)}; "
                                 f"got {sorted(group)}")
            group = {**group, "params": list(group["params"])}   # (the caller's dict stays as it was)
            if not all(isinstance(p, Parameter) for p in group["params"]):
                raise ValueError("a parameter group's 'params' must be Parameters (e.g. model.parameters())")
            if group.get("weight_decay", 0.0) < 0:
                raise ValueError(f"weight_decay must be 0 or more, got {group['weight_decay']}")
            groups.append(group)
        return groups

    def _gather(self) -> None:
        """Copy every parameter into one flat array; each ``p.data`` becomes a view of its slice."""
        first = self.params[0]
        for p in self.params:
            if (p.dtype, p.device) != (first.dtype, first.device):
                raise ValueError(f"optimizer: all parameters must share one dtype and device; got {p.dtype} "
                                 f"on {p.device} beside {first.dtype} on {first.device}")
        xp = array_module(first.data)
        layout = sorted(self.params, key=lambda p: -self._decay_of[id(p)])  # decayed first (a stable sort)
        self.flat = xp.concatenate([p.data.reshape(-1) for p in layout])
        self._slices, start = {}, 0
        self.decay_runs: list[tuple[slice, float]] = []  # (slice of self.flat, its weight decay), leading
        for p in layout:
            self._slices[id(p)] = slice(start, start + p.data.size)
            p.data = self.flat[self._slices[id(p)]].reshape(p.shape)
            wd = self._decay_of[id(p)]
            if wd and self.decay_runs and self.decay_runs[-1][1] == wd:   # the same decay: one longer run
                self.decay_runs[-1] = (slice(self.decay_runs[-1][0].start, start + p.data.size), wd)
            elif wd:
                self.decay_runs.append((slice(start, start + p.data.size), wd))
            start += p.data.size
        self._layout = layout
        self._views = [p.data for p in self.params]
        self.state = {name: to_device(buf, first.device).astype(self.flat.dtype, copy=False)
                      for name, buf in self.state.items()}
        self._scratch_buffers: dict[str, object] = {}  # made again, like the new self.flat, on first use

    def step(self) -> None:
        """One update of every parameter that has a gradient. A parameter without one (frozen
        with ``requires_grad=False``, or unused by the last backward) is left exactly as it was,
        and so is its optimizer state: no weight decay, no momentum (PyTorch skips it too; the
        step count behind AdamW's bias correction is the optimizer's, not each parameter's)."""
        self._gather_again_if_replaced()
        skipped = [self._slices[id(p)] for p in self.params if p.grad is None]
        if len(skipped) == len(self.params):
            return
        # The rule runs over the whole flat array at once, in place; put the skipped slices back
        # after it. (A state buffer the rule makes now starts at 0 and, with gradient 0, stays 0.)
        saved = [(buf, part, buf[part].copy()) for part in skipped for buf in (self.flat, *self.state.values())]
        self._update()
        for buf, part, values in saved:
            buf[part] = values

    def _update(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _update(), its update rule")

    def _gather_again_if_replaced(self) -> None:
        if any(p.data is not view for p, view in zip(self.params, self._views)):
            self._gather()  # a parameter's array was replaced (load_state_dict, .to(device)): gather again

    def flat_grad(self):
        """Every parameter's gradient gathered into one flat array laid out like ``self.flat``.

        The array is the optimizer's own scratch buffer ``"grad"``, rewritten on each call: the
        update may overwrite it. A parameter without a gradient counts as gradient 0 here
        (``step`` then puts it back as it was).
        """
        self._gather_again_if_replaced()
        xp = array_module(self.flat)
        return xp.concatenate([p.grad.data.reshape(-1) if p.grad is not None else
                               xp.zeros(p.data.size, dtype=self.flat.dtype) for p in self._layout],
                              out=self._scratch("grad"))

    def _scratch(self, name: str):
        """A working buffer shaped like ``self.flat``, kept between steps (not saved). Big arrays
        made afresh each step cost the OS a page fault per 4 KiB on the CPU; reused ones do not."""
        if name not in self._scratch_buffers:
            self._scratch_buffers[name] = array_module(self.flat).empty_like(self.flat)
        return self._scratch_buffers[name]

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (set it to None), before the next backward."""
        for p in self.params:
            p.grad = None

    def _buffer(self, name: str):
        """The flat state buffer ``name``: zeros laid out like ``self.flat``, made on first use."""
        if name not in self.state:
            self.state[name] = array_module(self.flat).zeros_like(self.flat)
        return self.state[name]

    def state_dict(self) -> dict:
        """Step count, learning rate and every state buffer, split back into one array per parameter."""
        return {"steps": self.steps, "lr": self.lr,
                "state": {name: [buf[self._slices[id(p)]].reshape(p.shape) for p in self.params]
                          for name, buf in self.state.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` saved, checking it fits these parameters first."""
        for name, buffers in state["state"].items():
            if name not in self.state_names or len(buffers) != len(self.params):
                raise ValueError(f"optimizer state {name!r} does not match this optimizer's "
                                 f"{len(self.params)} parameters")
            for i, (p, buf) in enumerate(zip(self.params, buffers)):
                if buf is not None and tuple(buf.shape) != p.shape:
                    raise ValueError(f"optimizer state {name}[{i}] has shape {tuple(buf.shape)}, "
                                     f"its parameter {p.shape}")
        self.steps, self.lr = int(state["steps"]), float(state["lr"])
        self.state = {}
        for name, buffers in state["state"].items():
            flat = self._buffer(name)  # zeros where a parameter had no state
            for p, buf in zip(self.params, buffers):
                if buf is not None:
                    flat[self._slices[id(p)]] = to_device(buf, device_of(flat)).reshape(-1)


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum: v = μ·v + g;  p -= lr·v."""

    state_names = ("momentum_buffer",)

    def __init__(self, params: Params, lr: float = 0.01, momentum: float = 0.0):
        super().__init__(params, lr)
        self.momentum = momentum

    def _update(self) -> None:
        """Move every parameter against its gradient (with momentum, if set)."""
        self.steps += 1
        g = self.flat_grad()  # (all parameters,) like self.flat
        # BEGIN EXERCISE 3.2: SGD with momentum: v = μ·v + g, then p -= lr·v
        if self.momentum:
            v = self._buffer("momentum_buffer")
            v *= self.momentum
            v += g
            g = v
        self.flat -= self.lr * g
        # END EXERCISE


class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    m = β1·m + (1-β1)·g          running mean of gradients
    v = β2·v + (1-β2)·g²         running mean of squared gradients
    p -= lr · (m/(1-β1ᵗ)) / (√(v/(1-β2ᵗ)) + eps)
    and, separately, p -= lr·wd·p: by default for weight matrices only (ndim ≥ 2), so
    biases, LayerNorm gains and other vectors are not pulled towards zero; a parameter
    group's own "weight_decay" overrides that for its parameters.
    """

    state_names = ("exp_avg", "exp_avg_sq")
    group_options = ("weight_decay",)

    def __init__(self, params: Params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01):
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"AdamW's betas must each be in [0, 1), got {betas}")
        if not (eps >= 0 and weight_decay >= 0):
            raise ValueError(f"AdamW's eps and weight_decay must be 0 or more, got {eps} and {weight_decay}")
        super().__init__(params, lr, weight_decay)
        self.betas, self.eps = betas, eps

    def _update(self) -> None:
        """One AdamW update of every parameter from its ``.grad``, at the current ``self.lr``."""
        self.steps += 1
        b1, b2 = self.betas
        bias1, bias2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps  # undo the zero start of m and v
        xp = array_module(self.flat)
        g = self.flat_grad()          # ours to overwrite
        m, v = self._buffer("exp_avg"), self._buffer("exp_avg_sq")
        if is_cupy_array(g):  # on a GPU: the same update as one fused kernel (cuda_kernels.py)
            first, *more = self.decay_runs or [(slice(0, 0), 0.0)]
            for part, wd in more:  # (more than one weight decay, from parameter groups: rare)
                self.flat[part] *= 1 - self.lr * wd
            cuda_kernels.adamw_step(self.flat, g, m, v, self.lr, self.betas, bias1, bias2, self.eps,
                                    first[1], first[0].stop)
            return
        step = self._scratch("step")  # every line below writes into an existing buffer: no new arrays
        # BEGIN EXERCISE 9.1: AdamW: decay matrices, update m and v, step by lr·m̂/(√v̂ + eps)
        for part, wd in self.decay_runs:  # the decayed parameters come first: by default, the matrices
            self.flat[part] *= 1 - self.lr * wd
        m *= b1
        xp.multiply(g, 1 - b1, out=step)
        m += step                     # m = β1·m + (1-β1)·g
        v *= b2
        g *= g
        g *= 1 - b2
        v += g                        # v = β2·v + (1-β2)·g²
        xp.sqrt(v, out=step)
        step *= 1 / math.sqrt(bias2)  # √v̂
        step += self.eps
        xp.divide(m, step, out=step)  # m / (√v̂ + eps)
        step *= self.lr / bias1       # lr · m̂ / (√v̂ + eps)
        self.flat -= step
        # END EXERCISE


def sum_of_squares(flat):
    """Σ g² over a float array (a 0-d array). The squares of values past about 1.8e19 overflow
    float32 to inf. On a GPU one fused kernel sums them in float64. On the CPU one dot product
    in float32 (BLAS: the fastest); reading it costs nothing there, so a sum of finite values
    that overflowed is done again with float64 accumulation (no copy)."""
    if is_cupy_array(flat):
        return cuda_kernels.sum_of_squares(flat)
    with np.errstate(over="ignore"):            # an overflow is dealt with just below
        total = flat @ flat
    if not np.isfinite(total) and np.isfinite(flat).all():
        total = np.einsum("i,i->", flat, flat, dtype=np.float64)
    return total


def clip_grad_norm_(params: Iterable[Parameter], max_norm: float, error_if_nonfinite: bool = False):
    """Scale all gradients together so their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping as a 0-d array (``float(norm)`` reads it;
    on a GPU that read waits for the GPU, so only do it when logging).
    The gradients are gathered into one flat array first, so the norm is one dot
    product and the scaling one multiply, not two calls per parameter (on a GPU,
    two kernel launches each); each parameter's new gradient is a view of its slice.
    ``error_if_nonfinite`` (as PyTorch's): raise when the norm is inf or nan, the
    gradients left as they were (this reads the norm: on a GPU, a wait).
    """
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    xp = array_module(params[0].grad.data)
    before = [p.grad.data for p in params]
    # BEGIN EXERCISE 9.2: global-norm clipping: one scale min(1, max_norm/‖g‖) for every gradient
    flat = xp.concatenate([p.grad.data.reshape(-1) for p in params])  # every gradient, end to end
    norm = xp.sqrt(sum_of_squares(flat))                               # ‖g‖ = √(Σ g²) over all of them
    flat *= xp.minimum(1.0, max_norm / (norm + 1e-6)).astype(flat.dtype)
    start = 0
    for p in params:  # new arrays (views of flat): the old gradients are never changed in place
        p.grad.data = flat[start:start + p.grad.size].reshape(p.grad.shape)
        start += p.grad.size
    # END EXERCISE
    if error_if_nonfinite and not math.isfinite(float(norm)):
        for p, grad in zip(params, before):
            p.grad.data = grad
        raise RuntimeError(f"the gradients' total norm is {float(norm)}, so clip_grad_norm_ cannot clip them: "
                           "a gradient holds inf or nan (a loss that diverged?)")
    return norm


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
