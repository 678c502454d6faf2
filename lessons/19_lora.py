# %% [markdown]
# # Lesson 19 — LoRA: fine-tuning a small, low-rank change
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–19.1 are solved
# (this lesson teaches 19.1); or in this checkout, where every exercise is solved.*
#
# **What you will build:** a measurement of what a full fine-tune changes (the singular
# values of each weight's update), the LoRA layer that learns such a change as a product
# of two thin matrices, LoRA fine-tunes of four sizes beside a full one on the same
# text and steps, and the merge that folds the change back into the weights.
#
# Fine-tuning (lesson 14) trains every weight, and AdamW keeps two moments for each:
# the optimizer holds twice the model. For GPT-2 124M that is about 1 GB more than the
# model, and for larger models it decides whether a fine-tune fits on a machine at all.
# LoRA (Hu et al., 2021) freezes the weights and learns, for a few chosen matrices, an
# update of low rank r:
#
#     y = W x + b + (alpha / r) · B (A x)        A: (r, n_in), B: (n_out, r)
#
# Only A and B train. The bet is that the change a fine-tune needs has low rank. We
# measure that bet first.

# %%
import matplotlib.pyplot as plt
import numpy as np

from shared import (CODE_MODULES, FAST, HELD_OUT_MODULE, exercises_before, save_figure, small_trained_model,
                    source_code)
from tinyllm import Tensor, optim
from tinyllm.data import TokenBatches, load_corpus, train_val_split
from tinyllm.lora import LoRALinear, apply_lora, lora_settings, merge_lora
from tinyllm.model import GPT, GPTConfig
from tinyllm.nn import skip_init
from tinyllm.metrics import text_loss
from tinyllm.train import train_step

exercises_before(19)
pretrained, tok = small_trained_model()

# %% [markdown]
# ## What a full fine-tune holds in memory
# Per parameter: its float32 weight (4 bytes), its gradient (4) and AdamW's two moments
# (8). Counted for GPT-2 124M's shape (its weights are not needed to count):

# %%
with skip_init():                                   # zeros, not random draws: only the count matters here
    gpt2_shape = GPT(GPTConfig.from_preset("gpt2"))
n = gpt2_shape.num_parameters()
print(f"GPT-2 124M: {n:,} parameters; weights {4 * n / 2**30:.2f} GiB, gradients {4 * n / 2**30:.2f} GiB, "
      f"AdamW's moments {8 * n / 2**30:.2f} GiB")
del gpt2_shape

# %% [markdown]
# ## Is the update low rank? A full fine-tune, measured
# The pydoc model (lessons 10–14) fine-tuned on Python's source for a few hundred steps,
# every weight training, as in lesson 14, but without weight decay, so that each
# matrix's change ΔW = W_after − W_before is only what the gradients asked for. Then the
# singular values of each ΔW: how much of its size (the sum of squared singular values,
# ‖ΔW‖²) lies in its largest r directions. A random matrix of the same shape spreads its
# size evenly; an update that a rank-r LoRA could hold puts nearly all of it in the first r.

# %%
steps = 10 if FAST else 200
code = "\n".join(source_code(name, tok) for name in CODE_MODULES)
eval_chars = 3_000 if FAST else 8_000
held_out_code = tok.encode(source_code(HELD_OUT_MODULE, tok)[:eval_chars])
held_out_docs = tok.encode(train_val_split(load_corpus("pydoc"))["val"][:eval_chars])
batches = TokenBatches(np.array(tok.encode(code)), block_size=pretrained.config.block_size)


def fine_tune(model: GPT, lr: float) -> GPT:
    """``steps`` AdamW steps on the code (the same batches every call), training what requires grad."""
    opt = optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, betas=(0.9, 0.99),
                      weight_decay=0.0)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        train_step(model, opt, batches, 12, rng)
    return model.eval()


full = fine_tune(small_trained_model()[0].train(), lr=3e-4)
before = dict(pretrained.named_parameters())


