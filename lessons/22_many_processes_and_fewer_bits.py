# %% [markdown]
# # Lesson 22 — Many processes, and fewer bits
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–21.1 are solved
# (this lesson adds none); or in this checkout, where every exercise is solved.*
#
# **What you will build:** the proof, on a real gradient, that averaging the gradients of N
# processes is one step with an N times bigger batch; the same thing run by `tinyllm train
# --nproc 2` (when MPI is installed); the bits of float32, float16 and bfloat16; and why
# float16 training needs loss scaling, measured on the gradient of a model training here.
#
# Two ways to train faster than one process at full precision allows. *Data parallelism*:
# N processes (on N GPUs, or N cores) each take a share of the batch and exchange their
# gradients once a step (`tinyllm/distributed.py`). *Mixed precision*: the big matrix
# products in 16-bit numbers, which a GPU's tensor cores multiply several times faster
# (`tinyllm/amp.py`).

# %%
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure
from tinyllm import optim
from tinyllm.amp import dtype_of
from tinyllm.backend import manual_seed
from tinyllm.data import TokenBatches, encode_corpus, load_corpus, make_tokenizer
from tinyllm.model import GPT, GPTConfig
from tinyllm.train import TrainConfig, train, train_step

exercises_before(22)
text = load_corpus("pydoc")[: 50_000 if FAST else 400_000]
tok = make_tokenizer("char", text)
ids = encode_corpus(text, tok)
config = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=4, n_embd=64)

# %% [markdown]
# ## Two halves of a batch, averaged, are the whole batch
# The loss of a batch is the mean of its sequences' losses (all of one length). So the mean
# over 8 sequences is the average of the means over two halves of 4, and, the gradient being
# linear, so is its gradient: two processes that each take one half and then average their
# gradients hold exactly the gradient one process gets from all 8.

# %%
def gradient(model, x, y) -> np.ndarray:
    """The model's gradient on (x, y), every parameter's, end to end."""
    model.zero_grad()
    _, loss = model(x, y)
    loss.backward()
    return np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])


manual_seed(0)
model = GPT(config)
x, y = TokenBatches(ids, config.block_size).get_batch("train", 8, np.random.default_rng(0))
whole = gradient(model, x, y)
halves = (gradient(model, x[:4], y[:4]) + gradient(model, x[4:], y[4:])) / 2
print(f"{whole.size:,} gradient entries; the largest difference between the whole batch's gradient and the "
      f"halves' average: {np.abs(whole - halves).max():.1e} (float32 rounding), "
      f"next to a largest entry of {np.abs(whole).max():.1e}")

# %% [markdown]
# That average is the one collective operation data parallelism needs: an **all-reduce**
# (every process hands in an array, every process gets back the sum; dividing by N makes it
# the mean). `World.average_gradients` does one, over all the gradients laid end to end in
# one buffer, between the backward and the clip in `train_step`. Each step every process
# also draws the batch of all N shares the same way (one random stream, the same seed) and
# keeps its own rows, so together they see exactly the batch one process would draw.
#
# ## The same, run as two processes
# `tinyllm train --nproc 2` starts two processes under MPI's `mpiexec` (install with
# `pip install -e ".[dist]"`). Two processes of batch 4 against one of batch 8, for a few
# steps of AdamW with clipping:

# %%
HAS_MPI = importlib.util.find_spec("mpi4py") is not None and (
    (Path(sys.executable).parent / "mpiexec").is_file() or shutil.which("mpiexec") is not None)
steps = 4 if FAST else 20
work = Path(tempfile.mkdtemp(prefix="lesson22-"))
corpus = work / "corpus.txt"
corpus.write_text(text, encoding="utf-8")


def logged_losses(output: str) -> list[float]:
    return [float(line.split("| loss ")[1].split()[0]) for line in output.splitlines() if "| loss " in line]


