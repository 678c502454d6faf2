# %% [markdown]
# # Lesson 15 — Training diagnostics: looking inside a run
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–15.2 are solved
# (this lesson teaches 15.1–15.2); or in this checkout, where every exercise is solved.*
#
# **What you will build:** the checks that tell a healthy training run from a sick one
# before it has wasted an afternoon, as makemore does for its MLP: the loss at
# initialisation and what a too-large init does to it; what every layer's GELU is given
# and what gradient every layer gets, drawn as histograms; the update-to-data ratio of
# every weight matrix over training; and a model that memorises a tiny corpus, with and
# without dropout.
#
# The numbers come from `tinyllm/diagnostics.py`: `activations` keeps what each block's
# GELU saw and what each block handed on (through forward hooks, as in PyTorch),
# `gradient_statistics` sums up each weight matrix's gradient, and `update_to_data_ratios`
# compares each step's change of a matrix with the matrix itself.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure
from tinyllm import manual_seed, optim
from tinyllm.data import TokenBatches, encode_corpus, load_corpus
from tinyllm.diagnostics import (GELU_FLAT_BELOW, activations, describe, gradient_statistics, parameter_snapshot,
                                 update_to_data_ratios)
from tinyllm.model import GPT, GPTConfig
from tinyllm.tokenizer import CharTokenizer
from tinyllm.train import estimate_loss, train_step

exercises_before(15)
text = load_corpus("pydoc")
tok = CharTokenizer.train(text)
V = tok.vocab_size
batches = TokenBatches(encode_corpus(text, tok), block_size=64)
config = GPTConfig.from_preset("baby", vocab_size=V, n_layer=2 if FAST else 4)

# %% [markdown]
# ## The loss at initialisation
# A fresh model knows nothing, so it should say so: every logit near 0, every next
# character equally likely, and a loss of ln V. tinyllm draws its weights with a standard
# deviation of 0.02 (GPT-2's), which gives nearly that (the first line below). Draw every
# weight matrix with a standard deviation of 1 instead, and the logits start large and
# random: the model is confidently wrong, and its loss starts far above ln V.

# %%
def make_model(std: float | None = None, dropout: float = 0.0) -> GPT:
    """The baby GPT, seeded; with ``std``, every weight matrix drawn again at that spread."""
    manual_seed(0)
    model = GPT(GPTConfig(**{**config.to_dict(), "dropout": dropout}))
    if std is not None:
        rng = np.random.default_rng(0)
        for name, p in model.named_parameters():
            if p.ndim == 2:                                  # LayerNorms keep their 1s and 0s
                p.data = (rng.standard_normal(p.shape) * std).astype(np.float32)
    return model


x, y = batches.get_batch("val", 32, np.random.default_rng(0))
for label, std in (("std 0.02 (GPT-2's)", None), ("std 1", 1.0)):
    print(f"weights drawn at {label:18}: loss at init {make_model(std)(x, y)[1].item():6.2f}   (ln V = {math.log(V):.2f})")

# %% [markdown]
# ## Three runs, watched
# The same baby GPT trained for the same steps on the same batches three ways: GPT-2's
# init at lr 1e-3 (lesson 09's run), the std-1 init at lr 1e-3, and GPT-2's init at a
# learning rate ten times higher. At every step we keep the loss and, for every weight
# matrix, the update-to-data ratio: the standard deviation of the step's change over
# that of the weights (exercise 15.2), a thousandth being the rule of thumb.

# %%
steps = 20 if FAST else 300


def run(model: GPT, lr: float) -> tuple[list[float], dict[str, list[float]]]:
    """``steps`` AdamW steps at a constant ``lr``: the losses, and every matrix's update-to-data ratios."""
    opt = optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(1)                          # the same batches for every run
    losses, ratios = [], {}
    for _ in range(steps):
        before = parameter_snapshot(model)
        loss, _ = train_step(model, opt, batches, 12, rng)
        losses.append(loss.item())
        for name, ratio in update_to_data_ratios(model, before).items():
            ratios.setdefault(name, []).append(ratio)
    return losses, ratios


