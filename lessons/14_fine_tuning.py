# %% [markdown]
# # Lesson 14 — Fine-tuning: new text, old knowledge
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–13.1 are solved
# (this lesson adds none); or in this checkout, where every exercise is solved.*
#
# **What you will build:** the small GPT trained on Python's docs (lessons 10–11),
# first pushed by a few steps on one sentence, then taught to write Python *code* in a
# few hundred steps; beside it, a new model trained on the same code for the same steps
# from random weights; and a measurement of what the fine-tuned model forgets.
#
# Pretraining is the expensive part, and much of what it teaches (frequent words,
# spaces and line breaks, how brackets pair) is useful beyond its own corpus.
# Fine-tuning starts from the trained weights instead of random ones and trains on the
# new text, usually at a smaller learning rate. Nothing else changes: it is lesson
# 09's loop. GPT-2 is fine-tuned the same way (`tinyllm train --init-from gpt2`).

# %%
import matplotlib.pyplot as plt
import numpy as np

from shared import (CODE_MODULES, FAST, HELD_OUT_MODULE, exercises_before, save_figure, small_trained_model,
                    source_code)
from tinyllm import Tensor, functional as F, manual_seed, optim
from tinyllm.data import TokenBatches, load_corpus, train_val_split
from tinyllm.model import GPT
from tinyllm.sample import generate
from tinyllm.metrics import text_loss
from tinyllm.train import train_step

exercises_before(14)
pretrained, tok = small_trained_model()

# %% [markdown]
# ## The smallest fine-tuning: one sentence, "New York City" → "New York Zoo"
# We measure the loss of two continuations of "I love New York ", counting only the
# continuation's characters (the prompt positions get the target `ignore_index`, -100),
# then take a few gradient steps on the sentence ending in "Zoo", with a fresh copy of
# the trained model.

# %%
model, _ = small_trained_model()
prompt = "I love New York "


def continuation_loss(ending: str) -> Tensor:
    """Mean cross-entropy of the characters of ``ending`` after ``prompt``."""
    ids = tok.encode(prompt + ending)
    targets = np.array(ids[1:])
    targets[: len(prompt) - 1] = -100           # do not score the prompt itself
    logits, _ = model(np.array([ids[:-1]]))
    return F.cross_entropy(logits, targets[None])


model.train()
opt = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
history = {"Zoo": [], "City": []}
for step in range(5 if FAST else 15):
    for ending in history:
        history[ending].append(continuation_loss(ending).item())
    loss = continuation_loss("Zoo")
    opt.zero_grad()
    loss.backward()
    opt.step()
print("loss of 'Zoo' per step: ", " ".join(f"{v:.2f}" for v in history["Zoo"]))
print("loss of 'City' per step:", " ".join(f"{v:.2f}" for v in history["City"]))
fig, ax = plt.subplots(figsize=(5, 3.5))
for ending, values in history.items():
    ax.plot(values, "o-", label=f"'{prompt}{ending}'")
ax.set(xlabel="gradient steps on the 'Zoo' sentence", ylabel="loss of the ending (nats/char)")
ax.legend()
save_figure(fig, "14_new_york_zoo.png")

# %% [markdown]
# The loss of "Zoo" falls step after step: training is nothing more than this,
# repeated over millions of sentences. Fine-tuning on one sentence also drags along
# what the model believes about others: the loss of "City" moves too (printed above).

# %% [markdown]
# ## The new text: Python's own source code
# Like pydoc, the standard library's source ships with every Python. We fine-tune on
# twenty modules and hold one out (`random`) to measure on code the model never
# trained on. The model's tokenizer knows only the characters of pydoc; the few others
# in the source (backticks and dollar signs, mostly: a few hundred of ~375,000) are dropped.

# %%
code = "\n".join(source_code(name, tok) for name in CODE_MODULES)
eval_chars = 3_000 if FAST else 8_000
held_out_code = tok.encode(source_code(HELD_OUT_MODULE, tok)[:eval_chars])
held_out_docs = tok.encode(train_val_split(load_corpus("pydoc"))["val"][:eval_chars])  # text it never trained on
print(f"code to fine-tune on: {len(code):,} characters; held out: {eval_chars:,} of code, {eval_chars:,} of docs")
print(code[:300])

