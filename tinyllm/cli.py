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

from .backend import default_device
from .checkpoint import CHECKPOINT_HELP
from .data import BPE_VOCAB_SIZE
from .chat import add_chat_command
from .compress_commands import add_compress_commands
from .exercises import add_exercise_commands

DEVICE_HELP = "cpu or cuda (cuda needs CuPy: see the README); the default is TINYLLM_DEVICE when set"
CHECKPOINT_DEVICE_HELP = DEVICE_HELP + "; a checkpoint written on either device loads on either"
DATA_HELP = "'pydoc' (ships with Python), a UTF-8 text file, or an http(s) URL (downloaded once)"


def build_parser() -> argparse.ArgumentParser:
    """The ``tinyllm`` argument parser, with a subcommand per job."""
    parser = argparse.ArgumentParser(
        prog="tinyllm",
        description="tinyllm: build, train and sample a GPT written from scratch in NumPy.",
        epilog="Run 'tinyllm COMMAND --help' for the options of each command.")
    parser.add_argument("--version", action="version", version=f"tinyllm {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_command(commands)
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


def _add_train_command(commands) -> None:
    from dataclasses import MISSING, fields
    from .train import TrainConfig
    train = commands.add_parser(
        "train", help="train a GPT on a corpus (default: char-level on pydoc, a few minutes on 2 cores)",
        description="Train a GPT. Prints a log line every --log-interval steps; every --eval-interval steps "
                    "estimates train/val loss, writes OUT/ckpt.npz and OUT/loss.png; samples every "
                    "--sample-interval steps. A loss or gradient that becomes nan or inf stops the run "
                    "before it can overwrite the last checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    helps = {"data": DATA_HELP,
             "data_sha256": "expected sha256 of the corpus, a file or a download (checked before use; a plain "
                            "http URL needs it)",
             "tokenizer": "'char', 'bpe' (trained on the corpus; '<|endoftext|>' in it stays one token) "
                          "or a tokenizer JSON file",
             "vocab_size": f"vocabulary size of a new BPE tokenizer, --tokenizer bpe (None: {BPE_VOCAB_SIZE})",
             "preset": "model shape: baby, char-small, gpt2, gpt2-medium, gpt2-large, gpt2-xl",
             "device": DEVICE_HELP,
             "grad_accum": "micro-batches per optimizer step",
             "max_iters": "optimizer steps", "lr": "peak learning rate (after warmup)",
             "min_lr": "learning rate at the end of the cosine decay (None: --lr / 10)",
             "out": "directory for checkpoint and plot",
             "eval_iters": "batches per loss estimate", "sample_tokens": "length of the samples shown (0: show none)",
             "warmup_iters": "steps of linear warmup from 0 up to --lr",
             "weight_decay": "AdamW's decoupled weight decay, on the weight matrices only",
             "beta2": "AdamW's decay of its squared-gradient average (0.99 for small data; GPT-2: 0.95)",
             "grad_clip": "largest global gradient norm; larger gradients are scaled down (0: no clipping)",
             "eval_interval": "steps between loss estimates, checkpoints and loss plots",
             "log_interval": "steps between log lines", "sample_interval": "steps between the samples shown",
             "n_layer": "Transformer blocks (None: the preset's)", "n_head": "attention heads (None: the preset's)",
             "n_embd": "width of the residual stream (None: the preset's)",
             "block_size": "context length in tokens (None: the preset's)",
             "dropout": "dropout probability in training (0.2 helps larger models on small data)",
             "batch_size": "sequences per micro-batch", "seed": "seed of initialisation, batches and dropout",
             "resume": "continue from OUT/ckpt.npz where it left off, bit for bit on the device it ran on "
                       "(with as many --nproc processes); --device may differ from the first run's (dropout "
                       "then draws other masks)",
             "init_from": "fine-tune: start from this checkpoint's model and tokenizer (a tinyllm checkpoint, "
                          "or GPT-2's files as for sample --ckpt) instead of a new model; --preset, --tokenizer "
                          "and --vocab-size are then unused, --block-size crops its context, --dropout applies",
             "lora_rank": "with --init-from: train LoRA adapters of this rank on --lora-targets, every other "
                          "weight frozen (0: fine-tune every weight); checkpoints then hold only the adapters "
                          "and the base's path, and sample, eval and export merge them",
             "lora_alpha": "LoRA's update is scaled by --lora-alpha / --lora-rank",
             "lora_targets": "the Linear layers LoRA adapts, comma-separated: c_attn (q, k, v), c_proj "
                             "(attention and MLP outputs), c_fc (MLP input), or full names like h.0.attn.c_attn",
             "instructions": "with --init-from: instruction-tune on this JSON Lines file ({\"instruction\", "
                             "\"input\", \"output\"} per line; see tinyllm/instruct.py): answers in a fixed "
                             "template, the loss on the answers only; --data is then unused",
             "tf32": "with --device cuda: float32 matmuls on TF32 tensor cores (faster, ~1e-3 relative error)",
             "dtype": "float32, or mixed precision: float16 (with loss scaling) or bfloat16 (needs ml_dtypes) for "
                      "the Linear layers' products, the weights and everything else in float32 (tinyllm/amp.py; "
                      "made for GPUs' tensor cores, slow on a CPU)"}
    for f in fields(TrainConfig):
        if f.type == "bool":
            train.add_argument("--" + f.name, action="store_true", help=helps[f.name])
            continue
        kind = int if f.type in ("int", "int | None") else float if f.type in ("float", "float | None") else str
        default = f.default_factory() if f.default is MISSING else f.default  # the device reads TINYLLM_DEVICE
        train.add_argument("--" + f.name.replace("_", "-"), type=kind, default=default,
                           help=helps[f.name])  # a new TrainConfig field needs its help here
    train.add_argument("--nproc", type=int, default=1,
                       help="data parallel: run N processes under mpiexec (each --batch-size sequences per "
                            "micro-batch, the gradients averaged; needs pip install -e \".[dist]\"); the same as "
                            "mpiexec -n N tinyllm train ...")
    train.add_argument("--all-reduce", choices=("mpi", "nccl"), default=None,
                       help="with several processes, how the gradients travel: nccl (GPU to GPU, one GPU "
                            "per process; the default with --device cuda) or mpi (through the host; the "
                            "CPU's default, and on GPUs lets processes share one)")
    train.set_defaults(run=_train)


def _train(args: argparse.Namespace) -> int:
    from dataclasses import fields
    from .distributed import launch, launched_size, world_from_environment
    from .train import TrainConfig, train
    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})   # checked before launching
    if args.nproc > 1 and launched_size() == 1:
        return launch(args.nproc, ["train"] + _without_nproc(args.argv))
    if args.nproc > 1 and launched_size() != args.nproc:
        raise ValueError(f"--nproc {args.nproc}, but mpiexec started {launched_size()} processes")
    world = world_from_environment(cfg.device, args.all_reduce)
    try:
        train(cfg, world=world)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the last checkpoint in {cfg.out}/ is complete and loadable", file=sys.stderr)
        return 130
    if world.is_main:
        print(f"next: tinyllm chat --ckpt {cfg.out}" if cfg.instructions else
              f"next: tinyllm sample --ckpt {cfg.out} --prompt \"...\"")
    return 0


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
    from .train import text_loss
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


def _without_nproc(argv: list[str]) -> list[str]:
    """``tinyllm train``'s arguments without ``--nproc N`` (the ranks it launches take the rest)."""
    out, skip = [], False
    for arg in argv[1:]:      # argv[0] is "train"
        if skip or arg.startswith("--nproc="):
            skip = False
        elif arg == "--nproc":
            skip = True
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``tinyllm ARGV``; returns the exit status (2, with one line on stderr, for bad input)."""
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
