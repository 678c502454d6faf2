# %% [markdown]
# # Lesson 18 — Scale: loss against size and compute, and what "emerges"
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–18.1 are solved
# (this lesson teaches 18.1); or in this checkout, where every exercise is solved.*
#
# **What you will build:** six GPTs from 3 thousand to 0.8 million parameters (outside
# the embeddings), each
# trained on pydoc with two token budgets; their validation loss against size and against
# compute on log-log axes, with a fitted power law beside the published exponents; and one
# skill, closing a bracket, measured across the sizes two ways, to see what "appears with
# scale" means and why the claim is argued over.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure
from tinyllm import manual_seed, optim
from tinyllm.data import TokenBatches, encode_corpus, load_corpus
from tinyllm.model import GPT, GPTConfig
from tinyllm.scaling import fit_power_law
from tinyllm.tokenizer import CharTokenizer
from tinyllm.metrics import flops_per_token
from tinyllm.train import estimate_loss, train_step

exercises_before(18)
text = load_corpus("pydoc")
tok = CharTokenizer.train(text)
batches = TokenBatches(encode_corpus(text, tok), block_size=64)

# %% [markdown]
# ## Six sizes, two budgets
# Widths from 16 to 128 and one to four blocks, all with 4 heads and contexts of 64
# characters; each trained for a short and a longer budget of steps (12 windows of 64
# characters a step) with the same schedule. Size is counted as Kaplan et al. count it:
# parameters outside the embeddings. Compute is FLOPs, ≈ 6 per parameter per token
# trained on (`flops_per_token`, lesson 12).

# %%
SHAPES = [(1, 16), (1, 32), (2, 48), (2, 64), (3, 96), (4, 128)]     # (n_layer, n_embd)
if FAST:
    SHAPES = SHAPES[:3]
BUDGETS = (10, 30) if FAST else (400, 1200)
runs = []
began = time.perf_counter()
for n_layer, n_embd in SHAPES:
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=n_layer, n_head=4, n_embd=n_embd)
    for steps in BUDGETS:
        manual_seed(0)
        model = GPT(config)
        opt = optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.99), weight_decay=0.1)
        rng = np.random.default_rng(1)
        for step in range(steps):
            opt.lr = optim.cosine_lr(step, 2e-3, 2e-4, warmup_steps=steps // 10, decay_steps=steps)
            train_step(model, opt, batches, 12, rng)
        total = model.num_parameters()
        size = total - model.wte.weight.size - model.wpe.weight.size
        tokens = steps * 12 * 64
        val = estimate_loss(model, batches, 12, 5 if FAST else 40, np.random.default_rng(2))["val"]
        runs.append({"shape": (n_layer, n_embd), "steps": steps, "size": size, "model": model,
                     "compute": flops_per_token(config, total) * tokens, "val": val})
        print(f"{n_layer} × {n_embd:3}: {size:>8,} parameters (+ embeddings), {steps:4} steps, "
              f"{runs[-1]['compute']:.1e} FLOPs: val {val:.3f}")
print(f"({time.perf_counter() - began:.0f} s for all {len(runs)} runs)")

# %% [markdown]
# ## A power law
# On log-log axes a power law y = a·x^(−α) is a straight line (exercise 18.1 fits one by
# least squares on the logarithms). The longer budget's losses against size:

# %%
longest = [run for run in runs if run["steps"] == BUDGETS[-1]]
a, alpha = fit_power_law([run["size"] for run in longest], [run["val"] for run in longest])
print(f"fitted: val loss ≈ {a:.2f} · N^(−{alpha:.3f})")
print("published: Kaplan et al. 2020, L(N) ∝ N^(−0.076) (no floor); Hoffmann et al. 2022, "
      "L = 1.69 + 406.4/N^0.34 + 410.7/D^0.28 (a floor E = 1.69, then a power)")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for steps, marker in zip(BUDGETS, "os"):
    chosen = [run for run in runs if run["steps"] == steps]
    axes[0].plot([r["size"] for r in chosen], [r["val"] for r in chosen], marker, label=f"{steps} steps")
    axes[1].plot([r["compute"] for r in chosen], [r["val"] for r in chosen], marker + "-", label=f"{steps} steps")
sizes = np.array([run["size"] for run in longest], dtype=float)
axes[0].plot(sizes, a * sizes ** -alpha, "k--", lw=1, label=f"{a:.2f}·N^(−{alpha:.3f})")
axes[0].set(xscale="log", yscale="log", xlabel="parameters outside the embeddings, N",
            ylabel="validation loss (nats/char)", title="Loss against size")
axes[1].set(xscale="log", yscale="log", xlabel="training compute (FLOPs)", title="Loss against compute")
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "18_scaling.png")

