# %% [markdown]
# # Lesson 12 — Scaling up: the same code on a GPU
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–11.1 are solved
# (this lesson adds none); or in this checkout, where every exercise is solved.*
#
# **What you will build:** a view of tinyllm's backend seam, the one place that
# decides where numbers live; a measurement of how much arithmetic this machine does
# per second and how much of it a training step uses; a count of the memory a step
# holds, and how it grows with the context; and, where a GPU and CuPy are present,
# the same training step on the GPU.
#
# Every op in tinyllm asks its input which array module it lives in
# (`array_module(x)`: `numpy` on the CPU, `cupy` on an NVIDIA GPU) and calls
# `xp.exp`, `xp.matmul`, ... on it. CuPy copies NumPy's API, so the lines you read in
# lessons 01–11 run unchanged on a GPU; only a few formulas (GELU, softmax, LayerNorm,
# dropout, AdamW) also exist as fused GPU kernels, for speed (below).
# One switch moves a model: `model.to("cuda")`, `tinyllm train --device cuda`, or
# `TINYLLM_DEVICE=cuda` (the default of every `--device`, of `TrainConfig` and of
# `load_checkpoint`).

# %%
import time
import tracemalloc

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure
from tinyllm import Tensor, manual_seed, optim
from tinyllm.backend import array_module, xp_for
from tinyllm.model import GPT, GPTConfig
from tinyllm.metrics import flops_per_token, gemm_peak_flops

exercises_before(12)
x = Tensor(np.arange(6.0).reshape(2, 3))
print("this tensor's array module:", array_module(x.data).__name__, "| device:", x.device)

# %% [markdown]
# ## How fast can this machine multiply?
# A training step is mostly matrix products (GEMMs). The peak rate of one big float32
# GEMM is the ceiling; *MFU* (model FLOPs utilisation) is the share of it a training
# step achieves: 6 FLOPs per parameter per token (2 forward, 4 backward) plus attention.

# %%
peak = gemm_peak_flops(512 if FAST else 2048)
print(f"CPU float32 GEMM peak: {peak / 1e9:.0f} GFLOP/s")


