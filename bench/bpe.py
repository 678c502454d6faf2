"""BPE speed: training time and encoding throughput, beside HF tokenizers (Rust) in the same run.

    python bench/bpe.py [--data ../shared/data/tinyshakespeare.txt] [--vocab-size 4096]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import print_table  # noqa: E402
from tinyllm.tokenizer import ByteLevelBPE  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def hf_train(text: str, vocab_size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text.splitlines(keepends=True), trainer)
    return tok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))
    parser.add_argument("--vocab-size", type=int, default=4096)
    args = parser.parse_args()
    text = Path(args.data).read_text(encoding="utf-8")
    megabytes = len(text.encode("utf-8")) / 1e6
    print(f"corpus {args.data}: {megabytes:.2f} MB; vocabulary {args.vocab_size}")

    tok, t_train = timed(lambda: ByteLevelBPE.train(text, args.vocab_size))
    ids, t_encode = timed(lambda: ByteLevelBPE(tok.merges).encode(text))  # fresh: no warm cache
    _, t_cached = timed(lambda: tok.encode(text))
    rows = [["tinyllm", t_train, f"{megabytes / t_encode:.2f}", f"{megabytes / t_cached:.2f}", "-"]]
    try:
        hf, t_hf = timed(lambda: hf_train(text, args.vocab_size))
        _, t_hf_encode = timed(lambda: hf.encode(text))
        rows[0][-1] = f"{t_train / t_hf:.2f}"
        rows.append(["HF tokenizers", t_hf, f"{megabytes / t_hf_encode:.2f}", "-", "1.00"])
    except ImportError:
        print("(HF tokenizers not installed: no reference row)")
    print(f"tinyllm: {len(tok.merges)} merges; {len(ids):,} tokens, {len(text.encode()) / len(ids):.2f} bytes/token")
    print_table(["impl", "train s", "encode MB/s", "encode MB/s (cached)", "train time ratio"], rows)


if __name__ == "__main__":
    main()
