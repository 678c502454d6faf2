# %% [markdown]
# # Lesson 11 — Prediction is compression
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–11.1 are solved
# (this lesson teaches 11.1); or in this checkout, where every exercise is solved.*
#
# **What you will build:** an arithmetic coder, worked by hand on a short message;
# then the same coder driven by our small GPT, compressing held-out text for real
# (and giving it back byte for byte), next to the bound the model's cross-entropy
# sets and to what gzip, bz2 and xz need for the same text.
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
import time
from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure, small_trained_model
from tinyllm.arithmetic_coder import decode_all, encode_all
from tinyllm.compress import compress, decompress
from tinyllm.data import load_corpus
from tinyllm.sample import generate
from tinyllm.metrics import text_loss

exercises_before(11)

# %% [markdown]
# ## An arithmetic coder, by hand
# Take three symbols with fixed probabilities, a = 1/2, b = 1/5, c = 3/10, given as
# integer frequencies 5, 2, 3 of a total of 10. Start from the interval [0, 1). Each
# symbol splits the interval in proportion to the probabilities and keeps its own piece.
# After the message, the interval's width is the product of the symbols' probabilities.

# %%
frequencies = {"a": 5, "b": 2, "c": 3}
table = [0, 5, 7, 10]                       # where each symbol's piece starts, and the total
message = "acab"
low, width, steps = Fraction(0), Fraction(1), []
for symbol in message:
    steps.append((low, width))
    index = "abc".index(symbol)
    low, width = low + width * Fraction(table[index], 10), width * Fraction(frequencies[symbol], 10)
    print(f"after {symbol!r}: [{float(low):.4f}, {float(low + width):.4f})  width {float(width):.4f}")
print(f"-log2(width) = {-math.log2(width):.2f} bits: the message's information")

fig, axes = plt.subplots(len(message), 1, figsize=(7, 0.9 * len(message) + 0.6))
for ax, symbol, (start, size) in zip(axes, message, steps):
    for k, name in enumerate("abc"):       # the interval, split into the three pieces
        a, b = start + size * Fraction(table[k], 10), start + size * Fraction(table[k + 1], 10)
        ax.barh(0, float(b - a), left=float(a), color="C3" if name == symbol else "lightgray", edgecolor="white")
        ax.text(float(a + b) / 2, 0, name, ha="center", va="center")
    ax.set(xlim=(float(start), float(start + size)), yticks=[], ylabel=f"{symbol!r}")
    ax.set_xticks([float(start), float(start + size)])
axes[0].set_title("each row: the previous row's red piece, split again")
save_figure(fig, "11_arithmetic_coding.png")

# %% [markdown]
# Any number inside the final interval names the whole message. The coder writes the
# bits of one such number: about -log2(width) of them, rounded up, plus two to end.
# The decoder, knowing the same table, sees which piece the number falls in, which names
# the first symbol; narrows to that piece; and so on.
#
# Exact fractions grow without end, so `tinyllm/arithmetic_coder.py` works with 32-bit
# integers: the interval is [low, high]; once it lies in one half of the range, the next
# bit is known, so it is written and the interval doubled; an interval stuck around the
# middle is doubled too, its bit counted as pending until it is known. Exercise 11.1 is
# the heart of it: `narrow`, the integer version of the update above.

# %%
coded = encode_all(["abc".index(c) for c in message], table)
bits = "".join(f"{byte:08b}" for byte in coded)
number = sum(Fraction(int(b), 2 ** (i + 1)) for i, b in enumerate(bits))
print(f"coded: {bits} (the zeros at the end are padding to a whole byte)")
print(f"0.{bits.rstrip('0')} in binary = {float(number):.6f}, inside [{float(low):.6f}, {float(low + width):.6f}):",
      low <= number < low + width)
print("decoded:", "".join("abc"[i] for i in decode_all(coded, table, len(message))))

# %% [markdown]
# ## The model's predictions as the table
# Now the table changes at every step: it is the model's prediction of the next character,
# given the ones before it (the probabilities turned into integer frequencies, each at least
# 1, so nothing is impossible). A character the model expected costs few bits; a surprise
# costs many. That is `tinyllm compress` (tinyllm/compress.py): it codes the text in a few
# streams side by side, one batch row of the model each, and carries bytes the tokenizer
# cannot encode as raw bytes.

# %%
model, tok = small_trained_model()
text = load_corpus("pydoc")
split = int(0.9 * len(text))          # the model trained on the first 90%
train_text, held_out = text[:split], text[split:][: 4_000 if FAST else 40_000]
print(f"held-out text: {len(held_out):,} characters")

# %% [markdown]
# ## The model's bits per character
# `text_loss` (in tinyllm/metrics.py, a page of code) cuts the text into windows of the
# model's context (64); in each window the model predicts every character from the
# ones before it, and the mean cross-entropy comes back in nats. Divide by ln 2 for
# bits. (`tinyllm eval` prints the same for any checkpoint and text.)

