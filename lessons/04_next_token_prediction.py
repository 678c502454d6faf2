# %% [markdown]
# # Lesson 04 — Next-token prediction and cross-entropy
#
# **What you will build:** the simplest language model there is (a table of which
# character follows which), the loss that measures any language model, the same
# model as a tiny neural network trained by gradient descent, and finally a real
# (small) GPT nudged by a few gradient steps to believe that "I love New York"
# ends in "Zoo".
#
# A language model does one thing: given the text so far, it gives a probability to
# every possible next token. Everything else (chat, translation, code) is built by
# asking that question again and again.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, save_figure, small_trained_model
from tinyllm import Tensor, functional as F, manual_seed, nn, optim
from tinyllm.data import load_corpus
from tinyllm.tokenizer import CharTokenizer

# %% [markdown]
# ## A bigram model: count, then normalise
# Take Python's documentation (the `pydoc` corpus that ships with Python), one id per
# character. Count how often each character follows each other one; each row of the
# count table, divided by its sum, is a probability distribution over the next character.

# %%
text = load_corpus("pydoc")
if FAST:
    text = text[:50_000]
tok = CharTokenizer.train(text)
ids = np.array(tok.encode(text))
split = int(0.9 * len(ids))
train_ids, val_ids = ids[:split], ids[split:]
V = tok.vocab_size
counts = np.ones((V, V))                          # +1: no pair is impossible (smoothing)
np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1)
probs = counts / counts.sum(axis=1, keepdims=True)
after_q = probs[tok.encode("q")[0]]
print(f"{V} characters. After 'q' the likeliest next characters:",
      ", ".join(f"{tok.decode([i])!r} {after_q[i]:.0%}" for i in np.argsort(-after_q)[:4]))

# %% [markdown]
# ## The loss: average surprise
# How good is a model? Look at held-out text and ask how much probability it gave to
# each character that really came next. The *negative log-likelihood*, averaged over
# positions, is the **cross-entropy loss**: 0 if the model was always certain and
# right, large when it was surprised. A model that knows nothing spreads probability
# evenly, 1/V each, and scores exactly ln V.

# %%
nll = -np.log(probs[val_ids[:-1], val_ids[1:]]).mean()
print(f"uniform guess: ln V = {math.log(V):.3f} nats per character")
print(f"bigram counts: {nll:.3f} nats per character on validation text")

# %% [markdown]
# ## The same model as a neural network
# Replace the count table by a table of learned numbers, *logits*: `nn.Embedding(V, V)`
# looks up row `x`, the scores of every next character. `F.cross_entropy` turns
# logits into probabilities (softmax) and takes the mean negative log-likelihood,
# exactly the number above. Its gradient trains the table. At the start every logit
# is near 0, so the model is uniform and the loss is ln V: a check worth doing on any
# new model.

# %%
manual_seed(0)
table = nn.Embedding(V, V)
opt = optim.AdamW(table.parameters(), lr=0.1, weight_decay=0.0)
rng = np.random.default_rng(0)
steps = 30 if FAST else 300
for step in range(steps + 1):
    batch = rng.integers(0, len(train_ids) - 1, 4096)
    loss = F.cross_entropy(table(Tensor(train_ids[batch])), train_ids[batch + 1])
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % (steps // 3) == 0:
        print(f"step {step:4d}  loss {loss.item():.3f}")
val_loss = F.cross_entropy(table(Tensor(val_ids[:-1])), val_ids[1:]).item()
print(f"neural bigram: {val_loss:.3f} on validation (counting gave {nll:.3f})")

# %% [markdown]
# Gradient descent found (nearly) the counting answer: for a bigram both are the
# maximum-likelihood table. The network's advantage comes when the table is replaced
# by something that reads *more* than one character back: a GPT.
#
# ## Pushing a trained model: "New York City" → "New York Zoo"
# `small_trained_model()` trains a 0.8M-parameter GPT on the same text (about 40
# seconds, once). We measure the loss of two continuations of "I love New York ",
# counting only the continuation's characters (the prompt positions get the target
# `ignore_index`, -100), then take a few gradient steps on the sentence ending in "Zoo".

# %%
model, tok = small_trained_model()
prompt = "I love New York "


def continuation_loss(ending: str) -> Tensor:
    """Mean cross-entropy of the characters of ``ending`` after ``prompt``."""
    ids = tok.encode(prompt + ending)
    targets = np.array(ids[1:])
    targets[: len(prompt) - 1] = -100           # do not score the prompt itself
    logits, _ = model(np.array([ids[:-1]]))
    return F.cross_entropy(logits, targets[None])


model.train()
opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
history = {"Zoo": [], "City": []}
for step in range(5 if FAST else 15):
    for ending in history:
        history[ending].append(continuation_loss(ending).item())
    loss = continuation_loss("Zoo")
    opt.zero_grad()
    loss.backward()
    opt.step()
print("loss of 'Zoo' per step: ", " ".join(f"{v:.2f}" for v in history["Zoo"]))
print("loss of 'City' per step:", " ".join(f"{v:.2f}" for v in history["City"]))
fig, ax = plt.subplots(figsize=(5, 3.5))
for ending, values in history.items():
    ax.plot(values, "o-", label=f"'{prompt}{ending}'")
ax.set(xlabel="gradient steps on the 'Zoo' sentence", ylabel="loss of the ending (nats/char)")
ax.legend()
save_figure(fig, "04_new_york_zoo.png")

# %% [markdown]
# The loss of "Zoo" falls step after step: training is nothing more than this,
# repeated over millions of sentences. (Fine-tuning on one sentence also drags along
# what the model believes about others; here "City" moves too.)
#
# ## What you now know
# - A language model gives a probability to every next token; cross-entropy is the
#   mean surprise at what really came next, in nats (÷ ln 2 for bits).
# - An untrained model is uniform, so its loss is ln V: check it on every new model.
# - Counting and gradient descent find the same bigram table; a GPT earns its keep by
#   reading further back.
#
# **Exercises**: 4.1 the backward of `log_softmax`, 4.2 the backward of the fused
# `cross_entropy` (both in `tinyllm/functional.py`; `tinyllm exercises hint 4.2`).
