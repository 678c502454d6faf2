"""Generation speed by position: with the KV cache the cost per token stays flat,
without it every token recomputes the whole context and the cost grows with it.

    python bench/generate.py [--preset char-small] [--tokens 8]
    python bench/generate.py --vs-transformers [--tokens 40]

--vs-transformers: GPT-2 124M (random weights, the same in both) generating greedily in
tinyllm and in Hugging Face transformers (when installed), turn about: tokens/s of each,
their ratio, and whether the two chose the same tokens.
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
from tinyllm.nn import skip_init  # noqa: E402
from tinyllm.pretrained import gpt2_state_dict  # noqa: E402
from tinyllm.sample import generate  # noqa: E402
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


def versus_transformers(tokens: int) -> None:
    try:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        print("Hugging Face transformers is not installed here: nothing to compare with")
        return
    torch.manual_seed(0)
    theirs = GPT2LMHeadModel(GPT2Config()).eval()
    with skip_init():
        ours = GPT(GPTConfig.from_preset("gpt2"))
    ours.load_state_dict(gpt2_state_dict({name: t.numpy() for name, t in theirs.state_dict().items()}))
    prompt = np.random.default_rng(0).integers(0, 50257, 12).tolist()
    ours_ids = generate(ours.eval(), prompt, tokens, top_k=1)
    with torch.no_grad():
        run_theirs = lambda: theirs.generate(torch.tensor([prompt]), max_new_tokens=tokens, min_new_tokens=tokens,
                                             do_sample=False, pad_token_id=0)[0].tolist()
        theirs_ids = run_theirs()
        times = {"tinyllm": [], "transformers": []}
        for _ in range(3):   # in turn, so a slow phase of the machine slows both
            # both already ran once above (the token comparison), so no warm-up run is needed here
            for name, run in (("tinyllm", lambda: generate(ours, prompt, tokens, top_k=1)),
                              ("transformers", run_theirs)):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    speed = {name: tokens / min(t) for name, t in times.items()}
    print(f"GPT-2 124M, greedy, {tokens} tokens after a 12-token prompt, 1 sequence, float32, CPU "
          f"(torch threads: {torch.get_num_threads()}); the same tokens: {ours_ids == theirs_ids}")
    print_table(["implementation", "tokens/s", "ratio"],
                [[name, s, f"{s / speed['transformers']:.2f}"] for name, s in speed.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="char-small")
    parser.add_argument("--tokens", type=int, default=8, help="timed tokens per position")
    parser.add_argument("--vs-transformers", action="store_true",
                        help="GPT-2 124M in tinyllm beside Hugging Face transformers (see above)")
    args = parser.parse_args()
    if args.vs_transformers:
        return versus_transformers(args.tokens)
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
