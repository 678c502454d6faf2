# %% [markdown]
# # Lesson 11 — Prediction is compression
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–10.3 are solved
# (this lesson adds none); or in this checkout, where every exercise is solved.*
#
# **What you will build:** the number of bits per character our small GPT needs to
# encode held-out text, next to what gzip, bz2 and lzma need for the same text.
#
# If a model gives the character that really comes next a probability p, an
# arithmetic coder can store that character in -log₂ p bits, and the decoder, running
# the same model, recovers it exactly. So a model's cross-entropy in bits *is* the
# size of a lossless compression of the text: a better predictor is a better
# compressor. Training a language model is learning to compress its training data.

# %%
import bz2
import gzip
import lzma
import math

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure, small_trained_model
from tinyllm.data import load_corpus
from tinyllm.sample import generate
from tinyllm.train import text_loss

exercises_before(11)
model, tok = small_trained_model()
text = load_corpus("pydoc")
split = int(0.9 * len(text))          # the model trained on the first 90%
train_text, held_out = text[:split], text[split:][: 4_000 if FAST else 40_000]
print(f"held-out text: {len(held_out):,} characters")

# %% [markdown]
# ## The model's bits per character
# `text_loss` (in tinyllm/train.py, a page of code) cuts the text into windows of the
# model's context (64); in each window the model predicts every character from the
# ones before it, and the mean cross-entropy comes back in nats. Divide by ln 2 for
# bits. (`tinyllm eval` prints the same for any checkpoint and text.)

# %%
ids = np.array(tok.encode(held_out))
nats = text_loss(model, ids)                                   # mean nats per predicted character
model_bits = nats / math.log(2)

# %% [markdown]
# ## The classic compressors
# Each compresses the held-out text on its own, and, to be fair to the model (which
# has read the training text), also *primed*: the size of compress(train + held-out)
# minus that of compress(train), the bits needed for the new text once the old is known.
# (Priming only helps as far as each compressor's window reaches back.)

# %%
data, prefix = held_out.encode("utf-8"), train_text[-200_000:].encode("utf-8")
results = {"8-bit text": 8.0}
for name, compress in (("gzip", lambda b: gzip.compress(b, 9)), ("bz2", lambda b: bz2.compress(b, 9)),
                       ("lzma", lambda b: lzma.compress(b, preset=9))):
    alone = len(compress(data)) * 8 / len(held_out)
    primed = (len(compress(prefix + data)) - len(compress(prefix))) * 8 / len(held_out)
    results[name] = alone
    results[name + " (primed)"] = primed
results["our GPT (0.8M)"] = model_bits
for name, bits in results.items():
    print(f"{name:>16}: {bits:5.2f} bits per character")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.barh(list(results), list(results.values()), color=["gray"] * (len(results) - 1) + ["C3"])
ax.set(xlabel="bits per character (lower is better)", title="Compressing held-out pydoc text")
ax.invert_yaxis()
save_figure(fig, "11_bits_per_character.png")

# %% [markdown]
# ## A model is a lossy compression of its corpus
# The other way round: the model was trained on pydoc's first 90%. Did it store that
# text? Compare the bytes it holds with the bytes it read, its bits per character on
# text it trained on with those on text it never saw, and how much of a training passage
# it can recite: fed 64 characters of its training text, how many of the next 100 does
# it continue exactly (greedy)?

# %%
model_bytes = model.num_parameters() * 4                          # float32
corpus_bytes = len(train_text.encode("utf-8"))
seen = np.array(tok.encode(train_text[200_000:200_000 + len(held_out)]))
seen_bits = text_loss(model, seen) / math.log(2)
print(f"the model: {model.num_parameters():,} parameters = {model_bytes / 1e6:.2f} MB; "
      f"the text it trained on: {corpus_bytes / 1e6:.2f} MB")
print(f"bits per character on text it trained on: {seen_bits:.2f}; on text it never saw: {model_bits:.2f}")
rng = np.random.default_rng(0)
recited = []
for start in rng.integers(0, split - 200, 5 if FAST else 50):
    prompt = tok.encode(train_text[start:start + 64])
    out = generate(model, prompt, 100, top_k=1)[64:]
    truth = tok.encode(train_text[start + 64:start + 164])
    recited.append(next((i for i, (a, b) in enumerate(zip(out, truth)) if a != b), 100))
print(f"characters recited exactly after a 64-character prompt from its training text: "
      f"median {np.median(recited):.0f} of 100 (over {len(recited)} passages)")

# %% [markdown]
# The model's bytes outnumber the text's, and still it holds only a blurred copy: its
# bits per character on a passage it trained on are no better than on text it never saw
# (the two numbers above; parts of pydoc differ in how predictable they are, so the
# passage can even score worse), so it learned what is common to both rather than the
# passages themselves; and it recites next to nothing of a passage before it goes its own
# way (the median above). That is the sense of "lossy": the regularities kept, the
# particulars dropped. A model that scored its training text far better than new text,
# and recited it, would have memorised: lesson 15 makes one.
#
# ## Against the classic compressors, again
# Our half-minute model does not beat them here, and the reasons are instructive.
# pydoc repeats itself: long runs of spaces, the same phrases and code samples again
# and again, which gzip and lzma copy from kilobytes back, while our model sees only
# the last 64 characters. And it trained for 600 small steps. Longer context, a bigger
# model and more training each lower its bits per character (`tinyllm train` with
# `--block-size 256 --preset char-small` is a start). Large models go far below gzip,
# bz2 and lzma: Transformer-XL reported 0.99 bits per character on enwik8, the first
# 100 MB of an English Wikipedia dump (Dai et al., 2019), and Shannon (1951) estimated from
# people guessing the next letter that English carries roughly 0.6 to 1.3 bits per letter.
# The catch: the decoder needs the model too. Bits saved on the text are paid for in
# bytes of weights, which is why "prediction is compression" is a statement about
# learning, not a practical zip program.
#
# ## What you now know
# - Cross-entropy in bits = the length of an arithmetic-coded compression.
# - Lower validation loss means the model compresses unseen text better, that is,
#   it captured real regularities rather than memorising.
# - A model is a lossy compression of its corpus: compare its bits on seen and unseen
#   text, and what it can recite, to tell learning from memorising.
#
# **Exercises**: none new. The bits above are cross-entropy, so they rest on your
# lesson 04 work: `tinyllm exercises check 4.3` checks it again.
