"""Training-step speed: tinyllm beside PyTorch eager, on this machine, in one run.

For each shape (nanoGPT's `baby` at batch 12 and `char-small` at batch 8), times
forward+backward and the full step (forward, backward, clip, AdamW) and reports
tokens/s, model FLOP/s and its share of this machine's float32 GEMM peak
(measured here with NumPy), and, where PyTorch is installed, the same step in
PyTorch eager with the same weights and the ratio tinyllm / PyTorch.

    python bench/train_step.py [--steps 10] [--presets baby,char-small] [--no-torch]
    python bench/train_step.py --profile [--presets baby]

--profile instead prints where tinyllm's step spends its time, op by op,
forward and backward, measured with cProfile (which adds a little overhead).
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from bench.common import print_table, random_batch  # noqa: E402
import tinyllm  # noqa: E402
from tinyllm import optim  # noqa: E402
from tinyllm.backend import to_device, to_numpy  # noqa: E402
from tinyllm.model import GPT  # noqa: E402
from tinyllm.metrics import flops_per_token, gemm_peak_flops  # noqa: E402

BATCH = {"baby": 12, "char-small": 8}


def median_step_times(steps: list, repeats: int, rounds: int = 2) -> list[float]:
    """Seconds per call of each callable: the median of ``repeats`` calls in a row, best of
    ``rounds`` rounds that take the callables in turn. (Calls are not interleaved one by one:
    PyTorch's and OpenBLAS's worker threads keep spinning for a while after their work and
    would slow each other down.)"""
    best = [float("inf")] * len(steps)
    for _ in range(rounds):
        for i, step in enumerate(steps):
            step()  # warm-up
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            best[i] = min(best[i], float(np.median(times)))
    return best


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


def tinyllm_steps(config, ids, device: str = "cpu"):
    """The model and its two timed callables, with the model and the batch on ``device``."""
    tinyllm.manual_seed(0)
    model = GPT(config).to(device)
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    x, y = to_device(ids[:, :-1], device), to_device(ids[:, 1:], device)
    return model, *make_steps(lambda: model(x, y)[1], opt, lambda: optim.clip_grad_norm_(model.parameters(), 1.0))


def torch_steps(config, ids, state, device: str = "cpu"):
    """The same two callables in PyTorch eager, from tinyllm's ``state`` (name -> array)."""
    import torch
    from torch_gpt import TorchGPT, load_tinyllm_state
    model = TorchGPT(config).to(device)
    load_tinyllm_state(model, {name: to_numpy(a) for name, a in state.items()})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = (torch.from_numpy(a.copy()).to(device) for a in (ids[:, :-1], ids[:, 1:]))
    return make_steps(lambda: model(x, y)[1], opt, lambda: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))


