"""Training-step speed: tinyllm beside PyTorch eager, on this machine, in one run.

For each shape (nanoGPT's `baby` at batch 12 and `char-small` at batch 8), times
forward+backward and the full step (forward, backward, clip, AdamW) and reports
tokens/s, model FLOP/s and its share of this machine's float32 GEMM peak
(measured here with NumPy), and, where PyTorch is installed, the same step in
PyTorch eager with the same weights and the ratio tinyllm / PyTorch.

    python bench/train_step.py [--steps 10] [--presets baby,char-small] [--no-torch]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from bench.common import print_table  # noqa: E402
import tinyllm  # noqa: E402
from tinyllm import optim  # noqa: E402
from tinyllm.model import GPT, GPTConfig  # noqa: E402
from tinyllm.train import flops_per_token, gemm_peak_flops  # noqa: E402

BATCH = {"baby": 12, "char-small": 8}


def median_step_time(step, steps: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def make_steps(loss_fn, opt, clip):
    """The two timed callables: forward+backward, and the full step (plus clip and update)."""
    def fwd_bwd():
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()

    def full():
        fwd_bwd()
        clip()
        opt.step()
    return fwd_bwd, full


def tinyllm_steps(config, ids):
    tinyllm.manual_seed(0)
    model = GPT(config)
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    x, y = ids[:, :-1], ids[:, 1:]
    return model, *make_steps(lambda: model(x, y)[1], opt, lambda: optim.clip_grad_norm_(model.parameters(), 1.0))


def torch_steps(config, ids, state):
    import torch
    from torch_gpt import TorchGPT, load_tinyllm_state
    model = TorchGPT(config)
    load_tinyllm_state(model, state)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(ids[:, :-1].copy()), torch.from_numpy(ids[:, 1:].copy())
    return make_steps(lambda: model(x, y)[1], opt, lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement (median)")
    parser.add_argument("--presets", default="baby,char-small")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
        have_torch = not args.no_torch
    except ImportError:
        have_torch = False

    peak = gemm_peak_flops(2048)
    print(f"NumPy float32 GEMM peak here: {peak / 1e9:.1f} GFLOP/s")
    rows = []
    for preset in args.presets.split(","):
        config = GPTConfig.from_preset(preset, dropout=0.0)
        B, T = BATCH[preset], config.block_size
        ids = np.random.default_rng(0).integers(0, config.vocab_size, (B, T + 1))
        model, fwd_bwd, full = tinyllm_steps(config, ids)
        n_params = model.num_parameters()
        fpt = flops_per_token(config, n_params)
        impls = [("tinyllm", fwd_bwd, full)]
        if have_torch:
            impls.append(("pytorch", *torch_steps(config, ids, model.state_dict())))
        results = {}
        for name, fb, step in impls:
            results[name] = (median_step_time(fb, args.steps), median_step_time(step, args.steps))
        for name, (t_fb, t_step) in results.items():
            tok_s = B * T / t_step
            ratio = f"{results['pytorch'][1] / t_step:.2f}" if "pytorch" in results else "-"
            rows.append([f"{preset} (B={B}, T={T}, {n_params / 1e6:.2f}M)", name, t_fb * 1e3, t_step * 1e3,
                         f"{tok_s:,.0f}", f"{fpt * tok_s / 1e9:.1f}", f"{fpt * tok_s / peak:.0%}", ratio])
    print("ms are medians; the full step is forward + backward + clip + AdamW; "
          "ratio = tinyllm tokens/s / PyTorch tokens/s")
    print_table(["shape", "impl", "fwd+bwd ms", "step ms", "tokens/s", "GFLOP/s", "of GEMM peak",
                 "ratio"], rows)


if __name__ == "__main__":
    main()
