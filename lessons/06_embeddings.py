# %% [markdown]
# # Lesson 06 — Embeddings
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–6.2 are solved
# (this lesson teaches 6.1–6.2); or in this checkout, where every exercise is solved.*
#
# **What you will build:** an embedding table, looked up and differentiated; a small
# neural language model that reads the last 8 characters through one (the MLP of Bengio
# et al. 2003, which makemore rebuilds), trained on Python's docs; and a look inside its
# trained table: cosine similarity, each character's nearest neighbours, a 2-D map.
#
# The first thing a GPT does with token id `i` is look up row `i` of a learned matrix
# `wte` of shape (vocabulary, n_embd): `nn.Embedding`. Nothing tells the model what
# the rows should be; training moves them so that tokens that behave alike (that are
# followed and preceded by similar things) end up with similar vectors.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, GPT2_DIR, exercises_before, save_figure
from tinyllm import Tensor, functional as F, manual_seed, nn, optim
from tinyllm.data import load_corpus
from tinyllm.pretrained import gpt2_tokenizer_files, read_safetensors
from tinyllm.tokenizer import ByteLevelBPE, CharTokenizer

exercises_before(6)

# %% [markdown]
# ## A lookup is a one-hot product, done cheaply
# Lesson 04's neural bigram multiplied a one-hot row by a table: that picks out one row.
# `Embedding(ids)` is `weight[ids]` (exercise 6.2), the same rows without multiplying by
# all those zeros. In the backward pass each row's gradient is the sum of the gradients
# of every position where that token occurred, as the product's would be: an id that
# appears twice collects two contributions (exercise 6.1, a scatter-add).

# %%
manual_seed(0)
emb = nn.Embedding(5, 3)
ids = np.array([1, 3, 1])
out = emb(ids)                                   # rows 1, 3 and 1 again -> (3, 3)
assert np.array_equal(out.numpy(), np.eye(5, dtype=np.float32)[ids] @ emb.weight.numpy())
out.sum().backward()
print("gradient of the table (rows 1 and 3 were used; row 1 twice):\n", emb.weight.grad.numpy())

# %% [markdown]
# ## A model that reads 8 characters back
# Each of the last 8 characters becomes a 16-number vector; the 8 vectors side by side
# (128 numbers) go through a hidden layer of 256 tanh neurons, then a layer giving the
# next character's logits. It is lesson 03's MLP with a lookup in front. Trained with
# SGD and momentum on random windows of pydoc's first 90%, scored on the last 10%.

# %%
text = load_corpus("pydoc")
tok = CharTokenizer.train(text)
ids = np.array(tok.encode(text))
split = int(0.9 * len(ids))
train_ids, val_ids = ids[:split], ids[split:]
V, CONTEXT, DIM, HIDDEN = tok.vocab_size, 8, 16, 256


class CharMLP(nn.Module):
    """The last CONTEXT tokens' vectors, side by side -> tanh layer -> next-token logits."""

    def __init__(self, V: int = V, DIM: int = DIM):
        self.wte = nn.Embedding(V, DIM, std=0.3)
        self.hidden = nn.Linear(CONTEXT * DIM, HIDDEN, std=1 / math.sqrt(CONTEXT * DIM))
        self.out = nn.Linear(HIDDEN, V, std=0.1 / math.sqrt(HIDDEN))   # small: the first guesses near uniform

    def forward(self, context: np.ndarray) -> Tensor:
        x = self.wte(context)                          # (B, 8) -> (B, 8, DIM)
        x = x.reshape(x.shape[0], -1)                  # the 8 vectors side by side: (B, 8·DIM)
        return self.out(self.hidden(x).tanh())         # (B, 8·DIM) -> (B, 256) -> (B, V)


def windows(data: np.ndarray, starts: np.ndarray):
    """(B, 8) contexts and the (B,) characters that follow them."""
    return data[starts[:, None] + np.arange(CONTEXT)], data[starts + CONTEXT]


