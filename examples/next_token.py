"""A language model is a next-token predictor: look at the probabilities themselves.

    tinyllm train                       # once: a checkpoint in out/
    python examples/next_token.py       # then the tables

For a prompt growing one character at a time the script prints the model's
likeliest next tokens with their probabilities. Watch the distribution sharpen
as the context pins down the word: after "The for statem" almost all the mass
sits on "e".
"""
import argparse

from tinyllm.checkpoint import CHECKPOINT_HELP, load_checkpoint
from tinyllm.sample import next_token_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", nargs="?", default="The for statem", help="the full prompt (default: %(default)r)")
    parser.add_argument("--ckpt", default="out",
                        help=CHECKPOINT_HELP + " (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=5, help="tokens listed per table (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4,
                        help="how many shorter prompts to show first (default: %(default)s)")
    args = parser.parse_args()

    ckpt = load_checkpoint(args.ckpt)
    model, tok = ckpt["model"].eval(), ckpt["tokenizer"]
    for end in range(max(1, len(args.prompt) - args.steps), len(args.prompt) + 1):
        prompt = args.prompt[:end]
        print(f"\nafter {prompt!r}:")
        print(next_token_table(model, tok, prompt, args.top_k))


if __name__ == "__main__":
    main()
