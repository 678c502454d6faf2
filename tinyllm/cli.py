"""The ``tinyllm`` command: one entry point, a subcommand per job.

    tinyllm --help
    tinyllm tokenizer train --data FILE --vocab-size 512 --out tok.json
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyllm",
        description="tinyllm: build, train and sample a GPT written from scratch in NumPy.",
        epilog="Run 'tinyllm COMMAND --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"tinyllm {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = commands.add_parser("train", help="train a small GPT (coming with the training issue)")
    train.set_defaults(run=_train_not_yet)
    return parser


def _version() -> str:
    from . import __version__
    return __version__


def _train_not_yet(args: argparse.Namespace) -> int:
    print("tinyllm train: training lands with the training issue. What is here now:\n"
          "  - tinyllm.Tensor: reverse-mode autograd over NumPy (or CuPy) arrays\n"
          "  - tinyllm.functional: softmax, cross_entropy, layer_norm, gelu, dropout, ...\n"
          "  - tinyllm.gradcheck: check any backward against finite differences\n"
          "Run the tests: python -m pytest")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 0
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
