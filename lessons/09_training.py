# %% [markdown]
# # Lesson 09 — Training
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–9.6 are solved
# (this lesson teaches 9.1–9.6); or in this checkout, where every exercise is solved.*
#
# **What you will build:** the training loop of `tinyllm/train.py`, on one page:
# batches of next-token windows, AdamW, a warmup + cosine learning rate, gradient
# clipping, one training step, the log line and the loss curve; then a look at where
# the trained model's attention heads look.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure
from tinyllm import Tensor, manual_seed, optim
from tinyllm.data import TokenBatches, encode_corpus, load_corpus
from tinyllm.model import GPT, GPTConfig
from tinyllm.nn import Parameter
from tinyllm.plots import plot_attention_maps
from tinyllm.tokenizer import CharTokenizer
from tinyllm.train import train_step

exercises_before(9)

# %% [markdown]
# ## AdamW in one step
# Plain SGD moves each parameter by lr·g: parameters with small gradients barely
# move. Adam keeps two running means per parameter, of the gradient (m) and of its
# square (v), and steps by lr·m̂/(√v̂ + ε), so every parameter moves by about lr at
# first, whatever its scale (exercise 9.1):
#
#     m = β1·m + (1 − β1)·g      v = β2·v + (1 − β2)·g²      (both start at 0)
#     m̂ = m / (1 − β1^t)        v̂ = v / (1 − β2^t)          (bias corrections: undo the start at 0)
#     p −= lr·m̂ / (√v̂ + ε)
#
# At the first step m̂ = g and v̂ = g², so the step is lr·g/(|g| + ε): lr·sign(g) up to
# a relative ε/|g| (1e-5 for g = 0.001 with ε = 1e-8), and 0 where g = 0. "W" is weight
# decay applied directly to the weights, p −= lr·wd·p (in tinyllm only to matrices, not
# to biases or gains).

# %%
p = Parameter(np.array([[1.0, -2.0], [0.5, 3.0]]))
p.grad = Tensor(np.array([[0.001, -40.0], [2.0, 0.0]]))
opt = optim.AdamW([p], lr=0.1, weight_decay=0.0)
opt.step()
print("after one AdamW step:\n", p.numpy(), "\n(each moved by 0.1 against the sign of its gradient, the one with")
print(" g = 0.001 by 0.1 × 0.001/(0.001 + 1e-8); g = 0 stays)")

# %% [markdown]
# ## The learning-rate schedule
# Warm up linearly (Adam's estimates are poor in the first steps), then decay along a
# cosine to a tenth: big steps while far from a minimum, small ones to settle in
# (exercise 9.3). After w warmup steps, at progress f from 0 to 1 through the decay,
# lr = min_lr + ½(1 + cos πf)(max_lr − min_lr).