def top_share(matrix: np.ndarray, r: int) -> float:
    """The share of ‖matrix‖² in its r largest singular values."""
    s2 = np.linalg.svd(matrix, compute_uv=False) ** 2
    return float(s2[:r].sum() / s2.sum())


fig, ax = plt.subplots(figsize=(5.5, 3.8))
print("share of ‖ΔW‖² in the top 8 singular values (a random matrix of the same shape beside it):")
for name, p in full.named_parameters():
    if name.endswith("attn.c_attn.weight"):
        delta = p.numpy() - before[name].numpy()                         # (384, 128) for this model
        noise = np.random.default_rng(0).standard_normal(delta.shape)
        print(f"  {name}: {top_share(delta, 8):.0%}  (random: {top_share(noise, 8):.0%})")
        ranks = np.arange(1, min(delta.shape) + 1)
        ax.plot(ranks, [top_share(delta, r) for r in ranks], label=f"ΔW of {name.split('.attn')[0]}.attn.c_attn")
ax.plot(ranks, [top_share(noise, r) for r in ranks], "k--", label="a random matrix of that shape")
ax.set(xscale="log", xlabel="r, the number of singular directions kept", ylabel="share of ‖ΔW‖²",
       title="How low rank is a full fine-tune's update?", ylim=(0, 1))
ax.legend(fontsize=8)
save_figure(fig, "19_update_spectrum.png")

# %% [markdown]
# The updates are far from random: their first few directions hold several times the
# share a random matrix's would (the printed numbers). They are not exactly low rank
# either: the rest of the size is spread thin over the other directions. LoRA keeps the
# first r and drops the tail; whether the tail matters is a question of loss, which we
# measure below.
#
# ## The layer: a frozen Linear plus B A
# **Exercise 19.1** writes `LoRALinear.forward` in `tinyllm/lora.py`: the frozen layer's
# output plus `scale · B(A(x))`, two thin products through r numbers. A starts small
# and random, B at zero, so at the start the layer is exactly the layer it wraps:

# %%
layer = small_trained_model()[0].h[0].attn.c_attn    # a Linear, 128 -> 384 (of a copy: LoRA freezes it)
lora = LoRALinear(layer, rank=4, alpha=8)
x = Tensor(np.random.default_rng(0).standard_normal((2, 5, 128)).astype(np.float32))
print(f"LoRALinear(rank 4) vs the Linear it wraps, at the start: max |difference| "
      f"{np.abs(lora(x).numpy() - layer(x).numpy()).max()}")
print(f"numbers that train: {lora.lora_A.size + lora.lora_B.size:,} (r·(n_in + n_out)) instead of "
      f"{layer.weight.size:,} (n_in·n_out)")

# %% [markdown]
# ## LoRA against a full fine-tune, on the same text and steps
# Four LoRA fine-tunes of the pydoc model: ranks 1, 4 and 16 on the attention's q, k, v
# projection (`c_attn`, as the LoRA paper adapts W_q and W_v), and rank 4 on every matrix
# of the blocks. All with alpha = 2r, a learning rate ten times the full fine-tune's (3e-3:
# the adapters start from nothing), the same batches and the same number of steps.
# Measured: what trains, AdamW's state (8 bytes per number that trains), the loss on
# held-out code (`random`'s source) and on held-out docs (what the model forgets).

# %%
runs = {"pretrained, no fine-tune": (pretrained, 0),
        "full fine-tune": (full, full.num_parameters())}
for rank, targets in ((1, ("c_attn",)), (4, ("c_attn",)), (16, ("c_attn",)), (4, ("c_attn", "c_proj", "c_fc"))):
    model = apply_lora(small_trained_model()[0].train(), rank=rank, alpha=2 * rank, targets=targets)
    trains = sum(p.size for p in model.parameters() if p.requires_grad)
    runs[f"LoRA r={rank} on {'+'.join(targets)}"] = (fine_tune(model, lr=3e-3), trains)

