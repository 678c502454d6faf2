# %% [markdown]
# # Lesson 08 — The Transformer block and the GPT
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–8.6 are solved
# (this lesson teaches 8.1–8.6); or in this checkout, where every exercise is solved.*
#
# **What you will build:** the whole GPT-2 architecture out of the pieces you know:
# LayerNorm, the MLP, attention, the residual stream, the Transformer block, then
# the model from token ids to logits. And a count of GPT-2's 124,439,808
# parameters, by formula and by the model itself, and where they live as GPT-2 grows.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from shared import exercises_before, save_figure
from tinyllm import Tensor, functional as F, manual_seed
from tinyllm.gradcheck import gradcheck
from tinyllm.model import GPT, GPTConfig

exercises_before(8)
rng = np.random.default_rng(0)

# %% [markdown]
# ## LayerNorm
# Deep stacks train badly when the scale of activations drifts from layer to layer.
# LayerNorm rescales each position's vector to mean 0 and variance 1, then applies a
# learned gain and bias (initially 1 and 0).

# %%
x = Tensor(rng.normal(3.0, 5.0, (2, 4, 8)))
y = F.layer_norm(x, Tensor(np.ones(8)), Tensor(np.zeros(8))).numpy()
print(f"before: mean {x.numpy().mean(-1)[0, 0]:.2f}, std {x.numpy().std(-1)[0, 0]:.2f}   "
      f"after: mean {y.mean(-1)[0, 0]:.2f}, std {y.std(-1)[0, 0]:.2f}")

# %% [markdown]
# ## LayerNorm's backward, derived
# For one row of C numbers (exercises 8.1, 8.2): μ = Σx/C, σ² = Σ(x − μ)²/C (+ ε),
# x̂ = (x − μ)/σ, y = x̂·w + b. With g = dL/dy, the gain and bias are easy: dw = Σ g·x̂ and
# db = Σ g over all rows. For x, first d = dL/dx̂ = g·w. Every x_j moves x̂_i directly, and
# through μ and σ too:
#
#     ∂x̂_i/∂x_j = (δ_ij − 1/C)/σ − (x_i − μ)(x_j − μ)/(C σ³) = (δ_ij − 1/C − x̂_i x̂_j / C) / σ
#
# (∂μ/∂x_j = 1/C, ∂σ/∂x_j = (x_j − μ)/(Cσ)). Summing d_i times that over i:
#
#     dx_j = (d_j − mean(d) − x̂_j · mean(d·x̂)) / σ
#
# The two means remove from d what would only shift the row's mean or scale its spread:
# LayerNorm undoes both, so no gradient can change them. gradcheck agrees:

# %%
X = Tensor(rng.standard_normal((2, 3, 6)), dtype=np.float64, requires_grad=True)
weight, bias = (Tensor(rng.standard_normal(6), dtype=np.float64, requires_grad=True) for _ in range(2))
print(gradcheck(F.layer_norm, [X, weight, bias]))

# %% [markdown]
# ## GELU, and its backward
# The MLP's nonlinearity is GELU, x·Φ(x) with Φ the normal distribution's CDF: a smooth
# ReLU that lets a little negative signal through. GPT-2 uses the tanh approximation,
# y = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³). tinyllm writes ½(1 + tanh u) as σ(2u)
# (the same number; σ is the logistic function, and e^x is faster than tanh in NumPy). With
# s = σ(2u), σ' = σ(1 − σ) and 2u' = 2√(2/π)(1 + 3·0.044715x²), the product rule gives
# (exercise 8.3):
#
#     dy/dx = s + x · s(1 − s) · 2u'

# %%
print(gradcheck(F.gelu, [Tensor(rng.standard_normal((3, 7)) * 3, dtype=np.float64, requires_grad=True)]))

# %% [markdown]
# ## The block
# Each block reads the *residual stream* x, computes something, and **adds** it back:
#
#     x = x + attention(layer_norm(x))     # gather from earlier positions
#     x = x + mlp(layer_norm(x))           # think about it, position by position
#
# The additions matter as much as the layers: in the backward pass a sum passes its
# gradient through unchanged, so every block's gradient reaches the embeddings
# directly, however deep the stack. The MLP widens each vector 4×, applies GELU and
# narrows it back: `c_fc`, GELU, `c_proj` (exercise 8.4); the block is the two lines
# above (exercise 8.5); both in `tinyllm/model.py`.
#
# ## The GPT, step by step
# ids → token embedding + position embedding → n_layer blocks → a final LayerNorm →
# `lm_head`, a Linear layer giving one logit per vocabulary entry, and, when targets
# are given, the cross-entropy of lesson 04 (`GPT.forward`, exercise 8.6). GPT-2 *ties*
# `lm_head` to the token embedding: one matrix both reads and writes tokens. Here is
# the forward pass taken apart, step by step, beside `model(ids)`:

# %%
manual_seed(0)
config = GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32)
model = GPT(config)
ids = rng.integers(0, 65, (3, 16))
x = model.wte(ids) + model.wpe(np.arange(16))
print("embeddings:", x.shape)
for i, block in enumerate(model.h):
    before = x
    x = block(x)
    print(f"after block {i}: {x.shape}, the block added a vector of norm "
          f"{np.linalg.norm((x - before).numpy(), axis=-1).mean():.3f} per position")