if HAS_MPI:
    runs = {}
    for name, nproc, batch in (("one process, batch 8", 1, 8), ("two processes, batch 4 each", 2, 4)):
        command = [sys.executable, "-m", "tinyllm", "train", "--data", str(corpus), "--max-iters", str(steps),
                   "--batch-size", str(batch), "--n-layer", "2", "--n-embd", "64", "--block-size", "32",
                   "--eval-interval", str(steps), "--eval-iters", "2", "--log-interval", "1", "--sample-tokens", "0",
                   "--out", str(work / f"nproc{nproc}"), "--nproc", str(nproc)]
        runs[name] = logged_losses(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    for step, (a, b) in enumerate(zip(*runs.values())):
        print(f"step {step:2d}: loss {a:.5f} (one process), {b:.5f} (two processes)")
else:
    print("mpi4py or mpiexec is not installed here, so the two-process run is skipped "
          "(pip install -e \".[dist]\" installs both; tests/test_distributed.py runs the same comparison)")

# %% [markdown]
# The losses agree to float32's rounding. What the second process bought is time: on the
# 2-core machine of bench/RESULTS.md (`python bench/ddp.py`, two runs), two processes of one
# BLAS thread each trained 1.9 to 2.0 times the tokens per second of one, and 1.6 to 1.7 times
# those of one process using both cores; the all-reduce took 6 to 12% of each step. Each process
# must keep to its share of the cores: left to itself, NumPy's BLAS starts a thread per core in
# every process, and the README's `mpiexec -n 2 tinyllm train --max-iters 50` took 45 s that way
# instead of 12 (so tinyllm sets each rank's BLAS threads to its share). On GPUs
# (`--device cuda`) the same flat buffer goes to NCCL, NVIDIA's library, which sums it from GPU
# to GPU (over NVLink where the GPUs have it) and never through the host. PyTorch's DDP goes one
# step further: it sends the gradients in buckets while the backward is still computing the
# rest. The arithmetic is the same in every case.
#
# ## Fewer bits: float32, float16, bfloat16
# A float is a sign, an exponent (the power of two) and a fraction (the digits). The three
# formats split their bits differently:

# %%
formats = {"float32": (8, 23), "float16": (5, 10), "bfloat16": (8, 7)}   # exponent bits, fraction bits
fig, ax = plt.subplots(figsize=(8, 2.2))
for row, (name, (e, f)) in enumerate(formats.items()):
    for start, width, colour in ((0, 1, "C3"), (1, e, "C0"), (1 + e, f, "C2")):
        ax.barh(row, width, left=start, color=colour, edgecolor="white")
    ax.text(-0.5, row, name, ha="right", va="center")
ax.set(xlim=(-8, 33), yticks=[], xlabel="bits: sign (red), exponent (blue), fraction (green)")
ax.invert_yaxis()
save_figure(fig, "22_float_formats.png")

has_bfloat16 = importlib.util.find_spec("ml_dtypes") is not None


def finfo(name: str):
    """NumPy's facts about a float format (bfloat16's from ml_dtypes)."""
    if name == "bfloat16":
        import ml_dtypes
        return ml_dtypes.finfo(ml_dtypes.bfloat16)
    return np.finfo(name)


for name in formats:
    if name == "bfloat16" and not has_bfloat16:
        print("bfloat16: needs the ml_dtypes package (pip install ml_dtypes) to show its numbers")
        continue
    info = finfo(name)
    third = np.array(1 / 3, dtype=dtype_of(name)).astype(np.float64)
    print(f"{name:>8}: largest {float(info.max):.3g}, smallest normal {float(info.tiny):.3g}, "
          f"step after 1 {float(info.eps):.3g}; 1/3 is stored as {third:.10f}")

# %% [markdown]
# bfloat16 keeps float32's exponent, so its range, and gives up digits; float16 keeps more
# digits and gives up range: nothing above 65504, nothing below 6e-8 (with the least
# precise, *subnormal* numbers counted). A model's weights and activations fit either.
#
# Digits run out first in sums. Count to 4096 by adding ones, each partial sum rounded to
# the format as it goes:

# %%
for name in ("float16",) + (("bfloat16",) if has_bfloat16 else ()):
    running = np.cumsum(np.ones(4096, dtype=dtype_of(name)), dtype=dtype_of(name))   # one add at a time
    stuck = int(np.argmax(running == running[-1])) + 1
    print(f"{name:>8}: 4096 ones add up to {float(running[-1]):g}; the sum stops growing after {stuck} of them; "
          f"softmax over 4096 equal scores, summed so, gives each {4096 / float(running[-1]):g}x its 1/4096")

# %% [markdown]
# Where the gap between neighbouring numbers of the format grows to 2 (at 2^11 in float16,
# 2^8 in bfloat16: one more than its fraction bits), x + 1 lies halfway between x and x + 2
# and rounds to the even one, x: the sum is stuck. A softmax over 4096 equal scores summed
# that way gives every weight a multiple of its true 1/4096. So mixed precision keeps
# attention's (T, T) arrays in 16 bits but makes softmax's sums in float32
# (tinyllm/backend.py's `sum_dtype`; on a GPU inside the kernels).
#
# The gradients are another matter.
#
# ## A real gradient in float16
# Train the model above for some steps, then look at the gradient of one more batch: what
# share of its entries would round to zero in float16? Then multiply the loss by a scale s
# first (the gradient is multiplied by s too) and ask again, for s up to 2^30: the share
# lost to underflow falls, until the largest entries overflow to inf.

# %%
manual_seed(0)
model = GPT(config)
opt = optim.AdamW(model.parameters(), lr=3e-3)
batches, rng = TokenBatches(ids, config.block_size), np.random.default_rng(0)
for _ in range(10 if FAST else 300):
    train_step(model, opt, batches, 8, rng)
x, y = batches.get_batch("train", 8, rng)
g = gradient(model, x, y)
scales = 2.0 ** np.arange(0, 31)
with np.errstate(over="ignore"):            # the overflow is what is being measured
    lost = [np.mean((np.abs(g) * s).astype(np.float16) == 0) for s in scales]
    overflow = [bool(np.isinf((g * s).astype(np.float16)).any()) for s in scales]
for s, share, inf in zip(scales, lost, overflow):
    if np.log2(s) % 4 == 0 or inf:
        print(f"scale 2^{int(np.log2(s)):2d}: {share:6.2%} of the entries become 0" + (", and some inf" if inf else ""))
        if inf:
            break

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(np.log2(scales), np.array(lost) * 100, marker="o")
first_inf = next((np.log2(s) for s, inf in zip(scales, overflow) if inf), None)
if first_inf is not None:
    ax.axvspan(first_inf, np.log2(scales[-1]), color="C3", alpha=0.2, label="some entries overflow to inf")
    ax.legend()
ax.set(xlabel="log2 of the loss scale", ylabel="% of gradient entries lost to 0 in float16",
       title="A trained model's gradient, in float16")
save_figure(fig, "22_loss_scaling.png")
print(f"largest |g| {np.abs(g).max():.2e}, smallest nonzero |g| {np.abs(g[g != 0]).min():.2e}")

# %% [markdown]
# Unscaled, part of the gradient vanishes in float16; scaled too far, some of it becomes
# inf. `GradScaler` keeps the scale between the two without knowing either in advance: it
# starts high (2^16), halves the scale and skips the step whenever a gradient overflows,
# and doubles it after a long run (2000) of good steps. bfloat16, with float32's range,
# needs none of this.
#
# ## Mixed precision, trained
# `tinyllm train --dtype float16` (or `bfloat16`) multiplies in 16 bits inside every
# Linear layer and in attention, whose (T, T) weights it keeps in 16 bits too (softmax
# sums them in float32), and keeps everything else, the weights first, in float32: a
# small update added to a 16-bit weight would round away. On a CPU 16-bit products are
# slower, not faster (NumPy has no 16-bit BLAS), so here the runs are small; the point is
# that the curves agree.

# %%
small = dict(data=str(corpus), n_layer=1, n_embd=32, n_head=2, block_size=16, batch_size=4, lr=3e-3,
             max_iters=10 if FAST else 150, warmup_iters=5, eval_interval=10 if FAST else 150, eval_iters=4,
             log_interval=1, sample_tokens=0)
curves = {}
for dtype in ("float32", "float16") + (("bfloat16",) if has_bfloat16 else ()):
    history = train(TrainConfig(out=str(work / dtype), dtype=dtype, **small), log=lambda line: None)
    curves[dtype] = history
    print(f"{dtype:>8}: final training loss {history['loss'][-1]:.4f}, validation loss {history['val'][-1]:.4f}")
fig, ax = plt.subplots(figsize=(6, 3.5))
for dtype, history in curves.items():
    ax.plot(history["step"], history["loss"], label=dtype)
ax.set(xlabel="step", ylabel="training loss", title="float32 and mixed precision, the same run")
ax.legend()
save_figure(fig, "22_mixed_precision.png")
print(f"float16 against float32 at the end: {curves['float16']['loss'][-1] / curves['float32']['loss'][-1] - 1:+.2%}")

# %% [markdown]
# ## What you now know
# - Averaging N processes' gradients of N equal shares is the gradient of the whole batch:
#   data parallelism changes the speed, not the arithmetic (to float32's rounding).
# - One all-reduce a step carries the whole gradient between processes; its cost, next to the
#   step's, decides how far more processes help.
# - float16 has the digits and not the range; bfloat16 the range and not the digits. Small
#   gradients vanish in float16 unless the loss is scaled up first, and a dynamic scale finds
#   its own way between underflow and overflow.
# - Mixed precision keeps the master weights in float32 and multiplies in 16 bits; long sums
#   (softmax's) are made in float32.
#
# **Exercises**: none new.
