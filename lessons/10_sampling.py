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

from shared import FAST, save_figure, small_trained_model
from tinyllm.backend import to_numpy
from tinyllm.model import GPT, GPTConfig
from tinyllm.sample import generate, next_token_probs, next_token_table, top_next_tokens

model, tok = small_trained_model()

# %% [markdown]
# ## What the model expects next
# `top_next_tokens` runs the model once on the prompt and reads the last position's
# distribution; `next_token_table` prints it with bars. (A large model trained on web
# text puts most of its probability on
# " mat" after "the cat sat on a"; ours has read only Python's docs, one character
# at a time, so we ask it about something it knows.)

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

# %%
for temperature in (0.5, 1.0, 1.5):
    ids = generate(model, tok.encode("The "), 40 if FAST else 200, temperature=temperature, seed=0)
    print(f"---- temperature {temperature} ----\n{tok.decode(ids)}\n")

# %% [markdown]
# Cold text repeats the safest phrases; hot text invents words, then letters.
#
# ## The KV cache
# Each new token only adds one position. Its keys and values, and those of every
# earlier position, never change, so the model can keep them (a *KV cache*) and run
# each step on the one new position: the cost per token stays flat instead of growing
# with the context. Both paths give the same tokens. (Our trained model's context is
# only 64 characters, too short to tell; the timing uses an untrained model with a
# 512-token context: speed does not depend on the weights.)

# %%
long_context = GPT(GPTConfig.from_preset("baby", vocab_size=tok.vocab_size, block_size=512))
n = 40 if FAST else 400
for use_cache in (False, True):
    began = time.perf_counter()
    ids = generate(long_context, tok.encode("\n"), n, temperature=1.0, seed=1, use_cache=use_cache)
    print(f"use_cache={use_cache!s:5}: {(time.perf_counter() - began) / n * 1e3:.2f} ms per token")
assert ids == generate(long_context, tok.encode("\n"), n, temperature=1.0, seed=1, use_cache=False)

# %% [markdown]
# ## What you now know
# - Generation = repeat: run the model, reshape the distribution, draw, append.
# - Temperature, top-k and top-p trade safety for variety.
# - A KV cache makes each new token cost one position.
#
# **Exercises**: 10.1 top-k and top-p in `next_token_probs` (`tinyllm/sample.py`),
# 10.2 appending to the KV cache in `CausalSelfAttention.forward` (`tinyllm/model.py`).
