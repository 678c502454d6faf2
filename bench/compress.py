"""tinyllm compress beside gzip -9, bz2 -9 and xz -9e, on text a model never trained on.

    python bench/compress.py --ckpt DIR [--data pydoc|FILE] [--max-bytes N] [--streams S]

The held-out text is the last 10% of the corpus's characters (what ``tinyllm train`` holds
out as validation, by characters: the split of a char model's tokens), at most --max-bytes
of it. One row per run: the size each compressor needs, in bits per byte of the original;
tinyllm's bound (the model's own -log2 p on the same streams, plus 8 bits per escaped byte)
and how far the coded streams are from it; compress and decompress speed on this machine.
Every run checks that decompress gives back the very bytes.
"""
from __future__ import annotations

import argparse
import bz2
import gzip
import lzma
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import print_table  # noqa: E402


def held_out_bytes(data: str, max_bytes: int | None) -> bytes:
    """The last 10% of the corpus's characters, as UTF-8, cut to ``max_bytes`` (at a character's start)."""
    from tinyllm.data import load_corpus
    text = load_corpus(data)
    held_out = text[int(0.9 * len(text)):].encode("utf-8")
    if max_bytes is None or len(held_out) <= max_bytes:
        return held_out
    return held_out[:max_bytes].decode("utf-8", "ignore").encode("utf-8")   # no character cut in half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a checkpoint (directory or .npz), or a GPT-2 directory")
    parser.add_argument("--data", default="pydoc", help="the corpus whose last 10%% is compressed")
    parser.add_argument("--max-bytes", type=int, default=None, help="compress at most this many bytes of it")
    parser.add_argument("--streams", type=int, default=None, help="streams (default: compress's own)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.compress import compress, decompress
    ckpt = load_checkpoint(args.ckpt, device=args.device)
    model, tok = ckpt["model"], ckpt["tokenizer"]
    data = held_out_bytes(args.data, args.max_bytes)
    stats = {}
    started = time.perf_counter()
    packed = compress(model, tok, data, args.streams, stats=stats)
    middle = time.perf_counter()
    if decompress(model, tok, packed) != data:
        raise SystemExit("decompress did not give back the input")        # decompress raises first; belt and braces
    ended = time.perf_counter()
    per_byte = lambda size: 8 * size / len(data)
    others = {"gzip -9": gzip.compress(data, 9), "bz2 -9": bz2.compress(data, 9),
              "xz -9e": lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)}
    print(f"{args.ckpt} ({model.num_parameters():,} parameters, {model.config.block_size}-token context) on the "
          f"last 10% of {args.data}: {len(data):,} bytes, {stats['tokens']:,} tokens, "
          f"{stats['escaped_bytes']} bytes escaped, {stats['streams']} streams")
    print_table(["compressor", "bytes", "bits/byte", "/ xz -9e", "compress KB/s", "decompress KB/s"],
                [[name, len(b), per_byte(len(b)), len(b) / len(others["xz -9e"]), "", ""]
                 for name, b in others.items()]
                + [["tinyllm", len(packed), per_byte(len(packed)), len(packed) / len(others["xz -9e"]),
                    f"{len(data) / 1e3 / (middle - started):.1f}", f"{len(data) / 1e3 / (ended - middle):.1f}"],
                   ["(its bound)", round(stats["bound_bits"] / 8), stats["bound_bits"] / len(data), "", "", ""]])
    print(f"the coded streams are {stats['coded_bits'] / stats['bound_bits'] - 1:+.3%} off the bound; "
          f"the container adds {len(packed) - stats['coded_bits'] // 8} bytes")


if __name__ == "__main__":
    main()
