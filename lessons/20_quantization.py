# %% [markdown]
# # Lesson 20 — Quantization: the same model in 8 and 4 bits
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–20.1 are solved
# (this lesson teaches 20.1); or in this checkout, where every exercise is solved.*
#
# **What you will build:** round-to-nearest quantization of a trained model's weights to
# 8 and 4 bits; the error it makes, weight by weight, with one scale per matrix, per
# output channel and per group; and what each choice costs in perplexity and saves in
# bytes, on the pydoc model.
#
# A trained weight is a float32: 4 bytes. Inference needs far less precision than that.
# Storing each weight as a small integer q and one float scale s per group of weights,
# w ≈ q · s, shrinks a model about 4× (8 bits) or 6 to 7× (4 bits, with its scales; GPT-2
# 124M's sizes are counted at the end), so that larger models fit on smaller machines. The model then
# computes as before, with each weight replaced by q · s.

# %%
import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, GPT2_DIR, exercises_before, save_figure, small_trained_model
from tinyllm.checkpoint import load_checkpoint
from tinyllm.data import load_corpus, train_val_split
from tinyllm.model import GPT, GPTConfig
from tinyllm.nn import skip_init
from tinyllm.quantize import dequantize, quantize, quantize_model
from tinyllm.metrics import text_loss

exercises_before(20)
pretrained, tok = small_trained_model()

# %% [markdown]
# ## Round to nearest, by hand
# **Exercise 20.1** writes `quantize` in `tinyllm/quantize.py`. For a group of weights, the
# scale is the largest |w| over the largest integer (127 for 8 bits, 7 for 4 bits, the same
# count of levels on each side of zero: *symmetric*); each weight becomes the nearest
# integer to w / scale. Then q · scale is never more than half a step from w.

# %%
w = np.array([[0.9, -0.31, 0.05, 0.0, 0.42, -0.2]], np.float32)
for bits in (8, 4):
    q, scales = quantize(w, bits)
    restored = dequantize(q, scales)
    print(f"{bits} bits: scale {scales[0, 0]:.5f}, q = {q[0].tolist()}, q·scale = "
          f"{[round(float(v), 4) for v in restored[0]]}, largest error {np.abs(restored - w).max():.4f} "
          f"(half a step: {scales[0, 0] / 2:.4f})")

# %% [markdown]
# ## Where the scale comes from decides the error
# One trained matrix of the pydoc model, the MLP's first layer of block 0, quantized to
# 4 bits three ways: one scale for the whole matrix, one per output channel (a row of W),
# and one per group of 32 weights within a row. Each scale is set by the largest |w| it
# covers; a single large weight stretches the step for every weight sharing its scale.

# %%
weight = pretrained.h[0].mlp.c_fc.weight.numpy()               # (512, 128): 512 output channels
n_out, n_in = weight.shape
ways = {"one scale per matrix": lambda w, b: quantize(w.reshape(1, -1), b),   # a single row: one group
        "one per output channel": lambda w, b: quantize(w, b),
        "one per group of 32": lambda w, b: quantize(w, b, 32)}
fig, ax = plt.subplots(figsize=(5.5, 3.6))
for name, way in ways.items():
    q, scales = way(weight, 4)
    error = dequantize(q, scales).reshape(weight.shape) - weight
    rms = np.sqrt(np.mean(error ** 2))
    print(f"4 bits, {name:24s}: {scales.size:5d} scales; RMS error {rms:.5f} "
          f"({rms / np.sqrt(np.mean(weight ** 2)):.1%} of the weights' RMS)")
    ax.hist(error.ravel(), bins=80, histtype="step", label=name, density=True)
rows_max = np.abs(weight).max(axis=1)
print(f"the rows' largest |w| range from {rows_max.min():.3f} to {rows_max.max():.3f}: "
      f"a matrix-wide scale is set by the largest")
ax.set(xlabel="w' − w (4 bits)", ylabel="density", title="Quantization error of one trained matrix", yscale="log")
ax.legend(fontsize=8)
save_figure(fig, "20_errors.png")

# %% [markdown]
# Each scale's error is spread evenly over its step (the flat tops in the figure), so the
# error is as large as the step, and the step as large as the largest weight it covers.
# Finer scales cost more of them (one float32 each, stored beside the integers), and
# follow the weights more closely.
#
# ## The whole model, every way: perplexity and size
# `quantize_model` replaces every Linear with a `QuantizedLinear` holding integers and
# scales (4-bit ones packed two to a byte), and with `embedding=True` also the token
# table, which the output layer shares. Perplexity (e^loss) on pydoc's held-out 10%:

# %%
held_out = tok.encode(train_val_split(load_corpus("pydoc"))["val"][:3_000 if FAST else 30_000])


def weight_bytes(model: GPT) -> int:
    """Bytes of every array the model stores: weights, integers and scales alike."""
    return sum(p.data.nbytes for p in model.parameters())


