"""Data-parallel training on this machine: tokens/s of 1 rank against 2, and what the all-reduce costs.

    python bench/ddp.py [--preset baby] [--batch 12] [--steps 20]
    python bench/ddp.py --device cuda --preset gpt2 --batch 8      # on a GPU machine

Three ways, each in fresh processes, the same training step (tinyllm.train.train_step: forward,
backward, the gradients averaged over the ranks, clip, AdamW) on random tokens:
1 rank with 1 BLAS thread; 2 ranks under mpiexec with 1 thread each (each rank --batch sequences,
so a step is twice the tokens); 1 rank with 2 threads (the usual way to use 2 cores). The median
step, the tokens per second of the whole job, and the median time of the all-reduce with its share
of the step. Needs mpi4py and mpiexec (pip install -e ".[dist]").

With ``--device cuda``: 1 rank on one GPU; as many ranks as GPUs, NCCL summing the gradients (where
there are several); and 2 ranks whose gradients go through the host (``--all-reduce mpi``), which
on a machine with one GPU share it: what such a machine can test. Each step ends by reading its
loss, so the GPU's work is counted.
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
    from tinyllm.backend import xp_for
    from tinyllm.data import TokenBatches
    from tinyllm.distributed import RankBatches, world_from_environment
    from tinyllm.model import GPT
    from tinyllm.train import train_step
    world = world_from_environment(args.device, args.all_reduce)
    config, _ = random_batch(args.preset, 1)
    model = GPT(config).to(args.device)
    tokens = np.random.default_rng(0).integers(0, config.vocab_size, 200_000)
    batches = RankBatches(TokenBatches(tokens, config.block_size, device=args.device), world)
    wait = (lambda: None) if args.device == "cpu" else xp_for("cuda").cuda.Device().synchronize
    opt, rng = optim.AdamW(model.parameters(), lr=1e-4), np.random.default_rng(0)
    reduce_times = []
    average = world.average_gradients

    def timed_average(params):
        wait()                                            # the backward done: time the all-reduce alone
        began = time.perf_counter()
        average(params)
        wait()
        reduce_times.append(time.perf_counter() - began)
    world.average_gradients = timed_average
    step_times = []
    for _ in range(args.steps + 2):                       # the first two: warm-up, not counted
        began = time.perf_counter()
        loss, _ = train_step(model, opt, batches, args.batch, rng, world=world)
        loss.item()                                       # wait for the step's work
        step_times.append(time.perf_counter() - began)
    if world.is_main:
        step = statistics.median(step_times[2:])
        print(json.dumps({"step": step, "reduce": statistics.median(reduce_times[2:]) if world.size > 1 else 0.0,
                          "tokens_per_s": args.batch * config.block_size * world.size / step}))


def run_way(args: argparse.Namespace, ranks: int, threads: int, all_reduce: str | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--child", "--preset", args.preset, "--batch", str(args.batch),
               "--steps", str(args.steps), "--device", args.device] + (["--all-reduce", all_reduce] if all_reduce else [])
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
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--all-reduce", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.device == "cpu":
        ways = {"1 rank x 1 thread": (1, 1), "2 ranks x 1 thread": (2, 1), "1 rank x 2 threads": (1, 2)}
    else:
        from tinyllm.backend import xp_for
        gpus = xp_for("cuda").cuda.runtime.getDeviceCount()     # no CuPy or no GPU: a clear error
        ways = {"1 rank, 1 GPU": (1, 1)}
        if gpus > 1:
            ways[f"{gpus} ranks, NCCL"] = (gpus, 1, "nccl")
        ways["2 ranks, through the host"] = (2, 1, "mpi")    # with one GPU: both on it
    results = {name: run_way(args, *way) for name, way in ways.items()}
    first = next(iter(ways))
    reference = results[first]["tokens_per_s"]
    print(f"{args.preset} on {args.device}, {args.batch} sequences per rank per step, median of {args.steps} steps")
    print_table(["way", "step ms", "tokens/s", f"/ {first}", "all-reduce ms", "share of step"],
                [[name, 1e3 * r["step"], round(r["tokens_per_s"]), r["tokens_per_s"] / reference,
                  1e3 * r["reduce"], f"{r['reduce'] / r['step']:.1%}"] for name, r in results.items()])


if __name__ == "__main__":
    main()
