"""Subword tokens: train a byte-level BPE tokenizer and a small GPT on Python's own docs.

    python examples/pydoc_bpe.py

First the tokenizer learns 256 merges on the ``pydoc`` corpus (the reference
text inside every CPython); you see the first merges it picks and how it cuts a
sentence. Then a small GPT learns to predict those tokens, and continues a prompt.
With a vocabulary of 512 each token is about 2.5 characters, so the same
64-token context sees more than twice the text that a character model sees.
"""
import argparse
import os
from pathlib import Path

from tinyllm.checkpoint import load_checkpoint
from tinyllm.data import load_corpus
from tinyllm.sample import generate
from tinyllm.tokenizer import ByteLevelBPE
from tinyllm.train import TrainConfig, train

FAST = os.environ.get("TINYLLM_FAST") == "1"  # CI's smoke test: a few steps only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab-size", type=int, default=300 if FAST else 512,
                        help="tokenizer vocabulary: 256 bytes + merges (default: %(default)s)")
    parser.add_argument("--max-iters", type=int, default=10 if FAST else 1000,
                        help="training steps (default: %(default)s)")
    parser.add_argument("--out", default="out/pydoc_bpe",
                        help="directory for tokenizer and checkpoint (default: %(default)s)")
    parser.add_argument("--prompt", default="The with statement", help="text to continue (default: %(default)r)")
    args = parser.parse_args()

    text = load_corpus("pydoc")
    tok = ByteLevelBPE.train(text, args.vocab_size, verbose=True)
    print("the first merges:", ", ".join(repr(tok.decode_bytes([i]).decode("utf-8", "replace"))
                                         for i in range(256, 266)))
    pieces = [tok.decode([i]) for i in tok.encode(args.prompt + " executes a block")]
    print(f"{len(pieces)} tokens:", "|".join(pieces))
    tok_file = Path(args.out) / "tokenizer.json"
    tok.save(tok_file)

    train(TrainConfig(data="pydoc", tokenizer=str(tok_file), preset="baby", max_iters=args.max_iters,
                      eval_interval=5 if FAST else 250, eval_iters=2 if FAST else 20, log_interval=5 if FAST else 50,
                      warmup_iters=2 if FAST else 100, sample_interval=10**9, out=args.out))

    ckpt = load_checkpoint(args.out)
    model, tok = ckpt["model"].eval(), ckpt["tokenizer"]
    print("\n---- continuing the prompt ----")
    print(tok.decode(generate(model, tok.encode(args.prompt), 30 if FAST else 200, temperature=0.8, seed=0)))


if __name__ == "__main__":
    main()
