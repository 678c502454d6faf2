"""Data-parallel training on this machine: tokens/s of 1 rank against 2, and what the all-reduce costs.

    python bench/ddp.py [--preset baby] [--batch 12] [--steps 20]

Three ways, each in fresh processes, the same training step (tinyllm.train.train_step: forward,
backward, the gradients averaged over the ranks, clip, AdamW) on random tokens:
1 rank with 1 BLAS thread; 2 ranks under mpiexec with 1 thread each (each rank --batch sequences,
so a step is twice the tokens); 1 rank with 2 threads (the usual way to use 2 cores). The median
step, the tokens per second of the whole job, and the median time of the all-reduce with its share
of the step. Needs mpi4py and mpiexec (pip install -e ".[dist]").
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import print_table, random_batch  # noqa: E402


def child(args: argparse.Namespace) -> None:
    """One rank of one way: time the steps; rank 0 prints the medians as JSON."""
    import numpy as np
    from tinyllm import optim
    from tinyllm.data import TokenBatches
    from tinyllm.distributed import RankBatches, world_from_environment
    from tinyllm.model import GPT
    from tinyllm.train import train_step
    world = world_from_environment()
    config, _ = random_batch(args.preset, 1)
    model = GPT(config)
    tokens = np.random.default_rng(0).integers(0, config.vocab_size, 200_000)
    batches = RankBatches(TokenBatches(tokens, config.block_size), world)
    opt, rng = optim.AdamW(model.parameters(), lr=1e-4), np.random.default_rng(0)
    reduce_times = []
    average = world.average_gradients

    def timed_average(params):
        began = time.perf_counter()
        average(params)
        reduce_times.append(time.perf_counter() - began)
    world.average_gradients = timed_average
    step_times = []
    for _ in range(args.steps + 2):                       # the first two: warm-up, not counted
        began = time.perf_counter()
        train_step(model, opt, batches, args.batch, rng, world=world)
        step_times.append(time.perf_counter() - began)
    if world.is_main:
        step = statistics.median(step_times[2:])
        print(json.dumps({"step": step, "reduce": statistics.median(reduce_times[2:]) if world.size > 1 else 0.0,
                          "tokens_per_s": args.batch * config.block_size * world.size / step}))


def run_way(args: argparse.Namespace, ranks: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--child", "--preset", args.preset, "--batch", str(args.batch),
               "--steps", str(args.steps)]
    if ranks > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        command = [str(mpiexec) if mpiexec.is_file() else "mpiexec", "-n", str(ranks)] + command
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="baby")
    parser.add_argument("--batch", type=int, default=12, help="sequences per rank per step")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per way")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    ways = {"1 rank x 1 thread": (1, 1), "2 ranks x 1 thread": (2, 1), "1 rank x 2 threads": (1, 2)}
    results = {name: run_way(args, *way) for name, way in ways.items()}
    reference = results["1 rank x 1 thread"]["tokens_per_s"]
    print(f"{args.preset}, {args.batch} sequences per rank per step, median of {args.steps} steps")
    print_table(["way", "step ms", "tokens/s", "/ 1 rank x 1 thread", "all-reduce ms", "share of step"],
                [[name, 1e3 * r["step"], round(r["tokens_per_s"]), r["tokens_per_s"] / reference,
                  1e3 * r["reduce"], f"{r['reduce'] / r['step']:.1%}"] for name, r in results.items()])


if __name__ == "__main__":
    main()
