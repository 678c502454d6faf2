"""Quantized weights beside float32: file size, memory, speed and perplexity, side by side.

    python bench/quantize.py [--steps 600] [--preset gpt2] [--context 256] [--no-memory]

Part 1, quality: a char model and a BPE model (vocabulary 512) pretrained here on pydoc's
first 90% (``--steps`` each), then each quantized every way ``tinyllm quantize`` offers:
the checkpoint's size (weights only, no optimizer state, for float32 too), the perplexity on
pydoc's last 10% and its change against float32, and the tokens/s of scoring that text.

With GPT-2's files (``--gpt2 DIR``, the README's download), GPT-2 124M too, scored on the first
``--gpt2-tokens`` tokens of that text.

Part 2, memory: GPT-2 124M's shape with random weights (the weights cannot be downloaded on
these machines; size and memory do not depend on them), saved in float32, int8 and int4;
then one fresh process per file loads it and scores one window of ``--context`` tokens: the
file's size and the process's peak resident memory.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import print_table  # noqa: E402
from bench.train_step import own_peak_kib  # noqa: E402

# (label, bits, group size, the embedding too): every way tinyllm quantize offers, and float32
WAYS = [("float32", None, None, False), ("int8 per channel", 8, None, False), ("int8 + embedding", 8, None, True),
        ("int4 g32", 4, 32, False), ("int4 g64", 4, 64, False), ("int4 g128", 4, 128, False),
        ("int4 g64 + embedding", 4, 64, True)]


def quality(tokenizer: str, steps: int, work: Path) -> list[list[object]]:
    """Pretrain one model, quantize it every way, and score each on pydoc's held-out 10%."""
    from tinyllm.checkpoint import load_checkpoint, save_checkpoint
    from tinyllm.data import load_corpus, train_val_split
    from tinyllm.train import TrainConfig, train
    out = work / tokenizer
    print(f"pretraining a baby {tokenizer} model on pydoc for {steps} steps ...", file=sys.stderr, flush=True)
    train(TrainConfig(out=str(out), tokenizer=tokenizer, vocab_size=512 if tokenizer == "bpe" else None,
                      max_iters=steps, eval_interval=steps, eval_iters=1, sample_tokens=0, log_interval=10**6),
          log=lambda line: None)
    tok = load_checkpoint(out)["tokenizer"]
    held_out = tok.encode(train_val_split(load_corpus("pydoc"))["val"])

    def file_kib(model, label: str) -> float:   # the checkpoint each way writes, without optimizer state
        path = save_checkpoint(work / f"{tokenizer}-{label.replace(' ', '_')}", model, None, tok, 0)
        return path.stat().st_size / 1024
    return score_every_way(out, tokenizer, held_out, file_kib)


def gpt2_quality(directory: str, max_tokens: int) -> list[list[object]]:
    """GPT-2 (its files in ``directory``) quantized every way its widths allow, on pydoc's held-out text;
    its size: the bytes of the weights it holds (no file written)."""
    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.data import load_corpus, train_val_split
    tok = load_checkpoint(directory, device="cpu")["tokenizer"]
    held_out = tok.encode(train_val_split(load_corpus("pydoc"))["val"])[:max_tokens]
    return score_every_way(directory, "gpt2", held_out,
                           lambda model, label: sum(p.data.nbytes for p in model.parameters()) / 1024)


def score_every_way(source, name: str, held_out: list[int], size_kib) -> list[list[object]]:
    """The model at ``source`` loaded afresh and quantized each of the WAYS its width allows: its
    size (``size_kib(model, label)``), perplexity on ``held_out``, the change from float32, tokens/s."""
    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.quantize import quantize_model
    from tinyllm.metrics import text_loss
    rows, reference = [], None
    for label, bits, group_size, embedding in WAYS:
        model = load_checkpoint(source, device="cpu")["model"]
        if group_size and model.config.n_embd % group_size:
            continue
        if bits:
            quantize_model(model, bits, group_size, embedding)
        size = size_kib(model, label)
        began = time.perf_counter()
        loss = text_loss(model, held_out)
        seconds = time.perf_counter() - began
        reference = reference or math.exp(loss)
        rows.append([name, label, f"{size:.0f}", f"{math.exp(loss):.4f}", f"{math.exp(loss) / reference - 1:+.2%}",
                     f"{len(held_out) / seconds:,.0f}"])
    return rows


def memory_in_this_process(path: str, context: int) -> dict:
    """Load the checkpoint at ``path`` and score one window: this fresh process's peak memory."""
    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.tensor import no_grad
    model = load_checkpoint(path)["model"]
    ids = np.random.default_rng(0).integers(0, model.config.vocab_size, (1, context + 1))
    with no_grad():
        model(ids[:, :-1], ids[:, 1:])
    return {"peak_rss_mb": own_peak_kib() / 1024}


def memory(preset: str, context: int, work: Path) -> list[list[object]]:
    """GPT-2's shape, random weights: each way saved, then loaded and run in a fresh process."""
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.checkpoint import save_checkpoint
    from tinyllm.quantize import quantize_model
    from tinyllm.tokenizer import CharTokenizer
    rows = []
    for label, bits, group_size, embedding in [w for w in WAYS if w[0] in ("float32", "int8 + embedding",
                                                                          "int4 g64 + embedding")]:
        model = GPT(GPTConfig.from_preset(preset, block_size=context, dropout=0.0))
        if bits:
            quantize_model(model, bits, group_size, embedding)
        path = save_checkpoint(work / f"{preset}-{label.replace(' ', '_')}", model, None, CharTokenizer("ab"), 0)
        del model
        argv = [sys.executable, __file__, "--child", str(path), "--context", str(context)]
        child = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        rows.append([preset, label, f"{path.stat().st_size / 2**20:.0f}", f"{child['peak_rss_mb']:.0f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=600, help="pretraining steps of each pydoc model")
    parser.add_argument("--tokenizers", default="char,bpe")
    parser.add_argument("--preset", default="gpt2", help="the model shape of part 2")
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--no-memory", action="store_true", help="skip part 2")
    parser.add_argument("--no-quality", action="store_true", help="skip part 1")
    parser.add_argument("--gpt2", default="gpt2", help="GPT-2's downloaded files, measured in part 1 when present")
    parser.add_argument("--gpt2-tokens", type=int, default=20_000, help="held-out tokens GPT-2 is scored on")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(memory_in_this_process(args.child, args.context)))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-quantize-"))
    if not args.no_quality:
        rows = [row for tokenizer in args.tokenizers.split(",") for row in quality(tokenizer, args.steps, work)]
        if (Path(args.gpt2) / "model.safetensors").is_file():   # (its "file KiB": the weights it holds)
            rows += gpt2_quality(args.gpt2, args.gpt2_tokens)
        print(f"quality: baby models pretrained {args.steps} steps on pydoc; perplexity on pydoc's last 10%"
              + (f" (GPT-2: its first {args.gpt2_tokens:,} tokens)" if rows[-1][0] == "gpt2" else ""))
        print_table(["tokenizer", "weights", "file KiB", "perplexity", "vs float32", "tokens/s scored"], rows)
    if not args.no_memory:
        print(f"\nmemory: {args.preset} shape, random weights; a fresh process loads the file and scores "
              f"1 x {args.context} tokens")
        print_table(["shape", "weights", "file MiB", "peak RSS MiB"], memory(args.preset, args.context, work))
    import shutil
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
