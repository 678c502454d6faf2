"""Wall time of a whole training run: tinyllm's ``train`` beside nanoGPT's loop in PyTorch, in one run.

The recipe is nanoGPT's for a CPU (its README): tinyshakespeare by character,
4 layers, 4 heads, 128 wide, context 64, batch 12, AdamW lr 1e-3 with 100 warmup
steps and a cosine to 1e-4 at the last step, beta2 0.99, no dropout, grad clip 1,
loss estimated on 20 batches of each split every 250 steps. Both runs include
everything a run does: batches, evaluation, checkpoints (tinyllm: every
evaluation, plus its loss plot; the PyTorch loop: when val improves, as nanoGPT).
The PyTorch side is nanoGPT's train.py loop with compile off (nanoGPT's CPU
setting) over the GPT of tests/torch_gpt.py with PyTorch's fused attention, as
nanoGPT's model has it (its GELU is the exact one, ours the tanh form GPT-2 used:
the same cost).

    python bench/recipe.py [--data ../shared/data/tinyshakespeare.txt] [--steps 2000] [--rounds 1]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from bench.common import print_table  # noqa: E402
from tinyllm import optim  # noqa: E402
from tinyllm.data import TokenBatches, encode_corpus, load_corpus  # noqa: E402
from tinyllm.model import GPTConfig  # noqa: E402
from tinyllm.tokenizer import CharTokenizer  # noqa: E402
from tinyllm.train import TrainConfig, train  # noqa: E402

RECIPE = dict(batch_size=12, lr=1e-3, min_lr=1e-4, warmup_iters=100, beta2=0.99, weight_decay=0.1,
              grad_clip=1.0, eval_interval=250, eval_iters=20)


def run_tinyllm(data: str, steps: int, out: str) -> tuple[float, float]:
    """Seconds for the whole run and the final val loss."""
    cfg = TrainConfig(data=data, tokenizer="char", preset="baby", max_iters=steps, dropout=0.0,
                      log_interval=10, sample_interval=10**9, out=out, **RECIPE)
    start = time.perf_counter()
    history = train(cfg, log=lambda line: None)
    return time.perf_counter() - start, history["val"][-1]


def run_pytorch(data: str, steps: int, out: str) -> tuple[float, float]:
    """nanoGPT's training loop (train.py, compile off) on the same data and recipe."""
    import torch
    from torch_gpt import TorchGPT, load_tinyllm_state
    import tinyllm
    from tinyllm.model import GPT
    rng = np.random.default_rng(1337)
    start = time.perf_counter()
    text = load_corpus(data)
    ids = encode_corpus(text, CharTokenizer.train(text))
    config = GPTConfig.from_preset("baby", vocab_size=int(ids.max()) + 1)
    batches = TokenBatches(ids, config.block_size)

    def get_batch(split):
        x, y = batches.get_batch(split, RECIPE["batch_size"], rng)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))

    tinyllm.manual_seed(1337)
    model = TorchGPT(config, fused=True)  # nanoGPT's attention: scaled_dot_product_attention
    load_tinyllm_state(model, GPT(config).state_dict())  # the same GPT-2 initialisation nanoGPT uses
    opt = torch.optim.AdamW(model.parameters(), lr=RECIPE["lr"], betas=(0.9, RECIPE["beta2"]),
                            weight_decay=RECIPE["weight_decay"])
    best_val, val = float("inf"), float("nan")
    for step in range(steps + 1):
        if step % RECIPE["eval_interval"] == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                losses = {split: float(np.mean([model(*get_batch(split))[1].item()
                                                for _ in range(RECIPE["eval_iters"])])) for split in ("train", "val")}
            model.train()
            val = losses["val"]
            if val < best_val:
                best_val = val
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, Path(out) / "ckpt.pt")
        if step == steps:
            break
        for group in opt.param_groups:
            group["lr"] = optim.cosine_lr(step, RECIPE["lr"], RECIPE["min_lr"], RECIPE["warmup_iters"], steps)
        _, loss = model(*get_batch("train"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), RECIPE["grad_clip"])
        opt.step()
        if step % 10 == 0:
            loss.item()  # nanoGPT reads the loss when it logs
    return time.perf_counter() - start, val


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1, help="runs of each, taken in turn (the median counts)")
    args = parser.parse_args()
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as out:
        for r in range(args.rounds):
            times = {}
            for name, run in (("pytorch (nanoGPT loop)", run_pytorch), ("tinyllm train", run_tinyllm)):
                times[name], val = run(args.data, args.steps, out)
                rows.append([r + 1, name, times[name], times[name] * 1e3 / args.steps, f"{val:.4f}",
                             f"{times[name] / times['pytorch (nanoGPT loop)']:.2f}"])
            ratios.append(times["tinyllm train"] / times["pytorch (nanoGPT loop)"])
    print(f"nanoGPT's CPU recipe, {args.steps} steps; ratio = wall time / PyTorch's in the same round "
          f"(goal: tinyllm <= 1.25)")
    print_table(["round", "run", "wall s", "ms per step (all in)", "final val loss", "ratio"], rows)
    print(f"median ratio over {args.rounds} round(s): {float(np.median(ratios)):.2f}")


if __name__ == "__main__":
    main()