settings = [("float32", None, None, False), ("int8 per channel", 8, None, False),
            ("int8 per channel + embedding", 8, None, True), ("int4 per channel", 4, None, False),
            ("int4 groups of 64", 4, 64, False), ("int4 groups of 32", 4, 32, False),
            ("int4 groups of 32 + embedding", 4, 32, True)]
table, reference = [], None
for name, bits, group_size, embedding in settings:
    model = small_trained_model()[0]
    if bits:
        quantize_model(model, bits, group_size, embedding)
    perplexity = float(np.exp(text_loss(model, held_out)))
    reference = reference or perplexity
    table.append((name, weight_bytes(model), perplexity))
    print(f"{name:30s} {weight_bytes(model) / 1024:7.0f} KiB  perplexity {perplexity:.3f} "
          f"({perplexity / reference - 1:+.2%})")

fig, ax = plt.subplots(figsize=(5.5, 3.6))
for name, size, perplexity in table:
    ax.plot(size / 1024, perplexity, "o")
    ax.annotate(name, (size / 1024, perplexity), fontsize=7, xytext=(4, 2), textcoords="offset points")
ax.set(xlabel="weights stored (KiB)", ylabel="held-out perplexity", title="The pydoc model, quantized")
save_figure(fig, "20_size_and_perplexity.png")

# %% [markdown]
# On this small model every way stays close to float32: the change is printed beside each
# row, and 8 bits moves perplexity by well under a percent. At this size the differences
# between the 4-bit ways are small enough to go either way; the RMS errors above are the
# steadier measure of what the finer scales buy. The bytes are where the ways differ: the
# integers are a quarter (8 bits) or an eighth (4 bits) of float32, plus one float32 per
# scale. bench/RESULTS.md measures the same on a BPE model, whose table is a larger part of
# it, and on GPT-2's shape (file sizes, a fresh process's memory), with `tinyllm quantize`.
#
# GPT-2 124M's weights, counted for each width (its shape only), and the share of its
# token table, which only `embedding=True` quantizes:

# %%
for name, bits, group_size, embedding in (settings[0], settings[2], settings[6]):
    with skip_init():                          # zeros: only the shapes matter here
        gpt2_shape = GPT(GPTConfig.from_preset("gpt2"))
    if bits is None:
        print(f"GPT-2 124M's token table: {gpt2_shape.wte.weight.size / gpt2_shape.num_parameters():.0%} of its "
              f"weights (the pydoc model's: {pretrained.wte.weight.size / pretrained.num_parameters():.1%})")
    else:
        quantize_model(gpt2_shape, bits, group_size, embedding)
    print(f"GPT-2 124M, {name}: {weight_bytes(gpt2_shape) / 2**20:.0f} MiB")
del gpt2_shape

# %% [markdown]
# ## OpenAI's GPT-2, when its files are here
# With the README's "OpenAI's GPT-2" download in `gpt2/` (`shared.GPT2_DIR`), the same ways
# on the real model: its perplexity (per BPE token) on the start of pydoc's held-out text.

# %%
if (GPT2_DIR / "model.safetensors").is_file():
    gpt2_tok = load_checkpoint(GPT2_DIR, device="cpu")["tokenizer"]
    gpt2_text = gpt2_tok.encode(train_val_split(load_corpus("pydoc"))["val"][:2_000 if FAST else 8_000])
    for name, bits, group_size, embedding in (settings[0], settings[2], settings[4], settings[6]):
        gpt2 = load_checkpoint(GPT2_DIR, device="cpu")["model"]
        if group_size and gpt2.config.n_embd % group_size:     # (a small stand-in for GPT-2 may be narrower)
            print(f"GPT-2, {name}: skipped, groups of {group_size} do not divide its width {gpt2.config.n_embd}")
            continue
        if bits:
            quantize_model(gpt2, bits, group_size, embedding)
        print(f"GPT-2, {name:30s} {weight_bytes(gpt2) / 2**20:5.0f} MiB  perplexity "
              f"{np.exp(text_loss(gpt2, gpt2_text)):.3f} on {len(gpt2_text):,} tokens")
    del gpt2
else:
    print(f"no GPT-2 in {GPT2_DIR.resolve()}: see the README's \"OpenAI's GPT-2\" to download its four files")

# %% [markdown]
# ## From the command line
#
#     tinyllm quantize --ckpt out --bits 8 --out out-int8
#     tinyllm quantize --ckpt out --bits 4 --group-size 64 --embedding --out out-int4
#     tinyllm eval --ckpt out-int4 --split val
#     tinyllm sample --ckpt out-int4 --prompt "The for statement"
#
# A quantized checkpoint samples, predicts and evaluates like any other; it does not
# train (fine-tune the float checkpoint it came from).
#
# ## What you now know
# - Round-to-nearest quantization stores q = round(w / s) and one scale s per group;
#   the error is at most half a step, and the step is set by the group's largest weight.
# - Finer scales (per output channel, then small groups) follow the weights and cut the
#   error, for one float per group.
# - 8 bits cost almost nothing in perplexity; 4 bits halve the bytes again, and the
#   finer their scales, the smaller their error.
#
# **Exercise**: 20.1 `quantize` (`tinyllm/quantize.py`).