def peak_rss_mb(impl: str, preset: str, steps: int = 5) -> float:
    """Peak resident memory of a fresh process that builds the model and runs ``steps`` full
    training steps with ``impl`` (imports included: that is what a training run costs)."""
    code = (f"import sys; sys.argv = ['', '--child', '{impl}', '--presets', '{preset}', '--steps', '{steps}']; "
            f"sys.path.insert(0, {str(ROOT)!r}); from bench.train_step import main, own_peak_kib; main(); "
            "print(own_peak_kib())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1]) / 1024  # KiB -> MiB


def own_peak_kib() -> int:
    """This process's peak resident memory in KiB."""
    status = Path("/proc/self/status")
    if status.exists():  # Linux: VmHWM, this process's own peak ("high water mark")
        return int(status.read_text().split("VmHWM:")[1].split()[0])
    # Elsewhere, getrusage (it may also count the parent's memory at fork time); macOS gives bytes.
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def qualified_names() -> dict[tuple[str, int], str]:
    """(file, first line) -> qualified name (e.g. ``linear.<locals>.backward``) of every tinyllm function."""
    import importlib
    import inspect
    import pkgutil
    import types
    names = {}

    def walk(code, prefix: str):
        # prefix: "" in a module, "Class." in a class, "f.<locals>." in a function
        # (the names Python 3.11's code.co_qualname gives; this also runs on 3.10)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                name = prefix + const.co_name
                names[(const.co_filename, const.co_firstlineno)] = name
                walk(const, name + (".<locals>." if const.co_flags & inspect.CO_NEWLOCALS else "."))
    for info in pkgutil.walk_packages(tinyllm.__path__, "tinyllm."):
        module = importlib.import_module(info.name)
        source = Path(module.__file__).read_text()
        walk(compile(source, module.__file__, "exec"), "")
    return names


def profile(full, steps: int, gemm_seconds: float) -> None:
    """Print ms per step for each op's forward and backward, the optimizer and the engine."""
    full()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        full()
    prof.disable()
    names = qualified_names()
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (calls, _, own time, cumulative time, callers)
    total = max(cum for (file, _, name), (_, _, _, cum, _) in stats.items() if name == "full")
    ms = defaultdict(lambda: [0.0, 0.0])
    rows_of = {}  # stats key -> (row, 0 forward / 1 backward) of each function timed whole
    for key in stats:
        file, line, _ = key
        qual = names.get((file, line))
        if qual is None or not file.startswith(str(ROOT / "tinyllm")):
            continue
        module = Path(file).parent.name + "/" + Path(file).name if "ops" in file else Path(file).name
        if module in ("ops/elementwise.py", "ops/reduce.py", "ops/shape.py", "ops/matmul.py", "functional.py"):
            op, _, inner = qual.partition(".<locals>.")
            if "." not in op and not op.startswith("_"):  # helpers are inside their op's time
                rows_of[key] = (op, 1 if inner else 0)  # the op itself, or its backward closure
        elif qual in ("Optimizer.step", "clip_grad_norm_"):
            rows_of[key] = (qual, 0)
        elif qual in ("Tensor.backward", "Tensor._accumulate_grad", "Tensor._topological_order"):
            ms["(autograd engine, own time)"][1] += stats[key][2]
    for key, (row, column) in rows_of.items():
        _, _, _, cum, callers = stats[key]
        # An op may call another (transpose calls permute, most call normalize_axes): count that
        # time once, in the outer op, by leaving out the calls made from functions timed whole.
        ms[row][column] += cum - sum(ct for caller, (_, _, _, ct) in callers.items() if caller in rows_of)
    rows = [[op, f * 1e3 / steps, b * 1e3 / steps, f"{(f + b) / total:.0%}"]
            for op, (f, b) in sorted(ms.items(), key=lambda kv: -sum(kv[1])) if f + b > 1e-6 * steps]
    counted = sum(f + b for f, b in ms.values())
    rows.append(["(everything else: modules, Python)", (total - counted) * 1e3 / steps, 0.0,
                 f"{(total - counted) / total:.0%}"])
    print_table(["op", "forward ms/step", "backward ms/step", "share"], rows)
    print(f"step {total * 1e3 / steps:.1f} ms under the profiler; its GEMMs at this machine's peak would "
          f"take {gemm_seconds * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement (median)")
    parser.add_argument("--presets", default="baby,char-small")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--profile", action="store_true", help="time tinyllm's step op by op instead")
    parser.add_argument("--child", choices=["tinyllm", "pytorch"], help=argparse.SUPPRESS)  # for peak_rss_mb
    args = parser.parse_args()
    if args.child:  # just run the steps, in this (fresh) process
        config, ids = random_batch(args.presets, BATCH[args.presets])
        model, _, full = tinyllm_steps(config, ids)
        if args.child == "pytorch":
            full = torch_steps(config, ids, model.state_dict())[1]
            del model
            import gc
            gc.collect()
        for _ in range(args.steps):
            full()
        return
    try:
        import torch  # noqa: F401
        have_torch = not args.no_torch
    except ImportError:
        have_torch = False

    peak = gemm_peak_flops(2048)
    print(f"NumPy float32 GEMM peak here: {peak / 1e9:.1f} GFLOP/s")
    rows = []
    for preset in args.presets.split(","):
        config, ids = random_batch(preset, BATCH[preset])
        B, T = BATCH[preset], config.block_size
        model, fwd_bwd, full = tinyllm_steps(config, ids)
        n_params = model.num_parameters()
        fpt = flops_per_token(config, n_params)
        if args.profile:
            print(f"\n{preset} (B={B}, T={T}):")
            profile(full, args.steps, fpt * B * T / peak)
            continue
        impls = [("tinyllm", fwd_bwd, full)]
        if have_torch:
            impls.append(("pytorch", *torch_steps(config, ids, model.state_dict())))
        fwd_bwd_times = median_step_times([fb for _, fb, _ in impls], args.steps)
        step_times = median_step_times([step for _, _, step in impls], args.steps)
        results = {name: times for (name, _, _), *times in zip(impls, fwd_bwd_times, step_times)}
        for name, (t_fb, t_step) in results.items():
            tok_s = B * T / t_step
            ratio = f"{results['pytorch'][1] / t_step:.2f}" if "pytorch" in results else "-"
            rows.append([f"{preset} (B={B}, T={T}, {n_params / 1e6:.2f}M)", name, t_fb * 1e3, t_step * 1e3,
                         f"{tok_s:,.0f}", f"{fpt * tok_s / 1e9:.1f}", f"{fpt * tok_s / peak:.0%}", ratio,
                         f"{peak_rss_mb(name, preset):.0f}"])
    if args.profile:
        return
    print("ms are medians; the full step is forward + backward + clip + AdamW; "
          "ratio = tinyllm tokens/s / PyTorch tokens/s;\npeak RSS: a fresh process building the model and "
          "running 5 steps, imports included")
    print_table(["shape", "impl", "fwd+bwd ms", "step ms", "tokens/s", "GFLOP/s", "of GEMM peak",
                 "ratio", "peak RSS MB"], rows)


if __name__ == "__main__":
    main()