runs = {"GPT-2's init, lr 1e-3": (make_model(), 1e-3), "std-1 init, lr 1e-3": (make_model(1.0), 1e-3),
        "GPT-2's init, lr 1e-2": (make_model(), 1e-2)}
results = {label: run(model, lr) for label, (model, lr) in runs.items()}
for label, (losses, _) in results.items():
    print(f"{label}: loss {losses[0]:.2f} at the first step, {np.mean(losses[-20:]):.2f} over the last 20")

fig, ax = plt.subplots(figsize=(5.5, 3.6))
for label, (losses, _) in results.items():
    ax.plot(losses, label=label, lw=1)
ax.axhline(math.log(V), ls="--", c="gray", label="ln V")
ax.set(xlabel="step", ylabel="loss (nats/char)", yscale="log", title="The loss at init, and after")
ax.legend(fontsize=8)
save_figure(fig, "15_init.png")

# %% [markdown]
# The std-1 model first has to unlearn its confidence: its early steps go into shrinking
# the logits (the steep start of the "hockey stick"), steps the well-started model spends
# learning the text. Its loss stays above the other's to the end of this run.
#
# ## What each layer's GELU is given, and what gradient each layer gets
# GELU(x) = x·Φ(x) is flat for x below about −3: its slope there is under 0.012, so a
# unit whose input lands there passes almost no gradient back (a saturated tanh is the
# same trouble). Each histogram below is one layer: top, the inputs of its GELU; bottom,
# the gradient of its `c_fc` weight, for the trained model from GPT-2's init and for
# the std-1 model before training.

# %%
ids = x[:8]
models = {"GPT-2's init, trained": runs["GPT-2's init, lr 1e-3"][0], "std-1 init, untrained": make_model(1.0)}
fig, axes = plt.subplots(2, 2, figsize=(9, 5.5))
for column, (label, model) in enumerate(models.items()):
    acts = activations(model, ids)
    model.zero_grad()
    model(x, y)[1].backward()
    grads = gradient_statistics(model)
    print(label)
    for i in range(config.n_layer):
        gelu_input = acts[f"h.{i}.mlp.gelu"]
        s, g = describe(gelu_input, GELU_FLAT_BELOW), grads[f"h.{i}.mlp.c_fc.weight"]
        print(f"  layer {i}: GELU input mean {s.mean:+6.2f} std {s.std:6.2f}, {s.flat:6.1%} below −3 | "
              f"c_fc gradient std {g.std:.2e}")
        values, edges = np.histogram(gelu_input, bins=80)
        axes[0, column].plot((edges[:-1] + edges[1:]) / 2, values / values.sum(), label=f"layer {i}")
        grad = model.h[i].mlp.c_fc.weight.grad.numpy()
        values, edges = np.histogram(grad, bins=80)
        axes[1, column].plot((edges[:-1] + edges[1:]) / 2, values / values.sum(), label=f"layer {i}")
    axes[0, column].axvline(GELU_FLAT_BELOW, ls=":", c="gray")
    axes[0, column].set(title=f"{label}: GELU inputs", yscale="log")
    axes[1, column].set(title=f"{label}: c_fc weight gradients", yscale="log")
    axes[0, column].legend(fontsize=7)
fig.tight_layout()
save_figure(fig, "15_activations.png")

