"""LoRA: fine-tune a big model by learning a small, low-rank change to some of its matrices.

A full fine-tune learns an update ΔW for every weight matrix W (n_out × n_in), and AdamW
keeps two moments for each of its numbers: for GPT-2 124M, some 1.5 GB of optimizer state
beside 0.5 GB of weights. LoRA (Hu et al., 2021) bets that the update a fine-tune needs has
low rank, and learns it as a product instead:

    y = W x + b + (alpha / r) · B (A x)      A: (r, n_in), B: (n_out, r), r ≪ n_in, n_out

W and b are frozen (``requires_grad = False``): no gradient, no optimizer state, no weight
decay. Only A and B train: r·(n_in + n_out) numbers per matrix instead of n_in·n_out. A starts
small and random, B at zero, so at the start B A = 0 and the model is exactly the one it wraps.
alpha / r keeps the size of the update's effect the same when you change r (the paper's rule).

After training, ``merge_lora`` folds the update into the weights, W ← W + (alpha/r)·B A, and
gives back a plain GPT: no extra cost at inference, and it exports like any other.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np

from . import functional as F
from .backend import to_device
from .nn import Dropout, Linear, Module, Parameter, _normal
from .tensor import Tensor

DEFAULT_TARGETS = ("c_attn",)  # the attention's q, k, v projection, as the LoRA paper adapts W_q and W_v


class LoRALinear(Module):
    """A frozen ``Linear`` plus a trainable low-rank update: ``base(x) + (alpha/r) · B(A(dropout(x)))``."""

    def __init__(self, base: Linear, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        out_features, in_features = base.weight.shape
        if not 1 <= rank <= min(in_features, out_features):
            raise ValueError(f"LoRA rank must be between 1 and {min(in_features, out_features)} for a "
                             f"{in_features} -> {out_features} layer, got {rank}")
        for p in base.parameters():
            p.requires_grad = False
        self.base = base
        self.rank, self.alpha, self.scale = rank, alpha, alpha / rank
        self.lora_A = Parameter(_normal((rank, in_features), 1 / math.sqrt(in_features)))  # x -> r numbers
        self.lora_B = Parameter(np.zeros((out_features, rank), np.float32))                 # zeros: ΔW = 0
        for p in (self.lora_A, self.lora_B):   # on the base's device, in its dtype
            p.data = to_device(p.data, base.weight.device).astype(base.weight.dtype, copy=False)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN EXERCISE 19.1: LoRA's forward: the frozen layer's output plus scale · B(A(dropout(x)))
        # (B, T, n_in) @ (n_in, r) -> (B, T, r) @ (r, n_out) -> (B, T, n_out): two thin products
        update = F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)
        return self.base(x) + update * self.scale
        # END EXERCISE

    def merged_weight(self):
        """W + (alpha/r)·B A, as an array: the weight of the plain Linear this layer equals."""
        return self.base.weight.data + self.scale * (self.lora_B.data @ self.lora_A.data)  # (out, r) @ (r, in)

    def extra_repr(self) -> str:
        out_f, in_f = self.base.weight.shape
        return f"{in_f} -> {out_f}, rank={self.rank}, alpha={self.alpha:g}, dropout={self.dropout.p:g}"


def apply_lora(model: Module, rank: int = 8, alpha: float = 16.0, targets: Sequence[str] = DEFAULT_TARGETS,
               dropout: float = 0.0) -> Module:
    """Freeze every parameter of ``model`` and wrap each Linear named in ``targets`` in a
    ``LoRALinear``, in place; returns ``model``. A target matches a layer's own name
    ("c_attn" matches every block's) or its whole dotted name ("h.0.attn.c_attn")."""
    layers = model.layers_of_type(Linear, not_inside=LoRALinear)  # (not a LoRA's own base)
    chosen = [(parent, attr, name) for parent, attr, name in layers if attr in targets or name in targets]
    unmatched = [t for t in targets if not any(t in (attr, name) for _, attr, name in layers)]
    if unmatched or not targets:
        kinds = list(dict.fromkeys(attr for _, attr, _ in layers))
        example = next((name for _, _, name in layers if "." in name), layers[0][2])
        raise ValueError(f"LoRA targets {list(unmatched or targets)} match no Linear layer of the model; "
                         f"its Linear layers are {', '.join(kinds)} (or a full name such as {example})")
    shared = Counter(id(p) for _, p in model._all_named_parameters(""))  # a tied weight appears twice
    for parent, attr, name in chosen:
        if shared[id(getattr(parent, attr).weight)] > 1:
            raise ValueError(f"LoRA on {name}: its weight is tied to another layer's (GPT ties lm_head to "
                             "wte), and merging the update would change both; choose other targets")
    for p in model.parameters():
        p.requires_grad = False
    for parent, attr, _ in chosen:
        setattr(parent, attr, LoRALinear(getattr(parent, attr), rank, alpha, dropout))
    return model


def lora_settings(model: Module) -> dict | None:
    """rank, alpha, dropout and the adapted layers' names of a model ``apply_lora`` changed
    (what ``apply_lora`` needs to do it again); None for a plain model."""
    layers = model.layers_of_type(LoRALinear)
    if not layers:
        return None
    first = getattr(layers[0][0], layers[0][1])
    return {"rank": first.rank, "alpha": first.alpha, "dropout": first.dropout.p,
            "targets": [name for _, _, name in layers]}


def merge_lora(model: Module) -> Module:
    """Fold every LoRA update into its layer's weight, W ← W + (alpha/r)·B A, put the plain
    Linear back, and make every parameter trainable again, as a freshly built model's; returns
    ``model`` (a plain model passes through unchanged)."""
    layers = model.layers_of_type(LoRALinear)
    for parent, attr, _ in layers:
        lora = getattr(parent, attr)
        lora.base.weight.data = lora.merged_weight()
        setattr(parent, attr, lora.base)
    if layers:
        for p in model.parameters():
            p.requires_grad = True
    return model
