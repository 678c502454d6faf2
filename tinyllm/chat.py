"""``tinyllm chat``: ask an instruction-tuned model questions, one per line, in its template.

Each line read becomes the instruction of ``instruct.prompt_text``; the model writes the
answer, streamed, until it draws ``<|endoftext|>`` (an instruction-tuned model learned to)
or until ``--max-new-tokens``. Questions come from the keyboard (an empty line ends) or
from a pipe, one per line: ``tinyllm chat --ckpt out/instruct < questions.txt``.
"""
from __future__ import annotations

import argparse
import sys


def add_chat_command(commands) -> None:
    """The ``chat`` subcommand of ``tinyllm`` (cli.py adds it)."""
    from .backend import default_device
    from .checkpoint import CHECKPOINT_HELP
    chat = commands.add_parser("chat", help="ask an instruction-tuned model questions, one per line",
                               description="Each line read becomes the instruction of the template "
                                           "(tinyllm/instruct.py); the model writes the answer, streamed, until "
                                           "it draws <|endoftext|> or reaches --max-new-tokens. Questions come "
                                           "from the keyboard (an empty line ends) or from a pipe, one per line: "
                                           "tinyllm chat --ckpt out/instruct < questions.txt",
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    chat.add_argument("--ckpt", default="out", help=CHECKPOINT_HELP + "; instruction-tuned (train --instructions)")
    chat.add_argument("--max-new-tokens", type=int, default=200, help="the longest answer, in tokens")
    chat.add_argument("--temperature", type=float, default=0.7, help="below 1: safer; above 1: wilder")
    chat.add_argument("--top-k", type=int, default=None, help="sample only from the k likeliest tokens")
    chat.add_argument("--seed", type=int, default=None, help="seed of the random draws (None: new answers each run)")
    chat.add_argument("--device", default=default_device(), help="cpu or cuda")
    chat.set_defaults(run=_chat)


def _chat(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .instruct import end_of_text, prompt_text
    from .sample import check_sampling_settings, generate
    check_sampling_settings(args.temperature, args.top_k, None, args.max_new_tokens)   # before any output
    ckpt = load_checkpoint(args.ckpt, device=args.device)
    model, tok = ckpt["model"].eval(), ckpt["tokenizer"]
    stop = end_of_text(tok)
    typing = sys.stdin.isatty()
    if typing:
        print("ask a question; an empty line ends", file=sys.stderr)
    for line in _lines(typing):
        question = line.strip()
        if not question:
            if typing:
                break
            continue
        ids = tok.encode(prompt_text({"instruction": question}))
        text_of = tok.stream_decoder()
        answer = generate(model, ids, args.max_new_tokens, args.temperature, args.top_k, seed=args.seed,
                          stop_token=stop, on_token=lambda t: t == stop or print(text_of(t), end="", flush=True))
        print(flush=True)
        if answer[-1] != stop:
            print(f"[no end of text within {args.max_new_tokens} tokens: the answer was cut]", file=sys.stderr)
    return 0


def _lines(typing: bool):
    """Lines from the keyboard (with a "> " prompt; Ctrl-D ends) or from a pipe (its end ends)."""
    while True:
        try:
            line = input("> ") if typing else sys.stdin.readline()
        except EOFError:
            return
        if not typing and not line:
            return
        yield line