logits = model.lm_head(model.ln_f(x))
print("logits:", logits.shape, "  same as model(ids):", np.allclose(logits.numpy(), model(ids)[0].numpy()))
_, loss = model(ids, rng.integers(0, 65, (3, 16)))  # random next tokens
print(f"loss at initialisation {loss.item():.3f} vs ln(65) = {math.log(65):.3f}")

# %% [markdown]
# ## Counting GPT-2's parameters
# With C = n_embd = 768, V = 50257, context 1024 and 12 layers:
# - token embedding V·C and position embedding 1024·C (the head is tied: no more);
# - per block: two LayerNorms (2C each), attention's qkv (C·3C + 3C) and output
#   (C·C + C), the MLP's up (C·4C + 4C) and down (4C·C + C): 12C² + 13C in all;
# - the final LayerNorm, 2C.

# %%
V, C, T, L = 50257, 768, 1024, 12
per_block = 12 * C * C + 13 * C
by_formula = V * C + T * C + L * per_block + 2 * C
print(f"by formula: {V * C:,} + {T * C:,} + {L} × {per_block:,} + {2 * C:,} = {by_formula:,}")
gpt2 = GPT(GPTConfig.from_preset("gpt2"))
print(f"GPT(gpt2).num_parameters() = {gpt2.num_parameters():,}")
assert by_formula == gpt2.num_parameters() == 124_439_808

# %% [markdown]
# ## Where the parameters live
# The same count split by part: attention has 4C² + 4C per block (qkv and output), the
# MLP 8C² + 5C, the two LayerNorms 4C. Checked against the model itself, whose
# parameter names say where each one sits; then drawn for the four sizes OpenAI released.

# %%
def parameter_groups(config: GPTConfig) -> dict[str, int]:
    """GPT-2's parameter count by part, from the formulas above."""
    C, L = config.n_embd, config.n_layer
    return {"embeddings": (config.vocab_size + config.block_size) * C, "attention": L * (4 * C * C + 4 * C),
            "MLP": L * (8 * C * C + 5 * C), "LayerNorms": L * 4 * C + 2 * C}


def part_of(name: str) -> str:   # "h.3.mlp.c_fc.weight" -> "MLP"
    if name.startswith(("wte.", "wpe.")):
        return "embeddings"
    return "attention" if ".attn." in name else "MLP" if ".mlp." in name else "LayerNorms"


counted = dict.fromkeys(parameter_groups(gpt2.config), 0)
for name, p in gpt2.named_parameters():
    counted[part_of(name)] += p.size
assert counted == parameter_groups(gpt2.config)
print(f"GPT-2 small's LayerNorms: {counted['LayerNorms']:,} parameters of {gpt2.num_parameters():,}")
del gpt2

sizes = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"]
groups = [parameter_groups(GPTConfig.from_preset(size)) for size in sizes]
fig, ax = plt.subplots(figsize=(6, 3.2))
left = np.zeros(len(sizes))
for part in groups[0]:
    share = np.array([100 * g[part] / sum(g.values()) for g in groups])
    ax.barh(sizes, share, left=left, label=part)
    left += share
for i, g in enumerate(groups):
    print(f"{sizes[i]:12s} {sum(g.values()) / 1e6:7.1f}M parameters: " +
          ", ".join(f"{part} {100 * n / sum(g.values()):.2f}%" for part, n in g.items()))
ax.invert_yaxis()
ax.set(xlabel="share of the parameters (%)", xlim=(0, 100), title="Where GPT-2's parameters live")
ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, frameon=False)
fig.tight_layout()
save_figure(fig, "08_parameters.png")

# %% [markdown]
# In the smallest GPT-2 the embedding table holds almost a third of the parameters;
# the blocks grow as L·C² and the table only as C, so in the largest it is down to a
# twentieth, and nearly two thirds of everything is MLP (8C² per block against
# attention's 4C²). The LayerNorms are too thin to see: 4C per block and 2C at the
# end, the 0.03% printed above (38,400 parameters in GPT-2 small). GPT-2 is this
# code plus these numbers.
#
# OpenAI published the numbers. `tinyllm/pretrained.py` reads them from GPT-2's files on
# Hugging Face (the README's "OpenAI's GPT-2" says which), into this very `GPT`: its
# parameter names are GPT-2's own, and only four matrices per block need transposing.
# Then `tinyllm sample --ckpt gpt2 --prompt "..."` writes with the model OpenAI trained.
#
# ## What you now know
# - A Transformer block: pre-LayerNorm attention and MLP, each added to the residual stream.
# - A GPT: embeddings in, blocks, final LayerNorm, tied head out; at init its loss is ln V.
# - Parameters count as 12C² + 13C per block plus the embeddings.
#
# **Exercises**: in `tinyllm/functional.py`, 8.1 the forward and 8.2 the backward of
# `layer_norm`, 8.3 the backward of `gelu`; in `tinyllm/model.py`, 8.4 `MLP.forward`,
# 8.5 `Block.forward`, 8.6 `GPT.forward`.
