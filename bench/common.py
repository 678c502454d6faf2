"""Small helpers shared by the benchmark scripts: timing and a table printer.

Machines are noisy, so every benchmark reports ratios against a reference
measured in the same run, and takes the best of several interleaved repeats.
"""
from __future__ import annotations

import time
from typing import Callable


def best_time(fn: Callable[[], object], repeats: int = 5, sync: Callable[[], None] = lambda: None) -> float:
    """The fastest of ``repeats`` runs of ``fn`` in seconds (after one warm-up run)."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def print_table(header: list[str], rows: list[list[object]]) -> None:
    cells = [header] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def random_batch(preset: str, batch_size: int):
    """A preset's config (dropout off, for timing) and a (batch_size, block_size + 1) array of random ids."""
    import numpy as np
    from tinyllm.model import GPTConfig
    config = GPTConfig.from_preset(preset, dropout=0.0)
    ids = np.random.default_rng(0).integers(0, config.vocab_size, (batch_size, config.block_size + 1))
    return config, ids
