"""Training-step speed on a GPU: tinyllm on CuPy beside PyTorch eager, in one run.

Two shapes: GPT-2 124M (batch 16, block 1024, vocabulary 50257) and nanoGPT's
shakespeare_char model `char-small` (batch 64, block 256). Each runs the full
step (forward, backward, clip, AdamW) in float32, then with TF32 matmuls, in
tinyllm and in PyTorch eager with the same weights. Printed: ms/step, tokens/s,
the ratio tinyllm / PyTorch, and the GPU memory each framework's allocator held
at its peak.

    python bench/gpu.py [--steps 10] [--presets gpt2,char-small] [--no-torch]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from bench.common import print_table, random_batch  # noqa: E402
from bench.train_step import make_steps  # noqa: E402
import tinyllm  # noqa: E402
from tinyllm import optim  # noqa: E402
from tinyllm.backend import set_tf32, xp_for  # noqa: E402
from tinyllm.model import GPT  # noqa: E402

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


def bench_tinyllm(config, ids, steps, tf32):
    cp = xp_for("cuda")
    set_tf32(tf32)
    tinyllm.manual_seed(0)
    model = GPT(config).to("cuda")
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    x, y = cp.asarray(ids[:, :-1]), cp.asarray(ids[:, 1:])
    _, full = make_steps(lambda: model(x, y)[1], opt, lambda: optim.clip_grad_norm_(model.parameters(), 1.0))
    pool = cp.get_default_memory_pool()
    seconds = time_step(full, steps, cp.cuda.Device().synchronize)
    peak = pool.total_bytes()  # the pool keeps every block it ever needed: its size is the peak
    set_tf32(False)
    return seconds, peak, {k: cp.asnumpy(v) for k, v in model.state_dict().items()}


def bench_torch(config, ids, state, steps, tf32):
    import torch
    from torch_gpt import TorchGPT, load_tinyllm_state
    torch.backends.cuda.matmul.allow_tf32 = tf32
    model = TorchGPT(config).cuda()
    load_tinyllm_state(model, state)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(ids[:, :-1].copy()).cuda(), torch.from_numpy(ids[:, 1:].copy()).cuda()
    _, full = make_steps(lambda: model(x, y)[1], opt, lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
    torch.cuda.reset_peak_memory_stats()
    seconds = time_step(full, steps, torch.cuda.synchronize)
    torch.backends.cuda.matmul.allow_tf32 = False
    return seconds, torch.cuda.max_memory_reserved()


def release_gpu_memory() -> None:
    """Give cached blocks back, so the next framework measured starts from an empty GPU."""
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
    args = parser.parse_args()
    cp = xp_for("cuda")
    print(f"GPU: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}, CuPy {cp.__version__}")
    rows = []
    for preset in args.presets.split(","):
        config, ids = random_batch(preset, BATCH[preset])
        B, T = BATCH[preset], config.block_size
        for tf32 in (False, True):
            t_ours, mem_ours, state = bench_tinyllm(config, ids, args.steps, tf32)
            release_gpu_memory()
            impls = [("tinyllm", t_ours, mem_ours)]
            if not args.no_torch:
                impls.append(("pytorch", *bench_torch(config, ids, state, args.steps, tf32)))
                release_gpu_memory()
            for name, seconds, mem in impls:
                ratio = f"{impls[1][1] / seconds:.2f}" if len(impls) > 1 else "-"
                rows.append([f"{preset} B={B} T={T}", "tf32" if tf32 else "fp32", name, seconds * 1e3,
                             f"{B * T / seconds:,.0f}", ratio, f"{mem / 2**30:.1f}"])
    print("ms: median full step (forward, backward, clip, AdamW); ratio = tinyllm tokens/s / PyTorch tokens/s; "
          "memory: GiB held by the allocator at its peak")
    print_table(["shape", "precision", "impl", "ms/step", "tokens/s", "ratio", "GPU GiB"], rows)


if __name__ == "__main__":
    main()
