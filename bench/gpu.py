"""Training-step speed on a GPU: tinyllm on CuPy beside PyTorch eager, in one run.

Two shapes: GPT-2 124M (batch 16, block 1024, vocabulary 50257) and nanoGPT's
shakespeare_char model `char-small` (batch 64, block 256). Each runs the full
step (forward, backward, clip, AdamW) in float32, with TF32 matmuls, and in mixed
precision (bf16, fp16: autocast, float32 master weights; fp16 with loss scaling),
in tinyllm and in PyTorch eager with the same weights (PyTorch's attention is its
fused one, in 16 bits under autocast; tinyllm's is unfused, its products and its
(T, T) weights in 16 bits, softmax summing in float32). Printed: ms/step,
tokens/s, the ratio tinyllm / PyTorch, and the GPU memory each framework's
allocator held at its peak.

    python bench/gpu.py [--steps 10] [--presets gpt2,char-small] [--precisions fp32,tf32,bf16,fp16] [--no-torch]
    python bench/gpu.py --profile [--presets char-small]

--profile instead shows where tinyllm's step spends its time on the GPU: the
host's time to issue a step beside the GPU's time to run it (when the two are
close, Python is the bottleneck, not the GPU), and, where PyTorch is installed,
the GPU time of each kind of CUDA kernel (read through PyTorch's profiler,
which sees every kernel of the process, CuPy's too).
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from bench.common import print_table, random_batch  # noqa: E402
from bench.train_step import tinyllm_steps, torch_steps  # noqa: E402
from tinyllm.backend import set_tf32, xp_for  # noqa: E402

BATCH = {"gpt2": 16, "char-small": 64}


def time_step(step, steps: int, sync) -> float:
    """Median seconds of ``step``, waiting for the GPU after each."""
    step()
    sync()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


AUTOCAST = {"bf16": "bfloat16", "fp16": "float16"}


def bench_tinyllm(config, ids, steps, precision):
    from tinyllm.amp import GradScaler, autocast
    cp = xp_for("cuda")
    set_tf32(precision == "tf32")   # (under autocast every product is 16-bit: the Linear layers' and attention's)
    model, _, full = tinyllm_steps(config, ids, "cuda")
    pool = cp.get_default_memory_pool()
    scaler = GradScaler() if precision == "fp16" else None

    def step():
        with autocast(AUTOCAST.get(precision, "float32")):
            full()
        if scaler:   # the scaler's own work: unscale, the finite check (a read), the scale's update
            scaler.update(scaler.unscale_(model.parameters()))
    seconds = time_step(step, steps, cp.cuda.Device().synchronize)
    peak = pool.total_bytes()  # the pool keeps every block it ever needed: its size is the peak
    set_tf32(False)
    return seconds, peak, model.state_dict()


def bench_torch(config, ids, state, steps, precision):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    _, full = torch_steps(config, ids, state, "cuda")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def step():
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            full()
    torch.cuda.reset_peak_memory_stats()
    seconds = time_step(step, steps, torch.cuda.synchronize)
    torch.backends.cuda.matmul.allow_tf32 = False
    return seconds, torch.cuda.max_memory_reserved()


def kernel_table(full, steps: int, sync) -> None:
    """GPU time of each kind of CUDA kernel in ``steps`` calls of ``full`` (needs PyTorch's profiler)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            full()
        sync()
    kernels = sorted((e for e in prof.key_averages() if e.device_time_total > 0), key=lambda e: -e.device_time_total)
    total = sum(e.device_time_total for e in kernels)
    rows = [[e.key[:70], e.count // steps, e.device_time_total / steps / 1e3, f"{e.device_time_total / total:.0%}"]
            for e in kernels[:25]]
    print_table(["kernel", "calls/step", "GPU ms/step", "share"], rows)
    print(f"all kernels: {total / steps / 1e3:.1f} GPU ms/step in {sum(e.count for e in kernels) // steps} launches")


def profile(config, ids, steps: int, with_torch: bool) -> None:
    """Print tinyllm's host vs GPU ms per step and, with PyTorch, both frameworks' kernel tables."""
    from cupyx.profiler import benchmark
    cp = xp_for("cuda")
    model, _, full = tinyllm_steps(config, ids, "cuda")
    result = benchmark(full, n_repeat=steps, n_warmup=2)
    print(f"tinyllm: host time to issue a step {result.cpu_times.mean() * 1e3:.1f} ms, "
          f"GPU time {result.gpu_times.mean() * 1e3:.1f} ms")
    if not with_torch:
        return
    kernel_table(full, steps, cp.cuda.Device().synchronize)
    import torch
    _, t_full = torch_steps(config, ids, model.state_dict(), "cuda")
    t_full()
    print("PyTorch eager, the same step:")
    kernel_table(t_full, steps, torch.cuda.synchronize)


def release_gpu_memory() -> None:
    """Give cached blocks back, so the next framework measured starts from an empty GPU."""
    gc.collect()  # arrays held only by reference cycles are freed at the collector's next run: now
    xp_for("cuda").get_default_memory_pool().free_all_blocks()
    try:
        import torch
        torch.cuda.empty_cache()
    except ImportError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--presets", default="gpt2,char-small")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--precisions", default="fp32,tf32,bf16,fp16",
                        help="fp32, tf32, and mixed precision bf16 (needs ml_dtypes and CuPy's bfloat16) and fp16")
    parser.add_argument("--profile", action="store_true", help="show where tinyllm's step spends its time")
    args = parser.parse_args()
    try:
        cp = xp_for("cuda")
    except RuntimeError as e:          # no CuPy, or no GPU: the error says which
        print(f"bench/gpu.py: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"GPU: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, CuPy {cp.__version__}")
    if args.profile:
        for preset in args.presets.split(","):
            print(f"\n{preset} (B={BATCH[preset]}):")
            profile(*random_batch(preset, BATCH[preset]), args.steps, not args.no_torch)
        return
    rows = []
    for preset in args.presets.split(","):
        config, ids = random_batch(preset, BATCH[preset])
        B, T = BATCH[preset], config.block_size
        for precision in args.precisions.split(","):
            try:
                t_ours, mem_ours, state = bench_tinyllm(config, ids, args.steps, precision)
            except Exception as e:   # bfloat16 on a CuPy without it, say: a row that says so, and on
                rows.append([f"{preset} B={B} T={T}", precision, "tinyllm", f"failed: {type(e).__name__}: {e}"[:80],
                             "", "", ""])
                release_gpu_memory()
                continue
            release_gpu_memory()
            impls = [("tinyllm", t_ours, mem_ours)]
            if not args.no_torch:
                impls.append(("pytorch", *bench_torch(config, ids, state, args.steps, precision)))
                release_gpu_memory()
            for name, seconds, mem in impls:
                ratio = f"{impls[1][1] / seconds:.2f}" if len(impls) > 1 else "-"
                rows.append([f"{preset} B={B} T={T}", precision, name, seconds * 1e3,
                             f"{B * T / seconds:,.0f}", ratio, f"{mem / 2**30:.1f}"])
    print("ms: median full step (forward, backward, clip, AdamW); ratio = tinyllm tokens/s / PyTorch tokens/s; "
          "memory: GiB held by the allocator at its peak")
    print_table(["shape", "precision", "impl", "ms/step", "tokens/s", "ratio", "GPU GiB"], rows)


if __name__ == "__main__":
    main()