# %%
ids = np.array(tok.encode(held_out))
nats = text_loss(model, ids)                                   # mean nats per predicted character
model_bits = nats / math.log(2)
print(f"cross-entropy on the held-out text: {model_bits:.3f} bits per character")

# %% [markdown]
# ## Compressing it for real
# The held-out text through the coder, and back (a few of its characters take two bytes
# or more in UTF-8; the sizes below are per character, as the cross-entropy is). `stats` holds the bound on these very streams: the sum of -log2 p the model gave
# the characters that came (each stream starts without context and slides its context,
# so the bound differs a little from the cross-entropy above).

# %%
data = held_out.encode("utf-8")
stats = {}
started = time.perf_counter()
packed = compress(model, tok, data, stats=stats)
middle = time.perf_counter()
assert decompress(model, tok, packed) == data                  # every byte back
ended = time.perf_counter()
print(f"{len(held_out):,} characters ({len(data):,} bytes) -> {len(packed):,} bytes in {stats['streams']} streams: "
      f"{8 * len(packed) / len(held_out):.3f} bits per character; the bound: {stats['bound_bits'] / len(held_out):.3f}")
print(f"the coded streams are {stats['coded_bits'] / stats['bound_bits'] - 1:+.2%} off the bound; the container's "
      f"header adds {len(packed) - stats['coded_bits'] // 8} bytes")
print(f"compressed at {len(data) / 1e3 / (middle - started):.1f} KB/s, decompressed at "
      f"{len(data) / 1e3 / (ended - middle):.1f} KB/s (the model runs once per character either way)")

# %% [markdown]
# ## The classic compressors
# Each compresses the held-out text on its own, and, to be fair to the model (which
# has read the training text), also *primed*: the size of compress(train + held-out)
# minus that of compress(train), the bits needed for the new text once the old is known.
# (Priming only helps as far as each compressor's window reaches back.)

# %%
prefix = train_text[-200_000:].encode("utf-8")
results = {"8-bit text": 8.0}
for name, squeeze in (("gzip -9", lambda b: gzip.compress(b, 9)), ("bz2 -9", lambda b: bz2.compress(b, 9)),
                      ("xz -9e", lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME))):
    alone = len(squeeze(data)) * 8 / len(held_out)
    primed = (len(squeeze(prefix + data)) - len(squeeze(prefix))) * 8 / len(held_out)
    results[name] = alone
    results[name + " (primed)"] = primed
results["our GPT (0.8M): cross-entropy"] = model_bits
results["our GPT (0.8M): tinyllm compress"] = 8 * len(packed) / len(held_out)
for name, bits in results.items():
    print(f"{name:>34}: {bits:5.2f} bits per character")

fig, ax = plt.subplots(figsize=(7, 3.8))
ax.barh(list(results), list(results.values()), color=["gray"] * (len(results) - 2) + ["C3", "C3"])
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
# and again, which gzip and xz copy from kilobytes back, while our model sees only
# the last 64 characters. And it trained for 600 small steps. Longer context, a bigger
# model and more training each lower its bits per character (`tinyllm train` with
# `--block-size 256 --preset char-small` is a start; bench/RESULTS.md has models trained
# for minutes that beat xz). Large models go far below gzip, bz2 and xz: Transformer-XL reported 0.99 bits per character on enwik8, the first
# 100 MB of an English Wikipedia dump (Dai et al., 2019), and Shannon (1951) estimated from
# people guessing the next letter that English carries roughly 0.6 to 1.3 bits per letter.
# The catch: the decoder needs the model too, the very same one, computing the very same
# logits (`tinyllm decompress` refuses another model, and a file whose bytes do not come
# back exactly). Bits saved on the text are paid for in bytes of weights and in time: the
# model runs once per token, each way. So a model-driven compressor pays where the model
# is shared already and the text is large; mostly, "prediction is compression" is a
# statement about learning.
#
# ## What you now know
# - An arithmetic coder turns probabilities into bits: -log2 p for each symbol, plus a
#   couple to end. Cross-entropy in bits = the length of the compression, and
#   `tinyllm compress` gets within a fraction of a percent of it.
# - Lower validation loss means the model compresses unseen text better, that is,
#   it captured real regularities rather than memorising.
# - A model is a lossy compression of its corpus: compare its bits on seen and unseen
#   text, and what it can recite, to tell learning from memorising.
#
# **Exercise 11.1**: `narrow` in `tinyllm/arithmetic_coder.py`, the coder's interval update
# in integers (`tinyllm exercises hint 11.1`; `tinyllm exercises check 11.1` runs its tests,
# the hand-worked message above among them).