results = {}
print(f"{'':34s} {'trains':>9s} {'of full':>8s} {'AdamW state':>12s} {'held-out code':>14s} {'held-out docs':>14s}")
for name, (model, trains) in runs.items():
    results[name] = (text_loss(model, held_out_code), text_loss(model, held_out_docs))
    print(f"{name:34s} {trains:9,d} {trains / full.num_parameters():8.1%} {8 * trains / 1024:8.0f} KiB "
          f"{results[name][0]:14.3f} {results[name][1]:14.3f}")

fig, ax = plt.subplots(figsize=(6.5, 3.8))
names = list(results)
ax.barh(names, [results[k][0] for k in names], color=["gray", "C0"] + ["C1"] * (len(names) - 2))
ax.set(xlabel="loss on held-out code (nats/char)", title=f"{steps} steps on Python's source",
       xlim=(min(v[0] for v in results.values()) - 0.1, None))
ax.invert_yaxis()
fig.tight_layout()
save_figure(fig, "19_lora_vs_full.png")

# %% [markdown]
# Read the table from the top. Every fine-tune lowers the held-out code loss below the
# pretrained model's. On this small model and this short budget, the full fine-tune
# gets lowest: in a model this narrow, even rank 16 on one matrix per block trains a few
# percent of what a full fine-tune trains ("of full"), and the spectra above show the
# update's tail is not empty. Larger ranks and more matrices close part of the gap. The
# docs column is what each run forgot (lesson 14): LoRA changes fewer numbers, not
# necessarily less behaviour. The cost side is where LoRA wins by orders of magnitude;
# bench/RESULTS.md measures it at GPT-2's shape ("LoRA beside a full fine-tune"): the
# optimizer's state, peak memory, the step time and the checkpoint, side by side.
#
# ## Merging: the same model, with no extra cost at inference
# After training, `merge_lora` adds (alpha/r)·B A into each adapted W and puts the plain
# Linear back: the same function, now one matrix per layer again.

# %%
name = "LoRA r=4 on c_attn+c_proj+c_fc"
model = runs[name][0]
settings = lora_settings(model)
ids = np.array([tok.encode("def __init__(self, ")])
logits_apart = model(ids)[0].numpy()
merge_lora(model)
print(f"{name}: {len(settings['targets'])} layers merged; max |logit difference| after merging "
      f"{np.abs(model(ids)[0].numpy() - logits_apart).max():.1e}; adapters left: {lora_settings(model)}")

# %% [markdown]
# The difference is float32 rounding: adding B A into W first, or applying W and B A
# separately, rounds differently by a few units in the last place.
#
# ## From the command line
# `tinyllm train --init-from` takes `--lora-rank` (and `--lora-alpha`, `--lora-targets`):
#
#     tinyllm train --init-from out --data code.txt --lora-rank 8 --lora-targets c_attn,c_proj \
#         --lr 3e-3 --max-iters 200 --out out/lora
#
# Its checkpoint holds only the adapters, their optimizer state, and the path and a
# fingerprint (sha256) of the base model's weights; loading it reads the base again and
# refuses one whose weights changed. `tinyllm sample`, `eval` and `export` merge it.
# With OpenAI's GPT-2 (lesson 13) the command is the same with `--init-from gpt2`.
#
# ## What you now know
# - A full fine-tune trains every weight and AdamW keeps two more copies: memory, not
#   arithmetic, is what stops a large fine-tune on small hardware.
# - The change a fine-tune makes is concentrated in a few directions per matrix, but
#   not all of it: measured here by the singular values of ΔW.
# - LoRA learns a rank-r change as B A with W frozen: r·(n_in + n_out) numbers per
#   matrix; B = 0 at the start, so training starts from the pretrained model itself.
# - Merged, a LoRA model is a plain model again: nothing extra at inference.
#
# **Exercise**: 19.1 `LoRALinear.forward` (`tinyllm/lora.py`).