def train_mlp(model: CharMLP, train: np.ndarray, val: np.ndarray, steps: int) -> float:
    """SGD with momentum on random windows of ``train``; returns the loss on (up to 20,000 of) ``val``'s windows."""
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    for step in range(steps + 1):
        opt.lr = 0.1 if step < 0.75 * steps else 0.01      # smaller steps for the last quarter
        x, y = windows(train, rng.integers(0, len(train) - CONTEXT, 128))
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % (steps // 4) == 0:
            print(f"step {step:5d}  loss {loss.item():.3f}")
    val_x, val_y = windows(val, np.arange(len(val) - CONTEXT)[: 5_000 if FAST else 20_000])
    return F.cross_entropy(model(val_x), val_y).item()


manual_seed(0)
model = CharMLP()
val_loss = train_mlp(model, train_ids, val_ids, 200 if FAST else 4000)
print(f"validation loss {val_loss:.3f} nats per character "
      "(lesson 04's bigram, reading one character back: about 2.3)")

# %% [markdown]
# ## Nearest neighbours
# Cosine similarity is the cosine of the angle between two vectors, u·v / (|u| |v|): 1
# for the same direction, 0 at right angles, −1 for opposite ones. Characters the text
# rarely uses get few gradient steps and keep most of their random start, so we look
# among the 40 or so commonest only.

# %%
W = model.wte.weight.numpy()                      # (V, 16)
unit = W / np.linalg.norm(W, axis=1, keepdims=True)
similarity = unit @ unit.T                       # cosine similarity of every pair, (V, V)
common = np.bincount(train_ids, minlength=V) >= 500
for ch in "a e t s ( :".split():
    i = tok.encode(ch)[0]
    near = [j for j in np.argsort(-similarity[i]) if j != i and common[j]][:5]
    print(f"{ch!r}: " + ", ".join(f"{tok.decode([j])!r} {similarity[i, j]:.2f}" for j in near))

# %% [markdown]
# Which characters does the model treat alike? One test: a lower-case letter and its
# capital play the same part in a word. Their mean cosine similarity, beside that of all
# pairs of distinct letters:

# %%
letters = [c for c in "abcdefghijklmnopqrstuvwxyz" if c in tok.index and c.upper() in tok.index]
pairs = [similarity[tok.index[c], tok.index[c.upper()]] for c in letters]
alphabet = [tok.index[c] for c in letters] + [tok.index[c.upper()] for c in letters]
others = similarity[np.ix_(alphabet, alphabet)][~np.eye(len(alphabet), dtype=bool)]
print(f"a letter and its capital: mean cosine {np.mean(pairs):.2f} over {len(letters)} letters; "
      f"any two distinct letters: {others.mean():.2f}")

# %% [markdown]
# ## A map of the vocabulary
# 16 dimensions do not fit on a page. PCA finds the two directions along which the
# vectors vary most (the top right-singular vectors of the centred table) and
# projects onto them.

# %%
centred = W[common] - W[common].mean(axis=0)
_, _, directions = np.linalg.svd(centred, full_matrices=False)
xy = centred @ directions[:2].T                  # (n, 16) @ (16, 2) -> (n, 2)
fig, ax = plt.subplots(figsize=(7, 6))
for (x0, y0), i in zip(xy, np.flatnonzero(common)):
    ch = tok.decode([int(i)])
    kind = "C0" if ch.isalpha() and ch.islower() else "C1" if ch.isalpha() else "C2" if ch.isdigit() else "C3"
    ax.text(x0, y0, "␣" if ch == " " else repr(ch)[1:-1], color=kind, fontsize=9, ha="center", va="center")
for colour, kind in (("C0", "lower case"), ("C1", "capitals"), ("C2", "digits"), ("C3", "other")):
    ax.scatter([], [], color=colour, label=kind)
ax.legend(loc="best", fontsize=8)
ax.set(xlim=(xy[:, 0].min() - 0.1, xy[:, 0].max() + 0.1), ylim=(xy[:, 1].min() - 0.1, xy[:, 1].max() + 0.1),
       title="Character embeddings, first two principal components")
save_figure(fig, "06_embeddings_pca.png")

# %% [markdown]
# ## Word vectors
# Characters are too small to mean much; words do. The same MLP trained on lesson 05's
# BPE tokens (a 1024-token vocabulary learned from pydoc, 32 numbers per token) gives
# word-sized pieces vectors of their own. Their nearest neighbours among the tokens used
# at least 100 times (rare ones keep much of their random start), for a few words that
# are single tokens here:

# %%
bpe = ByteLevelBPE.train(text, vocab_size=300 if FAST else 1024)
bpe_ids = np.array(bpe.encode(text))
bpe_split = int(0.9 * len(bpe_ids))
manual_seed(0)
words = CharMLP(V=bpe.vocab_size, DIM=32)
word_val = train_mlp(words, bpe_ids[:bpe_split], bpe_ids[bpe_split:], 200 if FAST else 3000)
print(f"validation loss {word_val:.3f} nats per token ({len(text) / len(bpe_ids):.2f} characters per token)")
W = words.wte.weight.numpy()
unit = W / np.linalg.norm(W, axis=1, keepdims=True)
rare = set(np.flatnonzero(np.bincount(bpe_ids[:bpe_split], minlength=bpe.vocab_size) < 100).tolist())


def single_token(vocab, word: str) -> int | None:
    ids = vocab.encode(word)
    return ids[0] if len(ids) == 1 else None


def nearest(unit: np.ndarray, vector: np.ndarray, skip: set, k: int = 5) -> list[int]:
    """The k rows of ``unit`` most similar in direction to ``vector``, leaving out ``skip``."""
    order = np.argsort(-(unit @ (vector / np.linalg.norm(vector))))
    return [int(i) for i in order if int(i) not in skip][:k]


for word in (" function", " string", " list", " object", " class", " value"):
    i = single_token(bpe, word)
    if i is None:
        print(f"{word!r} is more than one token in this vocabulary")
        continue
    print(f"{word!r}: " + ", ".join(f"{bpe.decode([j])!r} {unit[i] @ unit[j]:.2f}"
                                    for j in nearest(unit, unit[i], {i} | rare)))

# %% [markdown]
# ## Arithmetic on word vectors
# word2vec (Mikolov et al., 2013) showed that in vectors trained on billions of words,
# king − man + woman lands near queen: differences between vectors can carry a relation.
# Our model read half a megabyte of Python's manual, and none of those words, so we try
# the same arithmetic on words of its own: the tokens nearest to ` names` − ` name` +
# ` value`, hoping for ` values`. Then, when GPT-2's files are on your disk (the README's
# "OpenAI's GPT-2"), king − man + woman in GPT-2's own token table, read straight from its
# weights file (`read_safetensors`, lesson 13). Whatever comes out is printed: analogies
# are a famous result for word2vec, and a weaker one for the input tables of models like
# these; our tiny pydoc model does not find ` values` (in the run this was written with).

# %%
def analogy(vocab, unit: np.ndarray, a: str, b: str, c: str, skip: set = frozenset()) -> str:
    """The tokens nearest to a − b + c (none of the three, nor ``skip``), or why there are none."""
    ids = [single_token(vocab, word) for word in (a, b, c)]
    if None in ids:
        return f"skipped: {[w for w, i in zip((a, b, c), ids) if i is None]} not single tokens here"
    found = nearest(unit, unit[ids[0]] - unit[ids[1]] + unit[ids[2]], set(ids) | skip)
    return ", ".join(repr(vocab.decode([j])) for j in found)


print(f"pydoc model: ' names' - ' name' + ' value' -> {analogy(bpe, unit, ' names', ' name', ' value', rare)}")
files = gpt2_tokenizer_files(GPT2_DIR)
if files and (GPT2_DIR / "model.safetensors").is_file():
    gpt2_tok = ByteLevelBPE.from_gpt2_files(*files)
    table = read_safetensors(GPT2_DIR / "model.safetensors")
    gpt2_wte = np.asarray(table.get("transformer.wte.weight", table.get("wte.weight")), dtype=np.float32)
    gpt2_unit = gpt2_wte / np.linalg.norm(gpt2_wte, axis=1, keepdims=True)
    print(f"GPT-2: ' king' - ' man' + ' woman' -> {analogy(gpt2_tok, gpt2_unit, ' king', ' man', ' woman')}")
else:
    print(f"(no GPT-2 weights in {GPT2_DIR.resolve()}: see the README's \"OpenAI's GPT-2\"; skipping)")

# %% [markdown]
# ## What you now know
# - An embedding is a lookup into a learned matrix, a one-hot product without the zeros;
#   its gradient adds up per token.
# - Reading 8 characters back instead of 1 lowers the loss far below the bigram's.
# - Cosine similarity compares directions; characters the model uses alike end up close.
# - PCA gives a faithful-as-possible 2-D shadow of the vectors.
# - Word-sized tokens get vectors whose neighbours are related words; vector arithmetic
#   (king − man + woman) works in some tables better than others: measure, don't assume.
# - A GPT has a *position* table `wpe` too, and adds the two vectors (lesson 08).
#
# **Exercises**: 6.1 the backward of indexing (`tinyllm/ops/shape.py`), which is the
# embedding's backward; 6.2 the lookup itself, `Embedding.forward` (`tinyllm/nn.py`).
