# %% [markdown]
# # Lesson 07 — Attention
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–7.5 are solved
# (this lesson teaches 7.1–7.5); or in this checkout, where every exercise is solved.*
#
# **What you will build:** self-attention by hand on four tokens (queries, keys,
# values, scores, the causal mask, softmax, the weighted sum), a check that
# tinyllm's `CausalSelfAttention` computes exactly that, and attention as one fused op
# whose backward you derive here. (Where a *trained* model's heads look needs a trained
# GPT: lesson 09 draws it.)
#
# An embedding knows only its own token. Attention lets each position gather
# information from earlier positions: every position emits a *query* ("what am I
# looking for?"), a *key* ("what do I contain?") and a *value* ("what I pass on").
# Position t's output is an average of the values, weighted by how well its query
# matches each key.

# %%
import math

import numpy as np

import matplotlib.pyplot as plt

from shared import exercises_before, save_figure
from tinyllm import Tensor, functional as F, manual_seed
from tinyllm.functional import causal_mask
from tinyllm.model import CausalSelfAttention, GPTConfig

exercises_before(7)
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

fig, ax = plt.subplots(figsize=(3.6, 3.2))
ax.imshow(weights, cmap="Blues", vmin=0, vmax=1)
for (row, col), w in np.ndenumerate(weights):
    ax.text(col, row, f"{w:.2f}", ha="center", va="center", fontsize=8)
ax.set(xlabel="key position (read)", ylabel="query position (reading)", title="Causal attention weights",
       xticks=range(T), yticks=range(T))
save_figure(fig, "07_causal_weights.png")

# %% [markdown]
# Row 0 can only look at itself, so its weight is 1 and its output is v[0]. The
# division by √D keeps the scores' spread independent of the head size: q·k sums D
# products, so for entries of unit size its spread grows as √D, and without the
# division a large head would push the softmax towards a single 1 and zeros elsewhere.
#
# ## Softmax, forward and backward
# `F.softmax` (exercise 7.1) computes y_i = e^{x_i} / Σ_j e^{x_j} after subtracting the
# row's max (the same y, and no overflow); masked entries get −∞ first, so e^{−∞} = 0.
# Its derivative: ∂y_i/∂x_j = y_i (δ_ij − y_j), since raising x_j raises y_j and, through
# the sum, lowers every y_i in proportion. With g_i = dL/dy_i (exercise 7.2):
#
#     dL/dx_j = Σ_i g_i y_i (δ_ij − y_j) = y_j (g_j − Σ_i g_i y_i)      dx = y · (g − Σ g·y)
#
# A masked entry has y = 0, so it gets gradient 0 with no extra work.
#
# ## The same thing inside tinyllm
# `CausalSelfAttention.forward` (exercise 7.5) does this for every head at once: one
# Linear layer, `c_attn`, makes q, k and v for all H heads (shape (B, T, 3C), read as
# (B, T, 3, H, D) with D = C/H), `split` cuts that into q, k and v, a transpose gives
# each head its own slab (B, H, T, D), and batched matmuls do all heads in one call.
# The heads' outputs, (B, H, T, D), are put side by side again as (B, T, C), and a last
# Linear layer, `c_proj`, mixes them. Here we redo it with NumPy, head by head, from the
# layer's own weights and compare.

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
# The differences printed are what they are on this machine (0.0 here when this was
# written): the fused backward runs the same float32 products and sums that autograd
# runs through the small ops. Equal to the last bit is not promised, though: a library
# may add in another order, and float32 addition rounds differently in each order,
# which is why the check above allows differences up to 1e-5. What the fused op changes is what stays in memory until the backward runs (lesson 12
# counts it).
#
# ## Attention's backward, derived
# Exercise 7.4 writes that backward. Going back through y = A v, A = softmax(s),
# s = q kᵀ / √D, one step at a time, with g = dL/dy, each step lesson 02's matmul rule
# or the softmax backward above:
#
#     dv = Aᵀ g                      (T, S)ᵀ @ (T, D) -> (S, D)
#     dA = g vᵀ                      (T, D) @ (D, S) -> (T, S)
#     ds = A · (dA − Σ_keys dA·A)    softmax's backward, row by row
#     dq = ds k / √D,   dk = dsᵀ q / √D
#
# In training, dropout drops some weights, y = drop(A) v: then dv = drop(A)ᵀ g, and dA
# is drop(g vᵀ), the same elements dropped and scaled. A masked (future) entry has A = 0,
# so its ds is 0: no gradient flows from a query to a key it could not see.
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
# - Softmax's backward is y · (g − Σ g·y); a masked entry gets nothing.
# - Fused into one op, attention's graph keeps only the weights; the backward finds
#   dv, then the scores' gradient through softmax, then dq and dk, from them.
#
# **Exercises**: in `tinyllm/functional.py`, 7.1 the forward and 7.2 the backward of
# `softmax`, 7.3 the attention weights (`attention_weights`), 7.4 the backward of
# `scaled_dot_product_attention`; in `tinyllm/model.py`, 7.5 `CausalSelfAttention.forward`.
