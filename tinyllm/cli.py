"""The ``tinyllm`` command: one entry point, a subcommand per job.

    tinyllm --help
    tinyllm train                      # a small GPT on pydoc, a few minutes on 2 cores
    tinyllm sample --prompt "The for statement"
    tinyllm predict "The for statement"  # the likeliest next tokens, as a table
    tinyllm eval --ckpt out --split val       # loss, perplexity, bits per character on a text
    tinyllm export --ckpt out --out my-gpt2  # as a Hugging Face GPT-2 (BPE models)
    tinyllm quantize --ckpt out --bits 8 --out out-int8  # weights in 8 or 4 bits
    tinyllm chat --ckpt out/instruct     # questions to an instruction-tuned model (train --instructions)
    tinyllm compress --ckpt out notes.txt   # lossless, with the model's predictions; decompress gives it back
    tinyllm tokenizer train --data FILE --vocab-size 512 --out tok.json
    tinyllm tokenizer encode --tokenizer tok.json "Hello world"
    tinyllm tokenizer decode --tokenizer tok.json 15496 995
    tinyllm exercises init ~/my-tinyllm   # a copy of the project with the exercises blanked
    tinyllm exercises list | check 2.3 | hint 2.3
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from .backend import DEVICE_HELP, default_device
from .checkpoint import CHECKPOINT_HELP
from .data import DATA_HELP
from .chat import add_chat_command
from .compress_commands import add_compress_commands
from .exercises import add_exercise_commands
from .train_command import add_train_command

CHECKPOINT_DEVICE_HELP = DEVICE_HELP + "; a checkpoint written on either device loads on either"


def build_parser() -> argparse.ArgumentParser:
    """The ``tinyllm`` argument parser, with a subcommand per job."""
    parser = argparse.ArgumentParser(
        prog="tinyllm",
        description="tinyllm: build, train and sample a GPT written from scratch in NumPy.",
        epilog="Run 'tinyllm COMMAND --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"tinyllm {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_command(commands)
    _add_sample_command(commands)
    _add_predict_command(commands)
    _add_eval_command(commands)
    _add_export_command(commands)
    _add_quantize_command(commands)
    add_chat_command(commands)
    add_compress_commands(commands)
    _add_tokenizer_commands(commands)
    add_exercise_commands(commands)
    return parser


def _add_tokenizer_commands(commands) -> None:
    tok = commands.add_parser("tokenizer", help="train a BPE tokenizer, or encode/decode with one",
                              description="Train a byte-level BPE tokenizer, or look at how one cuts text.")
    sub = tok.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="learn BPE merges from a text file (progress on stderr)")
    train.add_argument("--data", required=True, help="UTF-8 text file to learn from, or 'pydoc'")
    train.add_argument("--vocab-size", type=int, required=True,
                       help="final vocabulary size: 256 bytes + merges + special tokens")
    train.add_argument("--out", required=True, help="where to write the tokenizer JSON file")
    train.add_argument("--special", action="append", default=[], metavar="TOKEN",
                       help="a special token such as '<|endoftext|>' (repeatable)")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(run=_tokenizer_train)
    encode = sub.add_parser("encode", help="show how text is cut into tokens, and their ids")
    encode.add_argument("--tokenizer", required=True, help="tokenizer JSON file")
    encode.add_argument("text", help="the text to encode")
    encode.add_argument("--allowed-special", default="none_raise", choices=["none_raise", "none", "all"],
                        help="what to do with special-token strings in the text (default: refuse them)")
    encode.set_defaults(run=_tokenizer_encode)
    decode = sub.add_parser("decode", help="turn ids back into text")
    decode.add_argument("--tokenizer", required=True, help="tokenizer JSON file")
    decode.add_argument("ids", nargs="+", type=int, help="token ids, e.g. 15496 995")
    decode.set_defaults(run=_tokenizer_decode)


def _tokenizer_train(args: argparse.Namespace) -> int:
    from .data import load_corpus
    from .tokenizer import ByteLevelBPE
    tok = ByteLevelBPE.train(load_corpus(args.data), args.vocab_size, special_tokens=args.special,
                             verbose=not args.quiet)
    tok.save(args.out)
    print(f"wrote {args.out}: {len(tok.merges)} merges, vocabulary of {tok.vocab_size}")
    return 0


def _tokenizer_encode(args: argparse.Namespace) -> int:
    from .sample import token_piece
    from .tokenizer import load_tokenizer
    tok = load_tokenizer(args.tokenizer)
    ids = tok.encode(args.text, allowed_special=args.allowed_special)
    pieces = [token_piece(tok, i) for i in ids]   # a token holding part of a character: its bytes, b'\xc3'
    pieces = [piece if isinstance(piece, str) else repr(piece) for piece in pieces]
    if sys.stdout.isatty():  # coloured pieces, one background colour after another
        colours = [41, 42, 43, 44, 45, 46]
        print("".join(f"\x1b[{colours[k % 6]};30m{p}\x1b[0m" for k, p in enumerate(pieces)))
    else:
        print("|".join(pieces))
    print(f"{len(ids)} tokens: {ids}")
    return 0


def _tokenizer_decode(args: argparse.Namespace) -> int:
    from .tokenizer import load_tokenizer
    print(load_tokenizer(args.tokenizer).decode(args.ids))
    return 0


def _version() -> str:
    from . import __version__
    return __version__


def _add_sample_command(commands) -> None:
    sample = commands.add_parser("sample", help="continue a prompt with a trained model, streaming the text",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sample.add_argument("--ckpt", default="out", help=CHECKPOINT_HELP)
    sample.add_argument("--prompt", default="", help="text to continue (default: %(default)r, a fresh text: after "
                        "GPT-2's '<|endoftext|>', or else after a new line)")
    sample.add_argument("--max-new-tokens", type=int, default=300, help="how many tokens to generate")
    sample.add_argument("--temperature", type=float, default=0.8, help="below 1: safer; above 1: wilder")
    sample.add_argument("--top-k", type=int, default=None, help="sample only from the k likeliest tokens")
    sample.add_argument("--top-p", type=float, default=None, help="sample only from the top-p probability mass")
    sample.add_argument("--num-samples", type=int, default=1, help="how many continuations, one after another")
    sample.add_argument("--seed", type=int, default=None,
                        help="seed of the random draws (sample i uses seed + i; None: new text each run)")
    sample.add_argument("--device", default=default_device(), help=CHECKPOINT_DEVICE_HELP)
    sample.set_defaults(run=_sample)


def _sample(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .sample import check_sampling_settings, generate, prompt_ids
    check_sampling_settings(args.temperature, args.top_k, args.top_p, args.max_new_tokens)  # before any output
    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be at least 1, got {args.num_samples}")
    ckpt = load_checkpoint(args.ckpt, device=args.device)
    model, tok = ckpt["model"].eval(), ckpt["tokenizer"]
    prompt = prompt_ids(tok, args.prompt)
    for i in range(args.num_samples):
        if i:
            print("-" * 40)
        text_of = tok.stream_decoder()
        print(args.prompt, end="", flush=True)
        generate(model, prompt, args.max_new_tokens, args.temperature, args.top_k, args.top_p,
                 None if args.seed is None else args.seed + i,
                 on_token=lambda t: print(text_of(t), end="", flush=True))
        print()
    return 0


def _add_predict_command(commands) -> None:
    predict = commands.add_parser("predict", help="show the likeliest next tokens after a prompt, with probabilities",
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    predict.add_argument("prompt", help="text whose next token the model predicts "
                                        "('': the first token of a fresh text)")
    predict.add_argument("--ckpt", default="out", help=CHECKPOINT_HELP)
    predict.add_argument("--top-k", type=int, default=10, help="how many tokens to list")
    predict.add_argument("--device", default=default_device(), help=CHECKPOINT_DEVICE_HELP)
    predict.set_defaults(run=_predict)


def _predict(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .sample import next_token_table
    ckpt = load_checkpoint(args.ckpt, device=args.device)
    table = next_token_table(ckpt["model"].eval(), ckpt["tokenizer"], args.prompt, args.top_k)
    print(f"after {args.prompt!r} the model expects:" if args.prompt else
          "at the start of a fresh text the model expects:")
    print(table)
    return 0


def _add_eval_command(commands) -> None:
    ev = commands.add_parser("eval", help="score a checkpoint on a text: loss, perplexity, bits per character",
                             description="How well a model predicts a text: the mean cross-entropy of each token "
                                         "given the ones before it (in windows of the model's context), its "
                                         "perplexity e^loss, and the bits per character an arithmetic coder "
                                         "driven by the model would need.",
                             formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ev.add_argument("--ckpt", default="out", help=CHECKPOINT_HELP)
    ev.add_argument("--data", default="pydoc", help=DATA_HELP)
    ev.add_argument("--split", choices=["all", "val"], default="all",
                    help="all of the text, or only its last 10%%: the validation split train holds out of a corpus")
    ev.add_argument("--max-tokens", type=int, default=None, help="score only the first N tokens (None: all)")
    ev.add_argument("--device", default=default_device(), help=CHECKPOINT_DEVICE_HELP)
    ev.set_defaults(run=_eval)


def _eval(args: argparse.Namespace) -> int:
    import math
    from .checkpoint import load_checkpoint
    from .data import encode_corpus, load_corpus, train_val_split
    from .metrics import text_loss
    if args.max_tokens is not None and args.max_tokens < 2:
        raise ValueError(f"--max-tokens must be at least 2 (one to read, one to predict), got {args.max_tokens}")
    ckpt = load_checkpoint(args.ckpt, device=args.device)
    model, tok = ckpt["model"], ckpt["tokenizer"]
    ids = encode_corpus(load_corpus(args.data), tok, cache=True)
    ids = (train_val_split(ids)["val"] if args.split == "val" else ids)[:args.max_tokens]
    on_terminal = sys.stderr.isatty()   # progress only where a person watches
    report = lambda done, total: print(f"\r  scored {done:,}/{total:,} tokens", end="", file=sys.stderr, flush=True)
    loss = text_loss(model, ids, progress=report if on_terminal else None)
    if on_terminal:
        print("\r\x1b[K", end="", file=sys.stderr)            # clear the progress line
    characters = len(tok.decode(ids[1:]))                   # the text that was predicted
    print(f"{args.ckpt} on {args.data} ({args.split}): {len(ids) - 1:,} tokens predicted, {characters:,} characters")
    print(f"loss {loss:.4f} nats/token | perplexity {math.exp(loss):.2f} | "
          f"{loss * (len(ids) - 1) / math.log(2) / characters:.3f} bits/character")
    return 0


def _add_export_command(commands) -> None:
    export = commands.add_parser("export", help="write a checkpoint as a Hugging Face GPT-2 directory",
                                 description="Write a checkpoint's model and BPE tokenizer as the four files of a "
                                             "Hugging Face GPT-2 (config.json, model.safetensors, vocab.json, "
                                             "merges.txt): transformers' GPT2LMHeadModel.from_pretrained loads "
                                             "the directory, and so does every tinyllm --ckpt.",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    export.add_argument("--ckpt", default="out", help=CHECKPOINT_HELP)
    export.add_argument("--out", required=True, help="the directory to write the four files into")
    export.set_defaults(run=_export)


def _export(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .pretrained import save_gpt2
    ckpt = load_checkpoint(args.ckpt, device="cpu")
    directory = save_gpt2(ckpt["model"], ckpt["tokenizer"], args.out)
    print(f"wrote {directory}/: config.json, model.safetensors, vocab.json, merges.txt "
          f"(step {ckpt['step']} of {args.ckpt})")
    return 0


def _add_quantize_command(commands) -> None:
    quantize = commands.add_parser(
        "quantize", help="store a checkpoint's weights in 8 or 4 bits (a smaller model that samples and evaluates)",
        description="Quantize every Linear layer's weight (round to nearest, symmetric, one float32 scale per "
                    "group of weights) and write the result as a checkpoint: sample, predict and eval read it "
                    "like any other; it does not train. 8 bits: a scale per output channel by default; 4 bits: "
                    "packed two per byte, in groups of --group-size.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    quantize.add_argument("--ckpt", default="out", help=CHECKPOINT_HELP)
    quantize.add_argument("--bits", type=int, choices=(8, 4), required=True, help="bits per weight")
    quantize.add_argument("--group-size", type=int, default=None,
                          help="weights per scale along each row (None: one scale per output channel with 8 "
                               "bits, 64 with 4 bits); must divide the model's widths")
    quantize.add_argument("--embedding", action="store_true",
                          help="quantize the token embedding too (and the output layer tied to it)")
    quantize.add_argument("--out", required=True, help="the directory for the quantized ckpt.npz")
    quantize.set_defaults(run=_quantize)


def _quantize(args: argparse.Namespace) -> int:
    from .checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
    from .quantize import quantize_model
    ckpt = load_checkpoint(args.ckpt, device="cpu")
    group_size = args.group_size or (64 if args.bits == 4 else None)
    quantize_model(ckpt["model"], args.bits, group_size, args.embedding)
    path = save_checkpoint(args.out, ckpt["model"], None, ckpt["tokenizer"], ckpt["step"])
    source = checkpoint_path(args.ckpt)
    print(f"wrote {path}: {path.stat().st_size / 2**20:.1f} MiB, {args.bits}-bit weights"
          f"{f' in groups of {group_size}' if group_size else ' with a scale per output channel'}"
          + (f" (from {source}: {source.stat().st_size / 2**20:.1f} MiB, optimizer state included)"
             if source.is_file() else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``tinyllm ARGV``; returns the exit status (2, with one line on stderr, for bad input).

    One of several processes of an MPI job (``mpiexec``, ``--nproc``) that fails ends the whole
    job: alone, it would leave the others waiting for it at their next all-reduce, forever."""
    try:
        status = _run(argv)
    except Exception:                     # a bug, or a blank exercise: its traceback
        if not _one_of_several_processes():
            raise
        traceback.print_exc()
        status = 1
    if status and _one_of_several_processes():
        world = sys.modules["mpi4py.MPI"].COMM_WORLD
        print(f"tinyllm: rank {world.Get_rank()} of {world.Get_size()} stopped, so the job ends", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        world.Abort(status)
    return status


def _one_of_several_processes() -> bool:
    """Whether this process is a rank of an MPI job of several (tinyllm/distributed.py has started MPI)."""
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi is not None and mpi.COMM_WORLD.Get_size() > 1


def _run(argv: list[str] | None) -> int:
    try:
        parser = build_parser()  # reads TINYLLM_DEVICE, the default of --device
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)
        if not hasattr(args, "run"):
            parser.print_help()
            return 0
        return args.run(args)
    except NotImplementedError:  # a blank exercise: show the traceback, it points at the region
        raise
    except KeyboardInterrupt:  # Ctrl-C (train has its own word on the checkpoint): no traceback
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`tinyllm sample | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so Python's last flush cannot fail too
        return 1
    except (ValueError, OSError, RuntimeError) as e:  # bad input, a full disk, ...: one clear line, no traceback
        print(f"tinyllm: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
