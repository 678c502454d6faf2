# %% [markdown]
# # Lesson 17 — The GPT, piece by piece: what each part buys
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–17.1 are solved
# (this lesson teaches 17.1); or in this checkout, where every exercise is solved.*
#
# **What you will build:** the GPT of lessons 07–08 assembled one part at a time, as
# "Let's build GPT" does, each stage trained for the same steps on the same pydoc
# batches: a bigram, then attention with one head, several heads, an MLP, residual
# connections, LayerNorm, and finally the full stack of blocks. A table and a figure of
# the validation loss per stage say what each part buys.
#
# `tinyllm/stages.py` holds the model: `StagedGPT(config, stage)` is made of the GPT's
# own modules, and its `forward` (exercise 17.1) wires in only the parts its stage has.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure
from tinyllm import manual_seed, optim
from tinyllm.data import TokenBatches, encode_corpus, load_corpus
from tinyllm.model import GPTConfig
from tinyllm.stages import STAGES, StagedGPT
from tinyllm.tokenizer import CharTokenizer
from tinyllm.train import estimate_loss, train_step

exercises_before(17)
text = load_corpus("pydoc")
tok = CharTokenizer.train(text)
batches = TokenBatches(encode_corpus(text, tok), block_size=64)
config = GPTConfig.from_preset("baby", vocab_size=tok.vocab_size, n_layer=2 if FAST else 4)
print(f"every stage: {config.n_embd} wide, contexts of {config.block_size} characters; "
      f"'multi-head' and later: {config.n_head} heads; 'blocks': {config.n_layer} blocks")

# %% [markdown]
# ## Seven models, the same training
# Each stage starts from the same seed (GPT-2's init, lesson 08) and trains for the same
# steps on the same batches (12 windows of 64 characters), with lesson 09's AdamW, warmup
# and cosine decay. Then its loss on held-out text. One more column: the spread of what
# reaches the output layer at initialisation, before any step (a forward hook, lesson 15).

# %%
steps = 20 if FAST else 1000
rows = []
for stage in STAGES:
    manual_seed(0)
    model = StagedGPT(config, stage)
    seen = []
    remove = model.lm_head.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].numpy().std()))
    model(batches.get_batch("val", 12, np.random.default_rng(0))[0])
    remove()
    opt = optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(1)                            # the same batches for every stage
    began = time.perf_counter()
    for step in range(steps):
        opt.lr = optim.cosine_lr(step, 1e-3, 1e-4, warmup_steps=steps // 10, decay_steps=steps)
        train_step(model, opt, batches, 12, rng)
    seconds = time.perf_counter() - began
    losses = estimate_loss(model, batches, 12, 5 if FAST else 40, np.random.default_rng(2))
    rows.append((stage, sum(p.size for p in model.parameters()), losses["train"], losses["val"], seconds))
    print(f"{stage:>10}: {rows[-1][1]:>9,} parameters | signal at the head at init {seen[0]:.1e} | "
          f"train {losses['train']:.3f} | val {losses['val']:.3f} | {seconds:5.1f} s")

fig, ax = plt.subplots(figsize=(6.5, 3.6))
ax.bar([row[0] for row in rows], [row[3] for row in rows], color="C0")
for i, row in enumerate(rows):
    ax.text(i, row[3] + 0.03, f"{row[3]:.2f}", ha="center", fontsize=8)
ax.axhline(math.log(tok.vocab_size), ls="--", c="gray", label="ln V (guessing)")
ax.set(ylabel="validation loss (nats/char)", title=f"Building the GPT up: {steps} steps each", ylim=(0, None))
ax.tick_params(axis="x", labelsize=8)
ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "17_stages.png")

# %% [markdown]
# ## What each part buys
# Read the table from the top, the numbers beside the words:
#
# - **bigram**: the next character from the current one alone (lesson 04's model, here
#   through a 128-wide embedding and an output layer).
# - **one head, multi-head, mlp**: attention lets each position gather from the ones
#   before it, and the MLP computes on what was gathered. Yet stacked without residual
#   connections, at GPT-2's init, these stages end *above* the bigram in this run. The
#   signal column says why: each Linear layer of std 0.02 on a 128-wide input multiplies
#   the spread by about 0.02·√128 ≈ 0.23, so what reaches the output layer starts tens to
#   thousands of times smaller than the embeddings' 0.02, and the steps go into growing it
#   back before the extra parts can pay. (Lesson 15 showed the opposite trouble, too large.)
# - **residual**: each part adds to the stream instead of replacing it: the embeddings'
#   signal reaches the output unchanged, the gradient reaches every part directly (lesson
#   08), and the attention and MLP of the stages before now help.
# - **layernorm**: each part reads a stream scaled to spread 1, whatever the init did to
#   it. Here it is the largest single drop.
# - **blocks**: depth, several blocks each computing on what the one before produced.
#
# These are one seed, one size and 1000 steps: the order of the parts and their worth
# change with the init, the budget and the data ("Let's build GPT" makes the same walk on
# Shakespeare, with PyTorch's larger default init, and there attention helps at once). An
# ablation measures a part in a setting; it is how a design is argued for, one setting at
# a time.
#
# ## What you now know
# - Attention and the MLP let a model read and compute beyond the current token, but
#   parts stacked without residual connections pass on a shrinking signal.
# - Residual connections and LayerNorm are what let the parts stack and train.
# - Ablations like this one, the same training with one part more, measure a design in
#   one setting; their answers change with the setting.
#
# **Exercise**: 17.1 `StagedGPT.forward` (`tinyllm/stages.py`).
