"""What a model and a machine are measured by: the loss on a whole text, the FLOPs a token
costs, and the most FLOPs the machine can do.

``text_loss`` scores every token of a text once (``tinyllm eval``, and the lessons' bits per
character); ``flops_per_token`` and ``gemm_peak_flops`` give the training log its MFU, the
share of the machine's peak a step uses.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from .backend import xp_for
from .model import GPT, GPTConfig
from .tensor import no_grad


def gemm_peak_flops(n: int | None = None, device: str = "cpu") -> float:
    """float32 FLOP/s of a large (n, n) matmul on ``device``: the ceiling a GEMM-bound step can reach.

    n defaults to 1024 on the CPU and 4096 on a GPU, which a smaller product cannot fill."""
    n = n or (4096 if device == "cuda" else 1024)
    xp = xp_for(device)
    a = xp.ones((n, n), dtype=xp.float32)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        float((a @ a)[0, 0])  # reading one element waits for the GPU too
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def flops_per_token(config: GPTConfig, n_params: int) -> float:
    """Forward + backward FLOPs per token: 6 per parameter, plus attention's two T×T products
    (12·n_layer·n_embd·block_size; the PaLM paper's estimate, as in nanoGPT)."""
    return 6 * n_params + 12 * config.n_layer * config.n_embd * config.block_size



@no_grad()
def text_loss(model: GPT, ids: Sequence[int], tokens_per_batch: int = 2048,
              progress: Callable[[int, int], None] | None = None) -> float:
    """Mean cross-entropy, in nats, of every token of ``ids`` after the first, each predicted once.

    ``ids`` is read in consecutive windows of the model's context T: window i predicts tokens
    iT+1 .. iT+T from tokens iT .. iT+T-1 (so a token sees at most T-1 before it, and the first
    of a window none of the earlier windows). ``progress(done, total)`` hears after each batch.
    """
    ids = np.asarray(ids)
    T, n = model.config.block_size, len(ids) - 1          # n tokens to predict
    if n < 1:
        raise ValueError("text_loss needs at least 2 tokens: one to read, one to predict")
    full = n // T
    windows = [(ids[:full * T].reshape(full, T), ids[1:full * T + 1].reshape(full, T))]
    if n % T:                                              # the rest: one shorter window
        windows.append((ids[None, full * T:-1], ids[None, full * T + 1:]))
    total, done = 0.0, 0
    with model.evaluating():
        for x, y in windows:
            rows = max(1, tokens_per_batch // x.shape[1])      # the logits of a batch: rows·T·vocab floats
            for i in range(0, len(x), rows):
                _, loss = model(x[i:i + rows], y[i:i + rows])  # mean over the batch's tokens
                total += loss.item() * y[i:i + rows].size
                done += y[i:i + rows].size
                if progress:
                    progress(done, n)
    return total / n