# %% [markdown]
# Read the printed numbers beside the picture. With std-1 weights, each GELU input sums
# 128 products of order 1 after a LayerNorm, so its spread is about √128 ≈ 11 instead of
# order 1, and a large share of the units sit on GELU's flat side; the gradients of
# those units are near zero, and the layers learn unevenly. A network that trains well
# keeps its activations of order 1 from the first layer to the last: that is what the
# small init, the 1/√(2·n_layer) scaling of each residual branch's last layer, and
# LayerNorm are for.
#
# ## The update-to-data ratio
# log10 of each weight matrix's ratio at every step, for the two runs from GPT-2's init,
# with the rule of thumb's −3 (a thousandth) drawn across. The rule comes from plain SGD
# on makemore's MLP; read the printed numbers for what Adam does here.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, label in zip(axes, ("GPT-2's init, lr 1e-3", "GPT-2's init, lr 1e-2")):
    ratios = results[label][1]
    for name, values in ratios.items():
        ax.plot(np.log10(values), lw=0.8, label=name if ax is axes[0] else None)
    ax.axhline(-3, ls="--", c="k")
    ax.set(title=label, xlabel="step")
    first, last = (np.median([np.median(v[part]) for v in ratios.values()])
                   for part in (slice(0, steps // 10), slice(steps // 2, None)))
    print(f"{label}: the matrices' median ratio {first:.1e} over the first {steps // 10} steps, "
          f"{last:.1e} over the last {steps - steps // 2}")
axes[0].set_ylabel("log10 update-to-data ratio")
fig.legend(loc="lower center", ncol=4, fontsize=6, frameon=False)
fig.tight_layout(rect=(0, 0.12, 1, 1))
save_figure(fig, "15_update_ratios.png")

# %% [markdown]
# Adam moves every weight by up to about lr per step whatever its gradient (lesson 09),
# and these weights have a spread of a few hundredths, so at lr 1e-3 the ratios sit
# around a hundredth (the printed medians): above the SGD rule of thumb, in a run that
# trains well. At lr 1e-2 they are higher, and the loss suffers (printed earlier). The
# ratio is relative to the weights, which the steps themselves change, so it is a
# number to watch beside the loss from the first steps, not a target to hit.
#
# ## Train and validation: memorising a tiny corpus
# The held-out loss is the one that matters: it says whether the model learned the
# language or the training text. Give the 0.8M-parameter model only the first 10,000
# characters of pydoc (9,000 to train on, the rest held out) and a brisk learning rate,
# 2e-3, and it memorises them: the training loss keeps falling while the validation loss
# turns back up.
#
# *Dropout* (exercise 15.1) is one remedy: in training, each activation it is applied to
# is zeroed with probability p and the rest multiplied by 1/(1 − p), so every value keeps
# its expected size, (1 − p)·x/(1 − p) = x; at evaluation nothing is dropped. No unit can
# rely on any other being there, which makes memorising harder. The backward drops the
# same elements, so the draw is made once and used twice.

# %%
small = TokenBatches(encode_corpus(text[:10_000], tok), block_size=64)
overfit_steps, every = (20, 10) if FAST else (800, 100)
fig, ax = plt.subplots(figsize=(5.5, 3.6))
for dropout, style in ((0.0, "-"), (0.2, "--")):
    model = make_model(dropout=dropout)
    opt = optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(2)
    curve = {"step": [], "train": [], "val": []}
    for step in range(overfit_steps + 1):
        if step % every == 0:
            losses = estimate_loss(model, small, 12, 5, np.random.default_rng(3))   # dropout off while measuring
            for split in ("train", "val"):
                curve[split].append(losses[split])
            curve["step"].append(step)
        if step < overfit_steps:
            train_step(model, opt, small, 12, rng)
    best = int(np.argmin(curve["val"]))
    print(f"dropout {dropout}: train {curve['train'][-1]:.2f}, val {curve['val'][-1]:.2f} at the end; "
          f"the best val, {curve['val'][best]:.2f}, at step {curve['step'][best]}")
    for split, colour in (("train", "C0"), ("val", "C3")):
        ax.plot(curve["step"], curve[split], style, c=colour, label=f"{split}, dropout {dropout}")
ax.set(xlabel="step", ylabel="loss (nats/char)", title="0.8M parameters, 9,000 characters")
ax.legend(fontsize=8)
save_figure(fig, "15_overfitting.png")

# %% [markdown]
# Where the validation curve turns up, more steps only memorise: the time to stop, or
# to find more text. Dropout slows the memorising: its training loss falls more slowly,
# and its validation loss stays lower at the end (the printed numbers).
#
# ## What you now know
# - The loss at init should be ln V; far above it means the model starts confidently wrong.
# - Activations of order 1, few units on a nonlinearity's flat side, gradients of similar
#   size in every layer: a network that can learn everywhere.
# - Update-to-data ratios near 1e-3 are a sane step size; the learning rate moves them.
# - Training loss falling while validation loss rises is memorising; dropout and more
#   text are the remedies.
#
# **Exercises**: 15.1 dropout's draw (`_dropout_draw`, `tinyllm/functional.py`),
# 15.2 `update_to_data_ratios` (`tinyllm/diagnostics.py`).
