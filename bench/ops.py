"""How much does the autograd wrapper cost over the arrays' own arithmetic?

For each op at GPT shapes (B·T = 8192 rows, C = 384; vocab 65 and 50257; causal
attention over sequences of 256 with 6 heads of 64),
time forward + backward through tinyllm, and the same arithmetic written as
bare NumPy (no Tensor, no graph) in the same run. The ratio is the overhead.

    python bench/ops.py [--rows 8192] [--repeats 5]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import best_time, print_table  # noqa: E402
from tinyllm import Tensor, functional as F  # noqa: E402

GELU_C = math.sqrt(2 / math.pi)


# --- the same arithmetic, bare ------------------------------------------------
def bare_matmul(x, w, g):
    out = x @ w
    return out, g @ w.T, x.T @ g


def bare_softmax(x, g):
    y = np.exp(x - x.max(-1, keepdims=True))
    y /= y.sum(-1, keepdims=True)
    dx = g - (g * y).sum(-1, keepdims=True)
    dx *= y
    return y, dx


def bare_layer_norm(x, w, b, g, eps=1e-5):
    xc = x - x.mean(-1, keepdims=True)
    rstd = 1 / np.sqrt((xc * xc).mean(-1, keepdims=True) + eps)
    xhat = xc * rstd
    y = xhat * w
    y += b
    d = g * w
    dx = d - d.mean(-1, keepdims=True) - xhat * (d * xhat).mean(-1, keepdims=True)
    dx *= rstd
    return y, dx, (g * xhat).sum(0), g.sum(0)


def bare_cross_entropy(z, t, ignore_index=-100):
    valid = t != ignore_index
    t = np.where(valid, t, 0)
    rows = np.arange(len(t))
    shifted = z - z.max(1, keepdims=True)
    target = shifted[rows, t]
    p = np.exp(shifted, out=shifted)
    total = p.sum(1, keepdims=True)
    count = np.float32(max(valid.sum(), 1))
    loss = ((np.log(total[:, 0]) - target) * valid).sum() / count
    p /= total
    row_scale = (valid / count).astype(np.float32)[:, None]
    dz = p * row_scale
    dz[rows, t] -= row_scale[:, 0]
    return loss, dz


def bare_attention(q, k, v, g):
    scale, T = 1 / math.sqrt(q.shape[-1]), q.shape[-2]
    a = (q * scale) @ k.swapaxes(-1, -2)
    a += np.where(np.triu(np.ones((T, T), bool), 1), np.float32(-np.inf), np.float32(0))  # the causal mask
    a -= a.max(-1, keepdims=True)
    np.exp(a, out=a)
    a /= a.sum(-1, keepdims=True)
    y = a @ v
    dv = a.swapaxes(-1, -2) @ g
    ds = g @ v.swapaxes(-1, -2)
    ds -= (ds * a).sum(-1, keepdims=True)
    ds *= a
    return y, (ds @ k) * scale, (ds.swapaxes(-1, -2) @ q) * scale, dv


def bare_gelu(x, g):
    t = np.tanh(GELU_C * (x + 0.044715 * x * x * x))
    y = 0.5 * x * (1 + t)
    slope = 0.5 * (1 + t) + (0.5 * GELU_C) * x * (1 - t * t) * (1 + 3 * 0.044715 * x * x)
    return y, g * slope


# --- the same, through tinyllm --------------------------------------------------
def run_tinyllm(fn, *arrays, grad=None):
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    out.backward(grad)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8192, help="B·T, the number of token positions")
    parser.add_argument("--width", type=int, default=384, help="C, the embedding width")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    N, C = args.rows, args.width
    f32 = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    x, g, w, b = f32(N, C), f32(N, C), f32(C), f32(C)
    wm, gm = f32(C, 4 * C) * 0.05, f32(N, 4 * C)

    cases = [
        (f"matmul ({N},{C})@({C},{4 * C})", lambda: bare_matmul(x, wm, gm),
         lambda: run_tinyllm(lambda a, m: a @ m, x, wm, grad=gm)),
        (f"softmax ({N},{C})", lambda: bare_softmax(x, g), lambda: run_tinyllm(F.softmax, x, grad=g)),
        (f"layer_norm ({N},{C})", lambda: bare_layer_norm(x, w, b, g),
         lambda: run_tinyllm(F.layer_norm, x, w, b, grad=g)),
        (f"gelu ({N},{4 * C})", lambda: bare_gelu(gm, gm), lambda: run_tinyllm(F.gelu, gm, grad=gm)),
    ]
    # causal attention, 6 heads of 64 as char-small, the rows cut into sequences of up to 256
    T = min(256, N)
    q, k, v, ga = (f32(N // T, 6, T, 64) for _ in range(4))
    cases.append((f"attention ({N // T},6,{T},64)", lambda: bare_attention(q, k, v, ga),
                  lambda: run_tinyllm(lambda *qkv: F.scaled_dot_product_attention(*qkv, is_causal=True),
                                      q, k, v, grad=ga)))
    for V in (65, 50257):
        z, t = f32(N, V), rng.integers(0, V, N)
        cases.append((f"cross_entropy ({N},{V})", lambda z=z, t=t: bare_cross_entropy(z, t),
                      lambda z=z, t=t: run_tinyllm(lambda a: F.cross_entropy(a, t), z)))

    rows = []
    for name, bare, ours in cases:
        t_bare, t_ours = [], []
        for _ in range(2):  # interleave, so a slow moment of the machine hits both
            t_bare.append(best_time(bare, args.repeats))
            t_ours.append(best_time(ours, args.repeats))
        tb, to = min(t_bare), min(t_ours)
        rows.append([name, tb * 1e3, to * 1e3, f"{to / tb:.3f}"])
    print(f"forward + backward, float32, best of {args.repeats} (ms); ratio = tinyllm / bare NumPy")
    print_table(["op", "bare ms", "tinyllm ms", "ratio"], rows)


if __name__ == "__main__":
    main()
