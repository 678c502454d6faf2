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
#
# **Exercises**: none new. The bits above are cross-entropy, so they rest on your
# lesson 04 work: `tinyllm exercises check 4.3` checks it again.