# %% [markdown]
# ## Before
# The pretrained model on held-out code and on held-out docs (mean nats per character,
# as in lesson 11), and what it writes after `def `:

# %%
print(f"pretrained: code {text_loss(pretrained, held_out_code):.3f}, docs {text_loss(pretrained, held_out_docs):.3f}")
prompt = tok.encode("def ")
print(tok.decode(generate(pretrained, prompt, 120 if not FAST else 30, temperature=0.8, seed=0)))

# %% [markdown]
# ## Fine-tuning, and the same steps from scratch
# Both runs see the same batches of code. The fine-tuned run uses a third of the
# pretraining learning rate: its weights are already good, and big steps would spend
# that. Every few steps both are measured on the held-out code, and the fine-tuned
# one also on the held-out docs.

# %%
steps, every = (20, 10) if FAST else (200, 25)
batches = TokenBatches(np.array(tok.encode(code)), block_size=pretrained.config.block_size)


def fine_tune(model: GPT, lr: float) -> dict[str, list[float]]:
    """``steps`` AdamW steps on the code; the held-out losses every ``every`` steps."""
    opt = optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(0)                        # the same batches for both runs
    curves = {"step": [], "code": [], "docs": []}
    for step in range(steps + 1):
        if step % every == 0:
            curves["step"].append(step)
            curves["code"].append(text_loss(model, held_out_code))
            curves["docs"].append(text_loss(model, held_out_docs))
        if step < steps:
            train_step(model, opt, batches, 12, rng)        # lesson 09's step: 12 windows, clipped at 1
    return curves


fine_tuned, _ = small_trained_model()                     # a second copy of the pretrained weights
tuned = fine_tune(fine_tuned.train(), lr=3e-4)
manual_seed(0)
scratch = fine_tune(GPT(pretrained.config), lr=1e-3)      # random weights, pretraining's learning rate
for i, step in enumerate(tuned["step"]):
    print(f"step {step:4d} | held-out code: fine-tuned {tuned['code'][i]:.3f}, from scratch {scratch['code'][i]:.3f}"
          f" | held-out docs: fine-tuned {tuned['docs'][i]:.3f}")

fig, ax = plt.subplots(figsize=(5.5, 3.8))
ax.plot(tuned["step"], tuned["code"], "o-", label="fine-tuned: held-out code")
ax.plot(scratch["step"], scratch["code"], "o-", label="from scratch: held-out code")
ax.plot(tuned["step"], tuned["docs"], "o--", label="fine-tuned: held-out docs")
ax.set(xlabel="steps on code", ylabel="loss (nats/char)", title="Fine-tuning vs training from scratch",
       ylim=(0, None))
ax.legend()
save_figure(fig, "14_fine_tuning.png")

# %% [markdown]
# Three things to read off the picture:
# - **Transfer.** The fine-tuned model starts where the new model is still trying to
#   get to, and it stays ahead: what the docs taught it helps on code too.
# - **Adaptation.** Its loss on the new kind of text falls within a few dozen steps;
#   its sample below has taken on the shapes of code (indentation, `self.`, brackets).
# - **Forgetting.** Its loss on the docs rises: the weights now serve the new text.
#   ("Catastrophic forgetting"; mixing some of the old text into the batches, or a
#   smaller learning rate, keeps more of the old.)

# %%
model = fine_tuned.eval()
print(tok.decode(generate(model, prompt, 120 if not FAST else 30, temperature=0.8, seed=0)))

# %% [markdown]
# ## From the command line
# `tinyllm train --init-from` does all of this for any checkpoint, keeping its model
# and its tokenizer. Write the code to a file first, keeping only the characters the
# tokenizer knows as `source_code` does (a character model cannot encode any others;
# GPT-2's byte-level BPE encodes any text):
#
#     tinyllm train --init-from out --data code.txt --lr 3e-4 --min-lr 3e-4 --warmup-iters 0 \
#         --max-iters 200 --out out/code
#
# and for OpenAI's GPT-2 (lesson 13), the README's "OpenAI's GPT-2" has the command.
#
# ## What you now know
# - Fine-tuning is training that starts from trained weights, usually with a smaller
#   learning rate: the loop, the loss and the optimizer are the ones you wrote.
# - What a model learned on one text transfers to another: it needs far fewer steps
#   than a new model to reach the same loss.
# - It also forgets: the old text's loss rises as the weights move to the new one.
