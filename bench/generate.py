"""Generation speed by position: with the KV cache the cost per token stays flat,
without it every token recomputes the whole context and the cost grows with it.

    python bench/generate.py [--preset char-small] [--tokens 8]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import print_table  # noqa: E402
import tinyllm  # noqa: E402
from tinyllm.model import GPT, GPTConfig  # noqa: E402
from tinyllm.tensor import no_grad  # noqa: E402


@no_grad()
def ms_per_token(model: GPT, position: int, use_cache: bool, tokens: int) -> float:
    """Mean time of the next ``tokens`` steps once the context holds ``position`` tokens."""
    ids = list(np.random.default_rng(0).integers(0, model.config.vocab_size, position))
    cache = model.new_cache() if use_cache else None
    if use_cache:
        model(np.array([ids]), cache=cache)  # prefill, not timed
    start = time.perf_counter()
    for _ in range(tokens):
        ids.append(1)
        feed = ids[-1:] if use_cache else ids
        model(np.array([feed]), cache=cache)
    return (time.perf_counter() - start) / tokens * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="char-small")
    parser.add_argument("--tokens", type=int, default=8, help="timed tokens per position")
    args = parser.parse_args()
    tinyllm.manual_seed(0)
    model = GPT(GPTConfig.from_preset(args.preset, dropout=0.0)).eval()
    block = model.config.block_size
    rows = []
    for position in (block // 16, block // 4, block // 2, block - args.tokens):
        cached = ms_per_token(model, position, True, args.tokens)
        full = ms_per_token(model, position, False, args.tokens)
        rows.append([position, cached, full, f"{full / cached:.1f}"])
    print(f"{args.preset}: ms per generated token, by context length (1 sequence, float32, CPU)")
    print_table(["context", "KV cache ms", "full recompute ms", "speed-up"], rows)


if __name__ == "__main__":
    main()
