# %% [markdown]
# # Lesson 06 — Embeddings
#
# **What you will build:** a look inside the first layer of a trained GPT, the token
# embedding table: cosine similarity between token vectors, each character's nearest
# neighbours, and a 2-D map (PCA) of all of them.
#
# The first thing a GPT does with token id `i` is look up row `i` of a learned matrix
# `wte` of shape (vocabulary, n_embd): `nn.Embedding`. Nothing tells the model what
# the rows should be; training moves them so that tokens that behave alike (that are
# followed and preceded by similar things) end up with similar vectors.

# %%
import matplotlib.pyplot as plt
import numpy as np

from shared import save_figure, small_trained_model
from tinyllm import Tensor, nn

# %% [markdown]
# ## A lookup is a gather, and its gradient a scatter-add
# `Embedding(ids)` is `weight[ids]`. In the backward pass each row's gradient is the
# sum of the gradients of every position where that token occurred: an id that
# appears twice collects two contributions (exercise 6.1).

# %%
emb = nn.Embedding(5, 3)
out = emb(Tensor(np.array([1, 3, 1])))         # rows 1, 3 and 1 again -> (3, 3)
out.sum().backward()
print("gradient of the table (rows 1 and 3 were used; row 1 twice):\n", emb.weight.grad.numpy())

# %% [markdown]
# ## The trained table
# Load the small GPT trained on Python's docs (lesson 04 trained it; it is cached).

# %%
model, tok = small_trained_model()
W = model.wte.weight.numpy()                     # (vocabulary, n_embd)
print("token embedding table:", W.shape)
unit = W / np.linalg.norm(W, axis=1, keepdims=True)
similarity = unit @ unit.T                       # cosine similarity of every pair, (V, V)

# %% [markdown]
# ## Nearest neighbours
# Cosine similarity is the angle between two vectors: 1 same direction, 0 unrelated.
# Vowels cluster with vowels, digits with digits, capitals with capitals: the model
# found these categories alone, from which characters follow which.

# %%
for ch in "a e 0 7 ( T".split():
    i = tok.encode(ch)[0]
    near = [j for j in np.argsort(-similarity[i]) if j != i][:5]
    print(f"{ch!r}: " + ", ".join(f"{tok.decode([j])!r} {similarity[i, j]:.2f}" for j in near))

# %% [markdown]
# ## A map of the vocabulary
# 128 dimensions do not fit on a page. PCA finds the two directions along which the
# vectors vary most (the top right-singular vectors of the centred table) and
# projects onto them.

# %%
centred = W - W.mean(axis=0)
_, _, directions = np.linalg.svd(centred, full_matrices=False)
xy = centred @ directions[:2].T                  # (V, 128) @ (128, 2) -> (V, 2)
fig, ax = plt.subplots(figsize=(7, 6))
for i in range(tok.vocab_size):
    ch = tok.decode([i])
    kind = "C0" if ch.isalpha() and ch.islower() else "C1" if ch.isalpha() else "C2" if ch.isdigit() else "C3"
    ax.text(xy[i, 0], xy[i, 1], repr(ch)[1:-1] or "?", color=kind, fontsize=8, ha="center", va="center")
ax.set(xlim=(xy[:, 0].min() - 0.1, xy[:, 0].max() + 0.1), ylim=(xy[:, 1].min() - 0.1, xy[:, 1].max() + 0.1),
       title="Character embeddings, first two principal components")
save_figure(fig, "06_embeddings_pca.png")

# %% [markdown]
# ## What you now know
# - An embedding is a lookup into a learned matrix; its gradient adds up per token.
# - Cosine similarity compares directions; neighbours in a trained table behave alike.
# - PCA gives a faithful-as-possible 2-D shadow of the vectors.
# - GPT-2 also has a *position* table `wpe`; the model adds the two vectors.
#
# **Exercise**: 6.1 the backward of indexing (`tinyllm/ops/shape.py`), which is the
# embedding's backward.
