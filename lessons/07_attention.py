# %% [markdown]
# # Lesson 07 — Attention
#
# **What you will build:** self-attention by hand on four tokens (queries, keys,
# values, scores, the causal mask, softmax, the weighted sum), a check that
# tinyllm's `CausalSelfAttention` computes exactly that, attention as one fused op
# with its own backward, and maps of where a trained model's heads look.
#
# An embedding knows only its own token. Attention lets each position gather
# information from earlier positions: every position emits a *query* ("what am I
# looking for?"), a *key* ("what do I contain?") and a *value* ("what I pass on").
# Position t's output is an average of the values, weighted by how well its query
# matches each key.

# %%
import math

import numpy as np

from shared import FAST, save_figure, small_trained_model
from tinyllm import Tensor, functional as F, manual_seed
from tinyllm.functional import causal_mask
from tinyllm.model import CausalSelfAttention, GPTConfig
from tinyllm.plots import plot_attention_maps

np.set_printoptions(precision=2, suppress=True)

# %% [markdown]
# ## By hand: four tokens, one head of size 2

# %%
rng = np.random.default_rng(0)
T, D = 4, 2
q, k, v = (rng.standard_normal((T, D)) for _ in range(3))
scores = q @ k.T / math.sqrt(D)          # (T, D) @ (D, T) -> (T, T): query t against key s
print("scores:\n", scores)
mask = causal_mask(T, T)                 # True above the diagonal: keys in the future
print("causal mask (True = may not look):\n", mask)
scores[mask] = -np.inf                   # e^-inf = 0: no probability for the future


def softmax_rows(s):
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


weights = softmax_rows(scores)
print("attention weights (each row sums to 1):\n", weights)
y = weights @ v                          # (T, T) @ (T, D) -> (T, D): a weighted average of values
print("output:\n", y)

# %% [markdown]
# Row 0 can only look at itself, so its weight is 1 and its output is v[0]. The
# division by √D keeps the scores' spread independent of the head size, so the
# softmax does not saturate as D grows.
#
# ## The same thing inside tinyllm
# `CausalSelfAttention` does this for every head at once: one Linear layer makes
# q, k and v for all heads (shape (B, T, 3C), read as (B, T, 3, H, D)), `split` cuts
# that into q, k and v, a transpose gives each head its own slab (B, H, T, D), and
# batched matmuls do all heads in one call. Here we redo it with
# NumPy from the layer's own weights and compare.

# %%
manual_seed(0)
config = GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.0)
attn = CausalSelfAttention(config)
x = rng.standard_normal((1, 5, 8)).astype(np.float32)
ours = attn(Tensor(x)).numpy()

qkv = x @ attn.c_attn.weight.numpy().T + attn.c_attn.bias.numpy()     # (1, 5, 24)
heads = []
for h in range(2):
    qh, kh, vh = (qkv[0, :, part * 8 + h * 4: part * 8 + (h + 1) * 4] for part in range(3))
    s = qh @ kh.T / 2.0 + np.where(causal_mask(5, 5), -np.inf, 0)       # √D = √4 = 2
    heads.append(softmax_rows(s) @ vh)                                  # (5, 4) per head
by_hand = np.concatenate(heads, axis=1) @ attn.c_proj.weight.numpy().T + attn.c_proj.bias.numpy()
print("largest difference from the by-hand version:", np.abs(ours[0] - by_hand).max())
assert np.allclose(ours[0], by_hand, atol=1e-5)

# %% [markdown]
# ## One op, and what its graph keeps
# The layer hands q, k and v to `F.scaled_dot_product_attention(q, k, v, is_causal=True)`
# (PyTorch has a function of that name too). Built from its small ops, as above,
# attention would leave the graph holding the scores, the weights and, in training,
# the weights after dropout: each (B, H, T, T), 48 MiB per sequence per layer at
# GPT-2's 12 heads and T = 1024. The fused op keeps the weights (and, in training,
# dropout's draw), and its backward, written beside its forward in
# `tinyllm/functional.py`, works the rest out from them. Its gradients must equal
# the ones autograd finds through the small ops:

# %%
arrays = [rng.standard_normal((1, 2, 6, 4)) for _ in range(3)]   # (B, H, T, D) for q, k and v
grads = []
for fused in (False, True):
    q_t, k_t, v_t = (Tensor(a, requires_grad=True) for a in arrays)
    if fused:
        out = F.scaled_dot_product_attention(q_t, k_t, v_t, is_causal=True)
    else:
        weights_t = F.softmax(q_t @ k_t.transpose(-2, -1) / 2.0, mask=causal_mask(6, 6))   # √D = 2
        out = weights_t @ v_t
    out.sum().backward()
    grads.append([t.grad.numpy() for t in (q_t, k_t, v_t)])
print("largest difference in dq, dk, dv:", [float(np.abs(a - b).max()) for a, b in zip(*grads)])
assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(*grads))

# %% [markdown]
# They agree to the last bit here: the fused backward does the arithmetic autograd
# does through the small ops, and scaling by 1/√D = 1/2 is exact wherever it is
# applied. What the fused op changes is what stays in memory until the backward runs
# (lesson 12 counts it).
#
# ## Where a trained model looks
# `model.attention_maps(ids)` returns the weights of every layer (kept only when
# asked for), and `tinyllm.plots.plot_attention_maps` draws them. Each small picture
# is one head: row = the position reading, column = the position read. Everything
# above the diagonal is 0: the causal mask. (`examples/attention.py` draws them for
# your own checkpoint and prompt, with the tokens on the axes.)

# %%
model, tok = small_trained_model()
text = "The for statement is used to iterate over the elements of a sequence"[: 24 if FAST else 64]
ids = np.array([tok.encode(text)])
maps = model.attention_maps(ids)                # n_layer arrays of (1, n_head, T, T)
fig = plot_attention_maps(maps, title=f"Attention on {text[:40]!r}...")  # a grid: layers down, heads across
save_figure(fig, "07_attention_maps.png")
print("every row sums to 1:", np.allclose(maps[0][0].sum(-1), 1, atol=1e-5))

# %% [markdown]
# Some heads look at the previous character only (a bright line just below the
# diagonal), some spread over the whole word, some rest on the first position when
# they have nothing better to do.
#
# ## Causal and masked language models
# A GPT is *causal*: position t sees only positions ≤ t, so every position can be
# trained to predict its next token at once, and generation can run left to right.
# BERT-style *masked* models instead let every position see the whole text and
# hide some tokens to predict: good for understanding text, not for writing it.
#
# ## What you now know
# - scores = q kᵀ / √D; the causal mask sets the future to -inf; softmax makes weights;
#   the output is the weighted sum of values.
# - Heads run side by side as one batched matmul over a (B, H, T, D) array.
# - Fused into one op, attention's graph keeps only the weights; the backward finds
#   dv, then the scores' gradient through softmax, then dq and dk, from them.
#
# **Exercises** (all in `tinyllm/functional.py`): 7.1 the backward of `softmax`,
# 7.2 the attention weights (`attention_weights`), 7.3 the backward of
# `scaled_dot_product_attention`.