def step_speed(device: str, preset: str, batch: int, steps: int) -> tuple[float, float]:
    """(tokens/s, MFU against ``peak``) of full training steps of ``preset`` on ``device``."""
    manual_seed(0)
    config = GPTConfig.from_preset(preset, dropout=0.0)
    model = GPT(config).to(device)
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    xp = xp_for(device)
    ids = xp.asarray(np.random.default_rng(0).integers(0, config.vocab_size, (batch, config.block_size + 1)))
    times = []
    for _ in range(steps + 1):                       # the first step warms up
        began = time.perf_counter()
        _, loss = model(ids[:, :-1], ids[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()                                  # waits for the GPU to finish the step
        times.append(time.perf_counter() - began)
    tokens_per_s = batch * config.block_size / np.median(times[1:])
    return tokens_per_s, flops_per_token(config, model.num_parameters()) * tokens_per_s


for preset, batch in (("baby", 12),) if FAST else (("baby", 12), ("char-small", 8)):
    tok_s, flops = step_speed("cpu", preset, batch, 2 if FAST else 5)
    print(f"cpu  {preset:10} batch {batch:3}: {tok_s:9,.0f} tokens/s, {flops / 1e9:6.1f} GFLOP/s, "
          f"MFU {flops / peak:.0%}")

# %% [markdown]
# The bigger model uses more of the machine: its matrices are large enough for the
# GEMMs to run near peak, while the small one spends relatively more time in
# elementwise work (softmax, GELU, LayerNorm) and Python overhead.
#
# ## Memory: what a step holds between forward and backward
# The forward leaves behind everything its backward will read: each op's saved arrays
# (LayerNorm's x̂, GELU's input, each Linear's input, attention's weights, ...). That
# is what fills a GPU's memory first. NumPy reports every array it makes to Python's
# `tracemalloc`, so we can count it: here are the bytes a `baby` model's graph holds after
# the forward, at batch 4, for longer and longer contexts.

# %%
B = 4
contexts = (64, 128, 256) if FAST else (64, 128, 256, 512, 1024)
held, attention = [], []
for T in contexts:
    manual_seed(0)
    config = GPTConfig.from_preset("baby", block_size=T)
    model = GPT(config)
    ids = np.random.default_rng(0).integers(0, config.vocab_size, (B, T + 1))
    model(ids[:, :-1], ids[:, 1:])                   # once first: caches (the causal mask) are made
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    _, loss = model(ids[:, :-1], ids[:, 1:])         # the graph hangs from loss until we drop it
    held.append((tracemalloc.get_traced_memory()[0] - before) / 2**20)
    tracemalloc.stop()
    attention.append(config.n_layer * B * config.n_head * T * T * 4 / 2**20)   # (B, H, T, T) float32 per layer
    rest = (held[-1] - attention[-1]) * 2**20 / (config.n_layer * B * T * config.n_embd * 4)
    print(f"T = {T:4}: {held[-1]:6.1f} MiB held, attention weights {attention[-1]:6.1f} MiB, "
          f"everything else as much as {rest:.0f} arrays of (B, T, C) per layer")

# Per layer, attention holds B·H·T² numbers and everything else about rest·B·T·C: the
# weights are the larger share once H·T > rest·C, past T = rest·C/H.
print(f"the attention weights outgrow everything else past T = {rest:.0f} · C / H = "
      f"{rest * config.n_embd / config.n_head:.0f} tokens for this model")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.bar([str(T) for T in contexts], np.subtract(held, attention), label="everything else (grows as T)")
ax.bar([str(T) for T in contexts], attention, bottom=np.subtract(held, attention),
       label="attention weights (grow as T²)")
ax.set_xlabel("context length T")
ax.set_ylabel("MiB held after the forward")
ax.set_title("baby GPT, batch 4")
ax.legend()
save_figure(fig, "12_memory.png")

# %% [markdown]
# Everything but attention grows with B·T: a couple of dozen (B, T, C) arrays per
# layer. The attention weights, (B, H, T, T) per layer, grow with T²: past the T printed
# above (rest·C/H, from the measured count of arrays) they are most of it. A model with
# more heads for its width reaches that point sooner; one whose vocabulary is large
# next to C holds big (B, T, V) logits too, which moves it later. tinyllm keeps only the weights
# (`F.scaled_dot_product_attention`, lesson 07); the scores q·kᵀ before the softmax are
# let go. FlashAttention, behind PyTorch's function of the same name on a GPU, keeps
# not even the weights: its backward works them out again, block by block, from q, k
# and one number per row (the softmax's log-sum), so its memory grows as T, not T².
# The same trade, time for memory, is made on a GPU for LayerNorm's x̂ and
# cross-entropy's probabilities: remade in the backward from the inputs the graph
# holds anyway. On a GPU a pass over memory is cheap and memory runs out first; on a
# CPU the pass costs more time than the memory is worth, so there they are kept.
# tinyllm's graph also holds a few arrays that no backward reads: each op keeps its
# inputs as Tensors, values and all (the residual branch's output that `+` took, say).
# PyTorch's graph is made of nodes apart from the values, each holding only what its
# backward saved, so it lets those go.
# The parameters cost 16 bytes each on top of this: the weight, its gradient and AdamW's two moments.
#
# ## On a GPU
# A GPU does tens of TFLOP/s of float32 (an H100: about 50), hundreds of times a
# laptop. Install CuPy for your CUDA version (`pip install cupy-cuda12x`), then:
#
#     tinyllm train --device cuda --preset char-small --batch-size 64 --max-iters 5000 \
#         --dropout 0.2 --eval-iters 200 --data shakespeare.txt
#
# What changes: arrays live in GPU memory (`Tensor.to("cuda")`; `.numpy()` copies
# back), reading a number (`loss.item()`) waits for the GPU so the loop does it only
# when logging, each device has its own random generator, and `--tf32` lets matrix
# products use TF32 tensor cores (faster, ~1e-3 relative error). Checkpoints are plain
# NumPy arrays and load on either device.
#
# ## Fused kernels: when memory, not arithmetic, is the cost
# Written NumPy style, GELU is a chain of ~8 small steps (square, scale, add, exp, ...),
# and each step reads and writes the whole array once more. A GPU does the arithmetic
# of all of them in less time than one trip through memory takes, so on a GPU the
# chain costs 8 trips and 8 kernel launches where 1 would do. PyTorch runs GELU as
# one kernel; so does tinyllm on a GPU: `tinyllm/cuda_kernels.py` writes the same
# formula once more as a line of CUDA C, which CuPy compiles into one kernel that
# reads x and writes y once. Here is GELU's forward, as CuPy will compile it:

# %%
from tinyllm import cuda_kernels

inputs, outputs, body, name = cuda_kernels._gelu.args
print(f"{name}({inputs}) -> ({outputs}):\n    {body}")

# %% [markdown]
# The same holds for softmax (one pass finds each row's max and sum together, a
# second writes y; cross-entropy uses it too), LayerNorm, dropout and the AdamW update.
# tests/test_cuda_kernels.py compiles these C lines for the CPU and runs the gradient
# checks through them; on a GPU machine tests/test_devices.py checks every op against
# its NumPy twin.

# %%
try:
    xp_for("cuda")
    tok_s, _ = step_speed("cuda", "char-small", 64, 5)
    print(f"cuda char-small batch 64: {tok_s:,.0f} tokens/s")
except RuntimeError as e:  # no CuPy, or no GPU: the error says which
    print("no GPU here:", e)

# %% [markdown]
# ## What you now know
# - One seam (`tinyllm/backend.py`) picks NumPy or CuPy per array; ops never care.
# - MFU = model FLOP/s ÷ peak GEMM FLOP/s: how much of the machine a step uses.
# - Between forward and backward the graph holds what each backward reads: memory that
#   grows with B·T, and with B·T² for the attention weights.
# - On a GPU only data placement, synchronisation and random generators change, and a
#   few memory-bound formulas run as one fused kernel each instead of one pass per step.
#
# That is the whole path: numbers with gradients, an engine, layers, tokens,
# attention, a GPT, training, sampling, compression, and a GPU. `bench/` measures it
# against PyTorch; the exercises let you write every key line yourself. Lesson 13
# puts the weights OpenAI trained into the GPT you built.