# %% [markdown]
# Our exponent is printed beside Kaplan's, and how close it lands is partly luck: these
# models are tiny and undertrained, below most of the sizes Kaplan et al. fitted (768 to
# 1.5 billion parameters outside the embeddings), and a character model on one small
# corpus nears its floor (the text's own unpredictability, Hoffmann's E) early, which a
# fit without a floor cannot follow for long. What carries over is the shape: steady
# gains per *factor* of size, not per added parameter.
#
# Against compute, the short budget leaves the large models undertrained: in the table, a
# smaller model trained longer can beat a larger one on less compute (2 × 64 at 1200 steps
# against 4 × 128 at 400: compare their FLOPs and losses). For a given compute there is a
# best size: Hoffmann et al.'s "compute-optimal" models are trained on about 20 tokens
# per parameter.
#
# ## A skill across sizes: closing a bracket
# Held-out positions where the next character is a `)` closing a `(` opened in the 63
# characters before it. Two measures of the same skill: how often the model's likeliest
# next character is `)` (right or wrong: a threshold), and the probability it gives `)`
# (a continuous score).

# %%
val_text = tok.decode(np.asarray(batches.splits["val"]).tolist())
positions, open_at = [], []
for i, ch in enumerate(val_text):
    if ch == "(":
        open_at.append(i)
    elif ch == ")" and open_at:
        if i - open_at.pop() < 64 and i >= 64:
            positions.append(i)
positions = positions[: 100 if FAST else 600]
contexts = np.array([tok.encode(val_text[i - 64:i]) for i in positions])
skill = []
for run in longest:
    logits = run["model"].eval()(contexts)[0].numpy()[:, -1]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    close = tok.encode(")")[0]
    skill.append(((logits.argmax(1) == close).mean(), probs[:, close].mean()))
    print(f"{run['size']:>8,} parameters: ')' likeliest {skill[-1][0]:6.1%} of the time, "
          f"mean probability of ')' {skill[-1][1]:.3f}")

fig, ax = plt.subplots(figsize=(5.5, 3.6))
ax.plot(sizes, [s[0] for s in skill], "o-", label="')' is the likeliest character (accuracy)")
ax.plot(sizes, [s[1] for s in skill], "s--", label="probability given to ')'")
ax.set(xscale="log", xlabel="parameters outside the embeddings", ylim=(0, 1),
       title=f"Closing a bracket: {len(positions)} held-out places")
ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "18_brackets.png")

# %% [markdown]
# Wei et al. (2022) called an ability *emergent* when it is absent in small models and
# present in large ones, appearing sharply at some scale. Schaeffer et al. (2023) argued
# that many such jumps come from the measure: an all-or-nothing score (exact match, or
# "is the right answer the likeliest") can leap while the probability underneath rises
# smoothly. The two lines above are the two kinds of measure on one skill; compare how
# each moves with size. Whether large models gain abilities that no smooth trend
# foretells is still argued over; what this shows is that the choice of measure alone can
# make a steady gain look like a jump, or hide one.
#
# ## What you now know
# - Loss falls as a power of size and of compute: a straight line on log-log axes,
#   fitted by least squares on the logarithms.
# - Published exponents come from far larger models; tiny ones show the shape, not the numbers.
# - For a fixed compute budget there is a best size: more parameters or more tokens.
# - "Emergence" depends on the measure: thresholded scores jump where probabilities climb.
#
# **Exercise**: 18.1 `fit_power_law` (`tinyllm/scaling.py`).
