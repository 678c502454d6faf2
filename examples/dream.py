"""The base model dreams: long samples from nothing, at several temperatures.

    tinyllm train                       # once: a checkpoint in out/
    python examples/dream.py            # or --ckpt gpt2 (the README's "OpenAI's GPT-2")

A base model has only learned what documents look like, so given no prompt it
writes one. Temperature divides the logits before the softmax: below 1 the
likeliest tokens win more often (safe, repetitive text), above 1 the unlikely
ones get their chance (inventive, then nonsense). Each sample also reports its
mean log-probability per token under the model at temperature 1.
"""
import argparse
import math
import os

import numpy as np

from tinyllm.checkpoint import CHECKPOINT_HELP, load_checkpoint
from tinyllm.functional import log_softmax
from tinyllm.sample import document_start, generate
from tinyllm.tensor import no_grad

FAST = os.environ.get("TINYLLM_FAST") == "1"


@no_grad()
def nats_per_token(model, ids: list[int]) -> float:
    """Mean -log p(token | the tokens before it) over the sample (its first block)."""
    ids = np.array([ids[: model.config.block_size + 1]])
    logits, _ = model(ids[:, :-1])
    logp = log_softmax(logits, axis=-1).numpy()[0]
    return float(-logp[np.arange(ids.shape[1] - 1), ids[0, 1:]].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default="out",
                        help=CHECKPOINT_HELP + " (default: %(default)s)")
    parser.add_argument("--tokens", type=int, default=40 if FAST else 400,
                        help="length of each dream, in tokens (default: %(default)s)")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.5, 0.8, 1.0, 1.4],
                        help="one dream at each of these temperatures (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random draws (default: %(default)s)")
    args = parser.parse_args()

    ckpt = load_checkpoint(args.ckpt)
    model, tok = ckpt["model"].eval(), ckpt["tokenizer"]
    start = document_start(tok)  # a document boundary (GPT-2's <|endoftext|>): the model starts a fresh text
    for t in args.temperatures:
        ids = generate(model, start, args.tokens, temperature=t, seed=args.seed)
        nats = nats_per_token(model, ids)
        print(f"\n==== temperature {t} ({nats:.2f} nats = {nats / math.log(2):.2f} bits per token) ====")
        print(tok.decode(ids[1:]))


if __name__ == "__main__":
    main()
