"""Looking inside a training run: the activations, the gradients and the updates of every layer.

    acts = activations(model, ids)                 # per block: its GELU's input and its output
    stats = {name: describe(a, GELU_FLAT_BELOW) for name, a in acts.items()}
    grads = gradient_statistics(model)             # after a backward: per weight matrix
    before = parameter_snapshot(model)
    opt.step()
    ratios = update_to_data_ratios(model, before)  # std(Δw) / std(w), per weight matrix

What healthy tends to look like (rules of thumb from makemore's lectures, not laws):
activations of order 1 with few of them where their nonlinearity is flat; gradients of
similar size in every layer; and each step changing a weight matrix by about a thousandth
of its spread (an update-to-data ratio near 1e-3). Far less and a layer barely learns; far
more and it thrashes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import to_numpy
from .model import GPT
from .tensor import no_grad

# GELU(x) = x·Φ(x) has a slope under 0.012 in size for every x below -3: a unit whose
# input sits there passes almost no gradient back (GELU's counterpart of a saturated tanh).
GELU_FLAT_BELOW = -3.0


@dataclass(frozen=True)
class Statistics:
    """An array summed up: mean, standard deviation, and the share of its values in a flat region."""
    mean: float
    std: float
    flat: float   # the share below ``flat_below`` (0 when none was given)


def describe(values, flat_below: float | None = None) -> Statistics:
    """The mean and standard deviation of ``values`` (any shape, either device), and the share
    of them below ``flat_below``."""
    v = np.asarray(to_numpy(values), dtype=np.float64)
    if v.size == 0:
        raise ValueError("describe needs at least one value")
    flat = float((v < flat_below).mean()) if flat_below is not None else 0.0
    return Statistics(float(v.mean()), float(v.std()), flat)


@no_grad()
def activations(model: GPT, ids) -> dict[str, np.ndarray]:
    """Run ``model(ids)`` once and keep, for every block i, what its MLP's GELU was given
    (``"h.i.mlp.gelu"``, (B, T, 4C)) and what the block handed on (``"h.i"``, the residual
    stream, (B, T, C)), as NumPy arrays."""
    kept: dict[str, np.ndarray] = {}

    def keep(name: str, use_input: bool):
        def hook(module, inputs, output):
            kept[name] = to_numpy((inputs[0] if use_input else output).data)
        return hook

    removers = []
    for i, block in enumerate(model.h):
        removers.append(block.mlp.gelu.register_forward_hook(keep(f"h.{i}.mlp.gelu", use_input=True)))
        removers.append(block.register_forward_hook(keep(f"h.{i}", use_input=False)))
    try:
        model(ids)
    finally:
        for remove in removers:
            remove()
    return kept


def _matrices(model: GPT):
    """(name, parameter) of every weight matrix: the parameters that hold nearly all the learning."""
    return [(name, p) for name, p in model.named_parameters() if p.ndim == 2]


def gradient_statistics(model: GPT) -> dict[str, Statistics]:
    """``describe`` of every weight matrix's gradient, after a backward (matrices without one are left out)."""
    return {name: describe(p.grad.data) for name, p in _matrices(model) if p.grad is not None}


def parameter_snapshot(model: GPT) -> dict[str, np.ndarray]:
    """A copy of every weight matrix, to measure the step that comes next against."""
    return {name: to_numpy(p.data).copy() for name, p in _matrices(model)}


def update_to_data_ratios(model: GPT, before: dict[str, np.ndarray]) -> dict[str, float]:
    """std(w_now − w_before) / std(w_before) for every weight matrix in ``before``
    (``parameter_snapshot`` taken before the step): how large the step was beside the weights."""
    params = dict(model.named_parameters())
    ratios = {}
    for name, old in before.items():
        # BEGIN EXERCISE 15.2: update-to-data ratio: the spread of this step's change over the spread of the weights
        update = to_numpy(params[name].data).astype(np.float64) - old
        ratios[name] = float(update.std() / old.std())
        # END EXERCISE
    return ratios
