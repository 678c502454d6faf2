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

This machine class is noisy: its speed drifts by tens of percent over minutes,
so two whole runs taken one after the other can differ for no reason of their
own. By default the two runs therefore go in lockstep: tinyllm's ``train`` runs,
and every ``--segment`` steps (at its log line) the PyTorch loop is advanced to
the same step; each side's clock counts only its own segments, so both see the
same weather. ``--sequential`` runs them one after the other instead, ``--rounds``
times, in turn.

    python bench/recipe.py [--data ../shared/data/tinyshakespeare.txt] [--steps 2000] [--segment 50]
    python bench/recipe.py --sequential [--rounds 3]
"""
from __future__ import annotations

import argparse
import math
import re
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


def run_tinyllm(data: str, steps: int, out: str, log=lambda line: None) -> tuple[float, float]:
    """Seconds for the whole run and the final val loss."""
    cfg = TrainConfig(data=data, tokenizer="char", preset="baby", max_iters=steps, dropout=0.0,
                      log_interval=10, sample_interval=10**9, out=out, device="cpu", **RECIPE)  # as PyTorch's
    start = time.perf_counter()
    history = train(cfg, log=log)
    return time.perf_counter() - start, history["val"][-1]


def run_pytorch(data: str, steps: int, out: str) -> tuple[float, float]:
    """Seconds for the whole PyTorch run and its final val loss."""
    result = {}
    start = time.perf_counter()
    for _ in pytorch_loop(data, steps, out, result):
        pass
    return time.perf_counter() - start, result["val"]


def pytorch_loop(data: str, steps: int, out: str, result: dict):
    """nanoGPT's training loop (train.py, compile off) on the same data and recipe, as a generator:
    each ``next()`` runs one step (the first also sets up, the last also evaluates) and gives the
    number of steps done; at the end ``result["val"]`` is the final val loss."""
    import torch
    from torch_gpt import TorchGPT, load_tinyllm_state
    import tinyllm
    from tinyllm.model import GPT
    rng = np.random.default_rng(1337)
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
    best_val = float("inf")
    for step in range(steps + 1):
        if step % RECIPE["eval_interval"] == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                losses = {split: float(np.mean([model(*get_batch(split))[1].item()
                                                for _ in range(RECIPE["eval_iters"])])) for split in ("train", "val")}
            model.train()
            result["val"] = losses["val"]
            if result["val"] < best_val:
                best_val = result["val"]
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, Path(out) / "ckpt.pt")
        if step == steps:
            return
        for group in opt.param_groups:
            group["lr"] = optim.cosine_lr(step, RECIPE["lr"], RECIPE["min_lr"], RECIPE["warmup_iters"], steps)
        _, loss = model(*get_batch("train"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), RECIPE["grad_clip"])
        opt.step()
        if step % 10 == 0:
            loss.item()  # nanoGPT reads the loss when it logs
        yield step + 1


def run_in_lockstep(data: str, steps: int, out: str, segment: int) -> dict[str, tuple[float, float]]:
    """Both runs at once: whenever tinyllm logs a step that is a multiple of ``segment``, the
    PyTorch loop is run up to the same step. Each side's seconds count only its own work."""
    result, pytorch_seconds, pytorch_steps = {}, 0.0, 0
    loop = pytorch_loop(data, steps, out, result)

    def advance_pytorch(to_step: float) -> None:
        nonlocal pytorch_seconds, pytorch_steps
        start = time.perf_counter()
        while pytorch_steps < to_step:
            pytorch_steps = next(loop, math.inf)  # inf once the loop has finished
        pytorch_seconds += time.perf_counter() - start

    def on_log(line: str) -> None:  # train() logs "step    50 | loss ..." after that step's update
        logged = re.match(r"step\s+(\d+) \| loss", line)
        if logged and int(logged[1]) % segment == 0:
            advance_pytorch(int(logged[1]) + 1)

    seconds, tinyllm_val = run_tinyllm(data, steps, out, log=on_log)
    tinyllm_seconds = seconds - pytorch_seconds  # its wall time, less the PyTorch segments run inside it
    advance_pytorch(math.inf)
    return {"pytorch (nanoGPT loop)": (pytorch_seconds, result["val"]),
            "tinyllm train": (tinyllm_seconds, tinyllm_val)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--segment", type=int, default=50, help="lockstep: steps each side runs per turn")
    parser.add_argument("--sequential", action="store_true", help="whole runs one after the other instead of lockstep")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each (taken in turn); the median ratio counts")
    args = parser.parse_args()
    if args.segment < 10 or args.segment % 10:
        parser.error("--segment must be a multiple of 10: tinyllm's train logs every 10 steps")
    rows, ratios = [], []
    with tempfile.TemporaryDirectory() as out:
        for r in range(args.rounds):
            if args.sequential:
                results = {name: run(args.data, args.steps, out)
                           for name, run in (("pytorch (nanoGPT loop)", run_pytorch), ("tinyllm train", run_tinyllm))}
            else:
                results = run_in_lockstep(args.data, args.steps, out, args.segment)
            reference = results["pytorch (nanoGPT loop)"][0]
            for name, (seconds, val) in results.items():
                rows.append([r + 1, name, seconds, seconds * 1e3 / args.steps, f"{val:.4f}",
                             f"{seconds / reference:.2f}"])
            ratios.append(results["tinyllm train"][0] / reference)
    how = "one after the other" if args.sequential else f"in lockstep, {args.segment} steps at a time"
    print(f"nanoGPT's CPU recipe, {args.steps} steps, the two runs {how}; ratio = wall time / PyTorch's "
          f"in the same round (goal: tinyllm <= 1.25)")
    print_table(["round", "run", "wall s", "ms per step (all in)", "final val loss", "ratio"], rows)
    print(f"median ratio over {args.rounds} round(s): {float(np.median(ratios)):.2f}")


if __name__ == "__main__":
    main()
