# %% [markdown]
# # Lesson 09 — Training
#
# **What you will build:** the training loop of `tinyllm/train.py`, written out in
# full on one page: batches of next-token windows, AdamW, a warmup + cosine learning
# rate, gradient clipping, the log line, and the loss curve.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, save_figure
from tinyllm import Tensor, manual_seed, optim
from tinyllm.data import TokenBatches, encode_corpus, load_corpus
from tinyllm.model import GPT, GPTConfig
from tinyllm.nn import Parameter
from tinyllm.tokenizer import CharTokenizer

# %% [markdown]
# ## AdamW in one step
# Plain SGD moves each parameter by lr·g: parameters with small gradients barely
# move. Adam divides each gradient by a running estimate of its own size (√v), so
# every parameter moves by about lr at first, whatever its scale. The first step,
# with the bias corrections, is exactly lr·sign(g). "W" is weight decay applied
# directly to the weights (and in tinyllm only to matrices, not to biases or gains).

# %%
p = Parameter(np.array([[1.0, -2.0], [0.5, 3.0]]))
p.grad = Tensor(np.array([[0.001, -40.0], [2.0, 0.0]]))
opt = optim.AdamW([p], lr=0.1, weight_decay=0.0)
opt.step()
print("after one AdamW step:\n", p.numpy(), "\n(each moved by 0.1 against the sign of its gradient; 0 stays)")

# %% [markdown]
# ## The learning-rate schedule
# Warm up linearly (Adam's estimates are poor in the first steps), then decay along a
# cosine to a tenth: big steps while far from a minimum, small ones to settle in.

# %%
steps = 40 if FAST else 400
lrs = [optim.cosine_lr(s, 1e-3, 1e-4, warmup_steps=steps // 10, decay_steps=steps) for s in range(steps)]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(lrs)
ax.set(xlabel="step", ylabel="learning rate", title="Warmup, then cosine decay")
save_figure(fig, "09_lr_schedule.png")

# %% [markdown]
# ## Gradient clipping
# A rare bad batch can produce a huge gradient and undo hours of training. Clipping
# rescales *all* gradients together so their global norm is at most 1: the direction
# is kept, only the length is capped.

# %%
a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
a.grad, b.grad = Tensor(np.array([30.0, 0.0])), Tensor(np.array([0.0, 40.0]))
norm = optim.clip_grad_norm_([a, b], max_norm=1.0)
print(f"norm before: {float(norm):.1f}; after: a.grad = {a.grad.numpy()}, b.grad = {b.grad.numpy()}")

# %% [markdown]
# ## The loop
# Every step: a random batch of windows (the targets are the inputs shifted by one),
# forward to the loss, zero the old gradients, backward, clip, step. The log line
# reports the loss, the learning rate and the speed; `train.py` adds evaluation on
# held-out text, checkpoints and samples around exactly this loop.

# %%
text = load_corpus("pydoc")
tok = CharTokenizer.train(text)
batches = TokenBatches(encode_corpus(text, tok), block_size=64)
manual_seed(1337)
model = GPT(GPTConfig.from_preset("baby", vocab_size=tok.vocab_size, n_layer=2 if FAST else 4))
opt = optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
rng = np.random.default_rng(1337)
losses = []
for step in range(steps):
    began = time.perf_counter()
    opt.lr = lrs[step]
    x, y = batches.get_batch("train", 12, rng)   # (12, 64) ids and their next tokens
    _, loss = model(x, y)
    opt.zero_grad()
    loss.backward()
    norm = optim.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
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
# near 1.7; `bench/RESULTS.md` shows the 2000-step Shakespeare run.
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
            x, y = batches.get_batch("train", 12, rng)
            _, loss = model(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
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
# - The loop: batch → forward → loss → zero_grad → backward → clip → step → log.
# - The learning rate is the first knob: too small crawls, too big stalls or explodes.
#
# **Exercises**: 9.1 the AdamW step, 9.2 `clip_grad_norm_`, 9.3 `cosine_lr`
# (`tinyllm/optim.py`).
