"""Where attention looks: every head of a trained model reading one prompt, as a picture.

    tinyllm train                       # once: a checkpoint in out/
    python examples/attention.py "The for statement"

Each small square is one head of one layer: row t is the token reading, column s the
token read, and the brighter the cell, the more of token t's view comes from token s
(each row sums to 1; above the diagonal is the causal mask's 0). The picture goes to
attention.png; the script also prints, for the last token of the prompt, the earlier
token each head looks at most. Some heads keep to the previous token, some to the
start of the word, some spread out, some rest on the first position.
"""
import argparse

import numpy as np

from tinyllm.backend import to_numpy
from tinyllm.checkpoint import CHECKPOINT_HELP, load_checkpoint
from tinyllm.plots import plot_attention_maps, save_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prompt", nargs="?", default="The for statement is used",
                        help="the text the model reads (default: %(default)r)")
    parser.add_argument("--ckpt", default="out",
                        help=CHECKPOINT_HELP + " (default: %(default)s)")
    parser.add_argument("--out", default="attention.png", help="where the picture goes (default: %(default)s)")
    args = parser.parse_args()
    if not args.prompt:
        parser.error("the prompt is empty: give the model some text to read")

    ckpt = load_checkpoint(args.ckpt)
    model, tok = ckpt["model"].eval(), ckpt["tokenizer"]
    ids = tok.encode(args.prompt)[-model.config.block_size:]  # the model reads at most one block
    tokens = [tok.decode([i]) for i in ids]
    maps = model.attention_maps(np.array([ids]))             # n_layer arrays of (1, n_head, T, T)
    fig = plot_attention_maps(maps, tokens, title=f"Attention reading {args.prompt[:60]!r}")
    save_png(fig, args.out)
    print(f"wrote {args.out}: {len(maps)} layers x {maps[0].shape[1]} heads, {len(ids)} tokens")

    print(f"\nwhere the last token {tokens[-1]!r} looks most, head by head:")
    for layer, weights in enumerate(maps):
        last_row = to_numpy(weights)[0, :, -1]                 # (n_head, T): the last token's view
        looks = [f"{tokens[s]!r:>8} {w[s]:4.0%}" for w in last_row for s in [int(w.argmax())]]
        print(f"  layer {layer}: " + "  ".join(looks))


if __name__ == "__main__":
    main()
