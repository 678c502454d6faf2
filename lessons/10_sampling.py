# %% [markdown]
# # Lesson 10 — Sampling: the model dreams
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–10.3 are solved
# (this lesson teaches 10.1–10.3); or in this checkout, where every exercise is solved.*
#
# **What you will build:** text from a trained model, one token at a time;
# temperature, top-k and top-p shown on one distribution; the next-token table for
# a prompt; and the KV cache that makes generation cost one position per token.
#
# A trained base model has learned what documents look like. Ask it for the next
# token, *draw* one from its distribution, append it, ask again: it writes a document
# that never existed, a dream of its training data.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure, small_trained_model
from tinyllm.backend import to_numpy
from tinyllm.model import GPT, GPTConfig
from tinyllm.sample import generate, next_token_probs, next_token_table, top_next_tokens

exercises_before(10)
model, tok = small_trained_model()   # a baby GPT trained on pydoc with your code (once, then cached)

# %% [markdown]
# ## What the model expects next
# `top_next_tokens` runs the model once on the prompt and reads the last position's
# distribution; `next_token_table` prints it with bars. Our model has read only
# Python's docs, one character at a time, so we ask it about something it has seen:
# how "The for statem" goes on. (Lesson 13 asks OpenAI's GPT-2, which read the web,
# how "The cat sat on a" goes on, when its files are on your disk.)

# %%
prompt = "The for statem"
print(top_next_tokens(model, tok.encode(prompt), k=5))   # (token id, probability), likeliest first
print(next_token_table(model, tok, prompt, k=5))

# %% [markdown]
# ## Reshaping the distribution
# - **temperature** divides the logits before the softmax: < 1 sharpens, > 1 flattens;
# - **top-k** keeps only the k likeliest tokens;
# - **top-p** (nucleus) keeps the smallest set of likeliest tokens whose probability
#   reaches p, however many that is.
#
# (Exercise 10.1 writes top-k and top-p in `next_token_probs`.)

# %%
logits = to_numpy(model(np.array([tok.encode("The ")]))[0].data[0, -1])
order = np.argsort(-logits)[:15]
settings = {"T=1": {}, "T=0.5": {"temperature": 0.5}, "T=1.5": {"temperature": 1.5},
            "top-k=5": {"top_k": 5}, "top-p=0.6": {"top_p": 0.6}}
fig, axes = plt.subplots(1, len(settings), figsize=(3 * len(settings), 3), sharey=True)
for ax, (name, kwargs) in zip(axes, settings.items()):
    probs = next_token_probs(logits, **kwargs)
    ax.bar(range(15), probs[order])
    ax.set_xticks(range(15), [repr(tok.decode([i]))[1:-1] for i in order], fontsize=7)
    ax.set_title(name)
axes[0].set_ylabel("probability of the next character")
save_figure(fig, "10_sampling_filters.png")

# %% [markdown]
# ## Dreams at three temperatures
# `generate` (exercise 10.2) is the loop: run the model on the context (its last
# `block_size` tokens at most), turn the last position's logits into probabilities
# with `next_token_probs`, draw a token, append it, and again.

# %%
for temperature in (0.5, 1.0, 1.5):
    ids = generate(model, tok.encode("The "), 40 if FAST else 200, temperature=temperature, seed=0)
    print(f"---- temperature {temperature} ----\n{tok.decode(ids)}\n")

# %% [markdown]
# Cold text repeats the safest phrases; hot text invents words, then letters.
#
# ## The KV cache
# Each new token only adds one position. Its keys and values, and those of every
# earlier position, never change, so the model can keep them (a *KV cache*, exercise
# 10.3) and run each step on the one new position, instead of running every earlier
# position through every layer again. Both paths give the same tokens. The cache's
# arrays have room for a whole context from the start, and each step writes its new
# position in place (appending would copy the whole cache at every token). The cost of
# a token still grows a little with the context: the new query reads every cached key.
# In this small model, over a few hundred tokens, that growth is small beside the rest
# of a step; without the cache the cost grows with every token (the times printed below).
# (Our trained model's context is only 64 characters, too short to
# tell; the timing uses an untrained model with a 512-token context: speed does not
# depend on the weights.)

# %%
long_context = GPT(GPTConfig.from_preset("baby", vocab_size=tok.vocab_size, block_size=512))
n = 40 if FAST else 400
for use_cache in (False, True):
    stamps = [time.perf_counter()]
    ids = generate(long_context, tok.encode("\n"), n, temperature=1.0, seed=1, use_cache=use_cache,
                   on_token=lambda token: stamps.append(time.perf_counter()))
    ms = np.diff(stamps) * 1e3                   # the time of each new token
    print(f"use_cache={use_cache!s:5}: {ms[: n // 4].mean():.2f} ms per token for the first {n // 4} tokens, "
          f"{ms[-(n // 4):].mean():.2f} for the last {n // 4}")
assert ids == generate(long_context, tok.encode("\n"), n, temperature=1.0, seed=1, use_cache=False)

# %% [markdown]
# Past `block_size` tokens the window slides: every kept token moves to an earlier
# position, and the keys and values in the cache were made with the old positions' embeddings.
# So once the context is full, `generate` rebuilds the cache from the last `block_size`
# tokens at every step: a full forward, as without a cache.

# %% [markdown]
# ## What you now know
# - Generation = repeat: run the model, reshape the distribution, draw, append.
# - Temperature, top-k and top-p trade safety for variety.
# - A KV cache makes each new token cost one position's layers plus attention over the
#   cached keys, until the context is full; then the cache is rebuilt at every step.
#
# **Exercises**: in `tinyllm/sample.py`, 10.1 top-k and top-p in `next_token_probs`,
# 10.2 the loop of `generate`; 10.3 writing into the KV cache in
# `CausalSelfAttention.remember` (`tinyllm/model.py`).
