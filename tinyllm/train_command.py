"""``tinyllm train``: a TrainConfig from the command line, one option per field, and the run.

    tinyllm train                                   # a small GPT on pydoc, a few minutes on 2 cores
    tinyllm train --preset char-small --data input.txt --device cuda
    tinyllm train --nproc 2                         # data parallel: mpiexec -n 2 (tinyllm/distributed.py)

Every option's help is here, beside the field it sets (train_config.py holds the fields, their
defaults and their checks); ``--nproc`` and ``--all-reduce`` choose the processes, not the run.
"""
from __future__ import annotations

import argparse
import sys

from .backend import DEVICE_HELP
from .data import BPE_VOCAB_SIZE, DATA_HELP
from .distributed import ALL_REDUCES


def add_train_command(commands) -> None:
    """The ``train`` subcommand of ``tinyllm`` (cli.py adds it): one option per TrainConfig field."""
    from dataclasses import MISSING, fields
    from .train_config import TrainConfig
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
                      "the Linear layers' and attention's products, the weights and everything else in float32 "
                      "(tinyllm/amp.py; made for GPUs' tensor cores, slow on a CPU)"}
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
    train.add_argument("--all-reduce", choices=ALL_REDUCES, default=None,
                       help="with several processes, how the gradients travel: nccl (GPU to GPU, one GPU "
                            "per process; the default with --device cuda) or mpi (through the host; the "
                            "CPU's default, and on GPUs lets processes share one)")
    train.set_defaults(run=_train)


def _train(args: argparse.Namespace) -> int:
    from dataclasses import fields
    from .distributed import all_reduce_for, gpu_for, launch, launched_size, world_from_environment
    from .train import train
    from .train_config import TrainConfig
    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})   # checked before launching,
    all_reduce = all_reduce_for(cfg.device, args.all_reduce)                             # as is this
    if args.nproc > 1 and launched_size() == 1:
        if cfg.device == "cuda":     # the ranks will share this machine: its GPUs, checked before starting them
            gpu_for(0, args.nproc, one_each=all_reduce == "nccl")
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