# %%
steps = 40 if FAST else 1500
lrs = [optim.cosine_lr(s, 1e-3, 1e-4, warmup_steps=steps // 10, decay_steps=steps) for s in range(steps)]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(lrs)
ax.set(xlabel="step", ylabel="learning rate", title="Warmup, then cosine decay")
save_figure(fig, "09_lr_schedule.png")

# %% [markdown]
# ## Gradient clipping
# A rare bad batch can produce a huge gradient and undo hours of training. Clipping
# rescales *all* gradients together so their global norm, √(Σ g²) over every parameter,
# is at most 1: the direction is kept, only the length is capped (exercise 9.2).

# %%
a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
a.grad, b.grad = Tensor(np.array([30.0, 0.0])), Tensor(np.array([0.0, 40.0]))
norm = optim.clip_grad_norm_([a, b], max_norm=1.0)
print(f"norm before: {float(norm):.1f}; after: a.grad = {a.grad.numpy()}, b.grad = {b.grad.numpy()}")

# %% [markdown]
# ## Batches: next-token windows
# Training text is one long array of ids. A batch is B windows of T+1 consecutive ids
# at random places; the input x is each window but its last id, the target y each window
# but its first, so y[t] is the token that follows x[t] (exercise 9.4). A GPT predicts
# at every position at once: one window of 64 characters is 64 predictions.

# %%
text = load_corpus("pydoc")
tok = CharTokenizer.train(text)
batches = TokenBatches(encode_corpus(text, tok), block_size=64)
x, y = batches.get_batch("train", 2, np.random.default_rng(0))
print(f"x {x.shape}: {tok.decode(x[0, :24])!r}...")
print(f"y {y.shape}: {tok.decode(y[0, :24])!r}...  (the same text, one character on)")

# %% [markdown]
# ## One training step, and the loop
# `train_step` (exercise 9.6) is what every step does: forget the last gradients
# (`zero_grad`), run the batch forward to the loss and backward to the gradients
# (`accumulate_gradients`, exercise 9.5: it can split a batch too big for memory into
# micro-batches and add up their gradients), clip, and let the optimizer step. (One more
# line sits before the clip, `world.average_gradients`: with one process it does nothing;
# lesson 22 runs several, which average their gradients there.) The loop
# around it sets the learning rate of this step and logs: the loss, the learning rate,
# the gradient norm and the speed. `tinyllm/train.py` adds evaluation on held-out text,
# checkpoints and samples around exactly this loop.

# %%
manual_seed(1337)
model = GPT(GPTConfig.from_preset("baby", vocab_size=tok.vocab_size, n_layer=2 if FAST else 4))
opt = optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
rng = np.random.default_rng(1337)
losses = []
for step in range(steps):
    began = time.perf_counter()
    opt.lr = lrs[step]
    loss, norm = train_step(model, opt, batches, 12, rng, grad_clip=1.0)   # 12 windows of 64
    losses.append(loss.item())
    if step % (steps // 8) == 0 or step == steps - 1:
        ms = (time.perf_counter() - began) * 1e3
        print(f"step {step:4d} | loss {losses[-1]:.3f} | lr {opt.lr:.1e} | grad norm {float(norm):.2f} | {ms:.0f} ms")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(losses, alpha=0.4, label="batch loss")
smooth = np.convolve(losses, np.ones(20) / 20, mode="valid")
ax.plot(np.arange(len(smooth)) + 19, smooth, label="mean of 20")
ax.axhline(np.log(tok.vocab_size), ls="--", c="gray", label="ln V (guessing)")
ax.set(xlabel="step", ylabel="loss (nats/char)", title="Training a baby GPT on pydoc")
ax.legend()
save_figure(fig, "09_loss_curve.png")

# %% [markdown]
# The loss drops fast from ln V (the model learns which characters are common), then
# slower (pairs, then words). `tinyllm train` runs this loop for 1000 steps and ends
# near 1.7 (validation loss 1.698, measured in `bench/RESULTS.md`, session 10), which
# also has the 2000-step Shakespeare run.
#
# ## Where the trained model looks
# `model.attention_maps(ids)` returns the attention weights of every layer (kept only
# when asked for), and `tinyllm.plots.plot_attention_maps` draws them. Each small
# picture is one head: row = the position reading, column = the position read.
# Everything above the diagonal is 0: the causal mask. (`examples/attention.py` draws
# them for your own checkpoint and prompt, with the tokens on the axes.) A head that
# reads the previous character shows a bright line just below the diagonal. Below, for
# each head, the mean weight a position puts on the character just before it, beside
# what a head that spreads its weight evenly over the past would put there.

# %%
model.eval()
sentence = "The for statement is used to iterate over the elements of a sequence"[:64]
maps = model.attention_maps(np.array([tok.encode(sentence)]))     # n_layer arrays of (1, n_head, T, T)
save_figure(plot_attention_maps(maps, title=f"Attention on {sentence[:40]!r}..."), "09_attention_maps.png")
T = maps[0].shape[-1]
print(f"spread evenly, position t would put 1/(t+1) there: {np.mean([1 / (t + 1) for t in range(1, T)]):.2f} on average")
for layer, weights in enumerate(maps):
    previous = np.diagonal(weights[0], offset=-1, axis1=-2, axis2=-1).mean(-1)   # (n_head,)
    print(f"layer {layer}: weight on the previous character, per head:", " ".join(f"{w:.2f}" for w in previous))
#
# ## How big a step?
# The learning rate is the one setting to try first. Here the same model starts from
# the same weights and sees the same batches at four learning rates (constant, no
# clipping). Too small: it learns, slowly. Too big: Adam's steps of about lr per
# parameter overshoot, and the loss stalls high or blows up. `tinyllm train` stops a
# run whose loss becomes nan or inf, before the checkpoint is overwritten.

# %%
sweep_steps = 20 if FAST else 100
fig, ax = plt.subplots(figsize=(5, 3.5))
top = 2 * np.log(tok.vocab_size)                    # twice the loss of guessing
for lr in (1e-4, 1e-3, 1e-2, 1.0):
    manual_seed(1337)
    model = GPT(GPTConfig.from_preset("baby", vocab_size=tok.vocab_size, n_layer=2))
    opt = optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(0)                  # the same batches for every learning rate
    curve = []
    with np.errstate(all="ignore"):                 # lr = 1 overflows on its way up
        for step in range(sweep_steps):
            loss, _ = train_step(model, opt, batches, 12, rng, grad_clip=0)   # 0: no clipping
            curve.append(loss.item())
    print(f"lr {lr:g}: loss {curve[0]:.2f} -> {np.mean(curve[-10:]):.2f} (mean of the last 10 steps)")
    off_the_plot = f" (up to {max(curve):.0f})" if max(curve) > top else ""
    ax.plot(curve, label=f"lr {lr:g}{off_the_plot}")
ax.set(xlabel="step", ylabel="loss (nats/char)", ylim=(0, top),
       title="Four learning rates, the same start")
ax.legend()
save_figure(fig, "09_learning_rates.png")

# %% [markdown]
# ## What you now know
# - AdamW normalises each gradient by its running size; decoupled decay shrinks matrices.
# - Warmup then cosine decay; clipping caps the global gradient norm.
# - A batch is random windows; the targets are the inputs shifted by one.
# - The loop: batch → forward → loss → zero_grad → backward → clip → step → log.
# - The learning rate is the first knob: too small crawls, too big stalls or explodes.
#
# **Exercises**: in `tinyllm/optim.py`, 9.1 the AdamW step, 9.2 `clip_grad_norm_`,
# 9.3 `cosine_lr`; 9.4 `TokenBatches.get_batch` (`tinyllm/data.py`); in `tinyllm/train.py`,
# 9.5 `accumulate_gradients` and 9.6 `train_step`.
