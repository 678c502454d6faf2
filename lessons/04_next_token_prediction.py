# %% [markdown]
# # Lesson 04 — Next-token prediction and cross-entropy
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–4.3 are solved
# (this lesson teaches 4.1–4.3); or in this checkout, where every exercise is solved.*
#
# **What you will build:** the simplest language model there is (a table of which
# character follows which), the loss that measures any language model, the same
# model as a tiny neural network trained by gradient descent, and the fused
# cross-entropy op whose backward you derive here and write in exercises 4.1–4.3.
#
# A language model does one thing: given the text so far, it gives a probability to
# every possible next token. Everything else (chat, translation, code) is built by
# asking that question again and again.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure
from tinyllm import Tensor, functional as F, optim
from tinyllm.data import load_corpus
from tinyllm.tokenizer import CharTokenizer

exercises_before(4)

# %% [markdown]
# ## A bigram model: count, then normalise
# Take Python's documentation (the `pydoc` corpus that ships with Python), one id per
# character. Count how often each character follows each other one; each row of the
# count table, divided by its sum, is a probability distribution over the next character.
# Those raw frequencies are the *maximum-likelihood* table: of all tables, the one that
# gives the training text the highest probability.

# %%
text = load_corpus("pydoc")
if FAST:
    text = text[:50_000]
tok = CharTokenizer.train(text)
ids = np.array(tok.encode(text))
split = int(0.9 * len(ids))
train_ids, val_ids = ids[:split], ids[split:]
V = tok.vocab_size
counts = np.zeros((V, V))
np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1)    # counts[a, b]: how often b followed a
max_likelihood = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
after_q = max_likelihood[tok.encode("q")[0]]
print(f"{V} characters. After 'q' the likeliest next characters:",
      ", ".join(f"{tok.decode([i])!r} {after_q[i]:.0%}" for i in np.argsort(-after_q)[:4]))

# %% [markdown]
# ## The loss: average surprise
# How good is a model? Look at held-out text and ask how much probability it gave to
# each character that really came next. The *negative log-likelihood*, averaged over
# positions, is the **cross-entropy loss**: 0 if the model was always certain and
# right, large when it was surprised. A model that knows nothing spreads probability
# evenly, 1/V each, and scores exactly ln V.
#
# The maximum-likelihood table has a flaw: a pair it never saw gets probability 0, and
# one such pair in the held-out text makes the loss infinite. Adding 1 to every count
# (*smoothing*) gives every pair some probability. The smoothed table is no longer the
# maximum-likelihood one: it trades a little fit to the training text for never being
# infinitely surprised.

# %%
held_out_pairs = (val_ids[:-1], val_ids[1:])
unseen = int((counts[held_out_pairs] == 0).sum())
with np.errstate(divide="ignore"):
    print(f"maximum-likelihood table: {-np.log(max_likelihood[held_out_pairs]).mean():.3f} nats per character "
          f"on validation text ({unseen} of its {len(val_ids) - 1:,} pairs never occur in training)")
smoothed = (counts + 1) / (counts + 1).sum(axis=1, keepdims=True)
nll = -np.log(smoothed[held_out_pairs]).mean()
print(f"uniform guess:            ln V = {math.log(V):.3f} nats per character")
print(f"table with +1 smoothing:  {nll:.3f} nats per character on validation text")

# %% [markdown]
# ## The same model as a neural network
# Replace the count table by a table of learned numbers, *logits*, W of shape (V, V).
# Multiplying a one-hot row (1 at the character's id, 0 elsewhere) by W picks out that
# character's row: the scores of every next character. `F.cross_entropy` turns logits
# into probabilities (softmax) and takes the mean negative log-likelihood, exactly the
# number above. Its gradient trains the table, with the SGD of lesson 03. W starts at 0,
# so the model starts uniform, and its loss at ln V: a check worth doing on any new model.

