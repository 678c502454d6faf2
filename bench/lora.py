"""LoRA beside a full fine-tune: memory and speed on GPT-2's shape, quality on a model trained here.

    python bench/lora.py [--preset gpt2] [--batch 4] [--context 256] [--steps 3]
                         [--rank 8] [--targets c_attn] [--quality-steps 300] [--pretrain-steps 600]

Part 1, cost: GPT-2 124M's shape with random weights (its weights cannot be downloaded on
these machines; the cost does not depend on them), one fresh process per way of training,
so each peak RSS is its own: the parameters that train, the optimizer's state, the peak
resident memory of the process, the median ms of a training step, and the size of the
checkpoint the run writes (a full fine-tune: weights and AdamW's moments; LoRA: the adapters
and their moments).

Part 2, quality: a char model pretrained on pydoc here, then fine-tuned on tinyshakespeare's
first 90% (from --shakespeare, skipped when absent) for the same steps, fully and with LoRA
(on --targets, and on every matrix of the blocks), all through ``tinyllm.train``: the loss
on the last 10%.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import print_table  # noqa: E402
from bench.train_step import own_peak_kib  # noqa: E402


def cost_in_this_process(args: argparse.Namespace) -> dict:
    """Build the model, train ``args.steps`` steps the way ``args.child`` says, save; what it cost."""
    from tinyllm import optim
    from tinyllm.checkpoint import checkpoint_path, save_checkpoint, weights_sha256
    from tinyllm.data import TokenBatches
    from tinyllm.lora import apply_lora
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.tokenizer import CharTokenizer
    from tinyllm.train import train_step
    config = GPTConfig.from_preset(args.preset, block_size=args.context, dropout=0.0)
    model = GPT(config)
    work = Path(tempfile.mkdtemp(prefix="bench-lora-"))
    tokenizer = CharTokenizer("ab")   # only written into the checkpoint: a stand-in, never used
    extra = {}
    if args.child == "lora":
        save_checkpoint(work / "base", model, None, tokenizer, 0)   # the base a LoRA checkpoint points to
        extra = {"lora": {"base": str(work / "base"), "base_sha256": weights_sha256(model)}}
        apply_lora(model, args.rank, 2 * args.rank, args.targets.split(","))
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = optim.AdamW(trainable, lr=1e-4)
    rng = np.random.default_rng(0)
    batches = TokenBatches(rng.integers(0, config.vocab_size, 200_000), config.block_size)
    times = []
    for _ in range(args.steps + 1):                 # the first step (buffers made, pages touched) is not timed
        start = time.perf_counter()
        train_step(model, opt, batches, args.batch, rng)
        times.append(time.perf_counter() - start)
    saved = save_checkpoint(work / "run", model, opt, tokenizer, args.steps, extra)
    return {"trainable": sum(p.size for p in trainable), "total": model.num_parameters(),
            "optimizer_mb": sum(buf.nbytes for buf in opt.state.values()) / 2**20,
            "ms_per_step": statistics.median(times[1:]) * 1e3, "checkpoint_mb": saved.stat().st_size / 2**20,
            "peak_rss_mb": own_peak_kib() / 1024, "_work": str(work), "_ckpt": str(checkpoint_path(saved))}


def cost(way: str, args: argparse.Namespace) -> dict:
    """``cost_in_this_process`` in a fresh Python, so its peak memory is its own."""
    argv = [sys.executable, __file__, "--child", way, "--preset", args.preset, "--batch", str(args.batch),
            "--context", str(args.context), "--steps", str(args.steps), "--rank", str(args.rank),
            "--targets", args.targets]
    result = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    import shutil
    shutil.rmtree(result.pop("_work"), ignore_errors=True)
    result.pop("_ckpt")
    return result


def quality(args: argparse.Namespace) -> list[list[object]]:
    """Held-out loss on Shakespeare after a full fine-tune and after LoRA, from one pydoc model."""
    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.data import train_val_split
    from tinyllm.metrics import text_loss
    from tinyllm.train import TrainConfig, train
    work = Path(tempfile.mkdtemp(prefix="bench-lora-quality-"))
    quiet = dict(sample_tokens=0, log_interval=10**6, eval_iters=1)
    print(f"pretraining a baby char model on pydoc for {args.pretrain_steps} steps ...", file=sys.stderr)
    train(TrainConfig(out=str(work / "base"), max_iters=args.pretrain_steps, eval_interval=args.pretrain_steps,
                      **quiet), log=lambda line: None)
    base = load_checkpoint(work / "base")
    known = base["tokenizer"].index    # the few characters pydoc lacks are dropped, and counted
    raw = Path(args.shakespeare).read_text(encoding="utf-8")
    text = "".join(c for c in raw if c in known)
    print(f"tinyshakespeare: {len(raw):,} characters, {len(raw) - len(text)} of them outside the pydoc "
          "model's vocabulary, dropped", file=sys.stderr)
    (work / "train.txt").write_text(train_val_split(text)["train"], encoding="utf-8")
    held_out = base["tokenizer"].encode(train_val_split(text)["val"])
    rows = [["pretrained on pydoc", "-", 0, f"{text_loss(base['model'], held_out):.3f}", "-"]]
    every_matrix = "c_attn,c_proj,c_fc"
    ways = [("full fine-tune", 1e-3, 0, args.targets), (f"LoRA r={args.rank} {args.targets}", 3e-3, args.rank,
                                                         args.targets)]
    if args.targets != every_matrix:
        ways.append((f"LoRA r={args.rank} {every_matrix}", 3e-3, args.rank, every_matrix))
    for i, (name, lr, lora_rank, targets) in enumerate(ways):
        print(f"{name}: {args.quality_steps} steps on tinyshakespeare ...", file=sys.stderr)
        out = work / f"run{i}"
        began = time.perf_counter()
        train(TrainConfig(out=str(out), init_from=str(work / "base"), data=str(work / "train.txt"), lr=lr,
                          max_iters=args.quality_steps, eval_interval=args.quality_steps, warmup_iters=30,
                          lora_rank=lora_rank, lora_targets=targets, lora_alpha=2 * args.rank, **quiet),
              log=lambda line: None)
        seconds = time.perf_counter() - began
        model = load_checkpoint(out, keep_lora=True)["model"]   # LoRA's adapters apart, to count them
        trainable = sum(p.size for p in model.parameters() if p.requires_grad)
        rows.append([name, f"{lr:g}", f"{trainable:,}", f"{text_loss(model, held_out):.3f}", f"{seconds:.0f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--preset", default="gpt2", help="the model shape for part 1")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps in part 1 (median)")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--targets", default="c_attn")
    parser.add_argument("--quality-steps", type=int, default=300, help="fine-tuning steps in part 2 (0: skip it)")
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--shakespeare", default=str(ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))
    parser.add_argument("--child", choices=["full", "lora"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(cost_in_this_process(args)))
        return
    print(f"cost: {args.preset} shape, random weights, batch {args.batch} x {args.context}, "
          f"LoRA rank {args.rank} on {args.targets}, median of {args.steps} steps", flush=True)
    full, lora = cost("full", args), cost("lora", args)
    keys = ["trainable", "optimizer_mb", "peak_rss_mb", "ms_per_step", "checkpoint_mb"]
    rows = [[way] + [round(r[k], 1) if isinstance(r[k], float) else f"{r[k]:,}" for k in keys]
            for way, r in (("full", full), ("LoRA", lora))]
    rows.append(["LoRA / full"] + [f"{lora[k] / full[k]:.4f}" for k in keys])
    print_table(["training", "trainable params", "optimizer MB", "peak RSS MB", "ms/step", "checkpoint MB"], rows)
    if args.quality_steps and Path(args.shakespeare).is_file():
        print(f"\nquality: held-out tinyshakespeare (last 10%), nats/char, after {args.quality_steps} steps "
              "of 12 x 64 characters", flush=True)
        print_table(["model", "lr", "trainable params", "held-out loss", "seconds"], quality(args))
    elif args.quality_steps:
        print(f"\nquality: skipped ({args.shakespeare} is absent)")


if __name__ == "__main__":
    main()