# %%
W = Tensor(np.zeros((V, V), np.float32), requires_grad=True)
one_hot = np.eye(V, dtype=np.float32)
opt = optim.SGD([W], lr=10.0, momentum=0.9)
rng = np.random.default_rng(0)
steps = 30 if FAST else 300
curve = []
for step in range(steps + 1):
    batch = rng.integers(0, len(train_ids) - 1, 4096)
    logits = Tensor(one_hot[train_ids[batch]]) @ W          # (4096, V) @ (V, V): row x of W per example
    loss = F.cross_entropy(logits, train_ids[batch + 1])
    opt.zero_grad()
    loss.backward()
    opt.step()
    curve.append(loss.item())
    if step % (steps // 3) == 0:
        print(f"step {step:4d}  loss {loss.item():.3f}")
val_loss = F.cross_entropy(Tensor(one_hot[val_ids[:-1]]) @ W, val_ids[1:]).item()
print(f"neural bigram: {val_loss:.3f} on validation (the smoothed table: {nll:.3f})")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(curve, label="neural bigram, batch loss")
ax.axhline(math.log(V), ls="--", c="gray", label="ln V (uniform guess)")
train_nll = -np.log(smoothed[train_ids[:-1], train_ids[1:]]).mean()   # what the batch loss heads for
ax.axhline(train_nll, ls=":", c="k", label=f"counted table on the training text, {train_nll:.2f}")
ax.set(xlabel="SGD step", ylabel="loss (nats/char)", title="Learning the bigram table by gradient descent")
ax.legend()
save_figure(fig, "04_bigram.png")

# %% [markdown]
# Gradient descent heads for the same answer as counting: the table that makes the
# training text likeliest. It never reaches probability 0 (a logit would have to reach
# −∞), so it needs no smoothing to face the held-out text. The network's advantage
# comes when the table is replaced by something that reads *more* than one character
# back: lesson 06 reads eight, and a GPT reads hundreds.
#
# ## Cross-entropy as one op, and its gradient derived
# Lesson 03 built cross-entropy from `exp`, `sum`, `log` and a one-hot product, and
# autograd went back through each of them. `F.cross_entropy` is one op whose backward is
# worked out on paper, and the result is short. For one row of logits z with target t,
# write p = softmax(z), p_k = e^{z_k} / Σ_j e^{z_j}.
#
# **log_softmax** (exercises 4.1, 4.2): y_i = z_i − log Σ_j e^{z_j}. Computed as
# (z − m) − log Σ_j e^{z_j − m} with m the row's max: the same number (the m's cancel),
# but no e^z can overflow. Its derivative: ∂y_i/∂z_k = δ_ik − e^{z_k}/Σ_j e^{z_j} = δ_ik − p_k,
# so with g_i = dL/dy_i,
#
#     dL/dz_k = Σ_i g_i (δ_ik − p_k) = g_k − p_k · Σ_i g_i        dz = g − softmax(z) · Σg
#
# **cross-entropy** (exercise 4.3): loss = −y_t = −z_t + log Σ_j e^{z_j}. By the same
# derivative, ∂loss/∂z_k = p_k − δ_kt:
#
#     dz = softmax(z) − onehot(t)
#
# The model's probabilities minus the truth: every wrong class is pushed down by as much
# probability as it got, the right one pulled up by what it lacked. The mean over N rows
# divides by N; a row whose target is `ignore_index` counts for nothing (gradient 0).
# The fused op keeps only p from its forward for this.

# %%
rng = np.random.default_rng(1)
z, t = rng.standard_normal((5, V)), rng.integers(0, V, 5)
fused = Tensor(z, dtype=np.float64, requires_grad=True)
F.cross_entropy(fused, t).backward()
composed = Tensor(z, dtype=np.float64, requires_grad=True)
(-(F.log_softmax(composed) * np.eye(V)[t]).sum() / 5).backward()   # through log_softmax's backward
p = np.exp(z - z.max(1, keepdims=True))
p /= p.sum(1, keepdims=True)
by_hand = (p - np.eye(V)[t]) / 5
print("fused backward vs (softmax − onehot)/N:", np.abs(fused.grad.numpy() - by_hand).max())
print("log_softmax path vs (softmax − onehot)/N:", np.abs(composed.grad.numpy() - by_hand).max())
assert np.allclose(fused.grad.numpy(), by_hand, atol=1e-12) and np.allclose(composed.grad.numpy(), by_hand, atol=1e-12)

# %% [markdown]
# ## What you now know
# - A language model gives a probability to every next token; cross-entropy is the
#   mean surprise at what really came next, in nats (÷ ln 2 for bits).
# - An untrained model is uniform, so its loss is ln V: check it on every new model.
# - Counting gives the maximum-likelihood bigram table, which is infinitely surprised by
#   a pair it never saw; smoothing or a neural table avoids that.
# - The gradient of cross-entropy with respect to the logits is softmax − one-hot.
#
# **Exercises** (all in `tinyllm/functional.py`; `tinyllm exercises hint 4.3`): 4.1 the
# forward and 4.2 the backward of `log_softmax`, 4.3 the backward of the fused `cross_entropy`.
