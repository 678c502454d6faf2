# %% [markdown]
# # Lesson 16 — Masked and causal language models
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–16.1 are solved
# (this lesson teaches 16.1); or in this checkout, where every exercise is solved.*
#
# **What you will build:** the same Transformer blocks trained two ways on the same text:
# as a *causal* model (GPT: each position sees only the past and predicts the next
# character) and as a *masked* one (BERT: each position sees the whole text, and the
# model fills in characters hidden from it). Then both are asked to fill in blanks in
# held-out text, and to write left to right; and a third mask, the prefix LM's, sits
# between the two.
#
# The only difference in the model is one switch, `GPTConfig(causal=False)`, which drops
# the causal mask from every attention layer. The difference in training is the task.

# %%
import math
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure
from tinyllm import manual_seed, optim
from tinyllm.data import MASK_RATE, TokenBatches, encode_corpus, load_corpus, mask_tokens
from tinyllm.model import GPT, GPTConfig
from tinyllm.sample import generate
from tinyllm.tokenizer import CharTokenizer
from tinyllm.train import train_step

exercises_before(16)
text = load_corpus("pydoc")
tok = CharTokenizer.train(text)
V = tok.vocab_size
MASK = V                                        # one id past the characters: [MASK]
batches = TokenBatches(encode_corpus(text, tok), block_size=64)
config = GPTConfig.from_preset("baby", vocab_size=V + 1, n_layer=2)      # 2 blocks: quicker steps

# %% [markdown]
# ## The masked objective
# A bidirectional model sees every position, the next character included, so "predict
# the next character" would be copying. BERT (Devlin et al., 2019) hides some of the
# input instead and asks for what was there (exercise 16.1, `mask_tokens`): each position
# is chosen with probability 15%; a chosen one becomes [MASK] 80% of the time, a random
# character 10%, and stays itself 10%; the loss counts the chosen positions only (the
# others get the target -100, `ignore_index`, lesson 04).

# %%
x, _ = batches.get_batch("train", 1, np.random.default_rng(0))
inputs, targets = mask_tokens(x, MASK, V, np.random.default_rng(0))
show = lambda ids: "".join("□" if i == MASK else tok.decode([int(i)]) for i in ids).replace("\n", "⏎")  # noqa: E731
print("text:   ", show(x[0]))
print("input:  ", show(inputs[0]), "  (□ = [MASK])")
print("targets:", "".join(tok.decode([int(t)]) if t != -100 else "·" for t in targets[0]).replace("\n", "⏎"))

# %% [markdown]
# ## Two models, the same steps
# Same shape, same start, same batches of pydoc, same optimizer: one causal and trained
# on the next character everywhere, one bidirectional and trained on the masked
# characters. Per step the causal model learns from every position and the masked one
# from 15% of them, so we also keep the causal model as it was after 15% of the steps,
# when it had learned from as many characters as the masked model has at the end.

# %%
steps = 20 if FAST else 2500


def train_masked(model: GPT) -> None:
    opt = optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(1)
    for step in range(steps):
        x, _ = batches.get_batch("train", 12, rng)
        inputs, targets = mask_tokens(x, MASK, V, rng)
        _, loss = model(inputs, targets)
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    print(f"masked model: loss on its masked characters {loss.item():.3f} at the last step")


def train_causal(model: GPT) -> dict:
    """Train ``model``; returns its weights after MASK_RATE of the steps."""
    opt = optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(1)
    for step in range(steps):
        if step == round(MASK_RATE * steps):
            early = {name: value.copy() for name, value in model.state_dict().items()}
        loss, _ = train_step(model, opt, batches, 12, rng)
    print(f"causal model: loss on the next characters {loss.item():.3f} at the last step")
    return early


manual_seed(0)
causal = GPT(config)
causal_early = GPT(config)
causal_early.load_state_dict(train_causal(causal))
manual_seed(0)
masked = GPT(replace(config, causal=False))
train_masked(masked)
for model in (causal, causal_early, masked):
    model.eval()

# %% [markdown]
# ## Fill in the blank
# Held-out windows of 64 characters, one character blanked at position 32. The masked
# model reads the window with [MASK] there and both sides around it; a causal model can
# only read the 32 characters before it (its prediction at position 31 is for position 32).
# Top-1 accuracy and the loss on the hidden character:

# %%
n_windows = 64 if FAST else 512
val = np.asarray(batches.splits["val"])
starts = np.random.default_rng(2).integers(0, len(val) - 64, n_windows)
windows = val[starts[:, None] + np.arange(64)].astype(np.int64)      # (N, 64)
blank = 32
truth = windows[:, blank]


def scored(logits_at_blank: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean nats) of predicting ``truth`` from (N, V+1) logits."""
    z = logits_at_blank[:, :V]                                        # [MASK] is never the answer
    log_p = z - z.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    return float((z.argmax(1) == truth).mean()), float(-log_p[np.arange(len(truth)), truth].mean())


with_blank = windows.copy()
with_blank[:, blank] = MASK
early_steps = round(MASK_RATE * steps)
results = {
    f"causal, {steps} steps, left side only": scored(causal(windows[:, :blank])[0].numpy()[:, -1]),
    f"causal, {early_steps} steps, left side only": scored(causal_early(windows[:, :blank])[0].numpy()[:, -1]),
    "masked, both sides": scored(masked(with_blank)[0].numpy()[:, blank]),
    "masked, left side only": scored(masked(np.concatenate([windows[:, :blank], np.full((n_windows, 1), MASK)],
                                                           axis=1))[0].numpy()[:, -1]),
}
for name, (accuracy, nats) in results.items():
    print(f"{name:38}: {accuracy:6.1%} right, {nats:.3f} nats on the hidden character")

fig, ax = plt.subplots(figsize=(7, 3.2))
ax.barh(list(results), [accuracy for accuracy, _ in results.values()], color=["C0", "C0", "C1", "C1"])
ax.invert_yaxis()
ax.set(xlabel="top-1 accuracy on the blanked character", xlim=(0, 1),
       title=f"Fill in the blank: {n_windows} held-out windows")
fig.tight_layout()
save_figure(fig, "16_fill_in.png")

# %% [markdown]
# Read the lines in pairs. The masked model against itself with the right side taken
# away (the last two lines): what the text after a blank is worth. The masked model
# against the causal one after the same number of characters learned from (second and
# third lines): reading both sides is the masked model's advantage. And the causal model
# after all its steps (first line): per step it learned from every position, the masked
# one from 15%, which is the price of the masked objective. In this lesson's run the
# printed numbers show each of these; BERT pays the price with longer training.
#
# ## Writing left to right
# A causal model writes by predicting the next character again and again (lesson 10).
# The masked model can be made to try: put a [MASK] after the text, take its likeliest
# filling, append, and again. Both from the same prompt, greedy:

# %%
prompt = tok.encode("The for statement")
n_new = 20 if FAST else 80
print("causal:", repr(tok.decode(generate(causal, prompt, n_new, top_k=1))))
ids = list(prompt)
for _ in range(n_new):
    logits, _ = masked(np.array([ids[-(config.block_size - 1):] + [MASK]]))
    ids.append(int(logits.numpy()[0, -1, :V].argmax()))
print("masked:", repr(tok.decode(ids)))

# %% [markdown]
# The masked model's text is its guesses for a hole with nothing on its right, strung
# together; it was never trained to continue a text, and `generate` refuses it outright
# (`causal=False` models cannot predict the next token). That is why GPTs are causal:
# one training step teaches every position to predict its next token, and the same model
# then writes. A masked model learns from 15% of positions per step and reads better
# than it writes: BERT-style models are used to understand text (classify it, find
# answers in it), not to generate it.
#
# ## Between the two: a prefix LM
# A prefix LM (UniLM, Dong et al. 2019; one of the variants T5 compared, Raffel et al.
# 2020) lets the positions of a given prefix (a question, a source sentence) see each
# other in both directions, and everything after it see only the past, so it can still
# write its answer left to right. Here are the three masks for 8 positions with a prefix
# of 3 (dark: may look), and the prefix mask used on one example, lesson 07's attention
# by hand: changing a prefix character changes every output, earlier ones too; changing
# a later one changes only the outputs at and after it.

# %%
T, P = 8, 3
causal_mask = np.tril(np.ones((T, T), bool))                         # True: may look
prefix_mask = causal_mask.copy()
prefix_mask[:P, :P] = True
masks = {"causal (GPT)": causal_mask, "bidirectional (BERT)": np.ones((T, T), bool), "prefix LM": prefix_mask}
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
for ax, (name, mask) in zip(axes, masks.items()):
    ax.imshow(mask, cmap="Greys", vmin=0, vmax=1.4)
    ax.set(title=name, xlabel="key (read)", xticks=range(T), yticks=range(T))
axes[0].set_ylabel("query (reading)")
fig.tight_layout()
save_figure(fig, "16_masks.png")


def attend(x: np.ndarray, may_look: np.ndarray) -> np.ndarray:
    """One head of self-attention with q = k = v = x (T, D), each row seeing where may_look is True."""
    scores = np.where(may_look, x @ x.T / math.sqrt(x.shape[1]), -np.inf)
    weights = np.exp(scores - scores.max(1, keepdims=True))
    return (weights / weights.sum(1, keepdims=True)) @ x


x = np.random.default_rng(3).standard_normal((T, 4))
for changed in (P - 1, P + 2):
    moved = x.copy()
    moved[changed] += 1.0
    differs = np.abs(attend(moved, prefix_mask) - attend(x, prefix_mask)).max(1) > 1e-12
    print(f"change position {changed} ({'in the prefix' if changed < P else 'after it'}): outputs that change:",
          [t for t in range(T) if differs[t]])

# %% [markdown]
# ## What you now know
# - Causal and masked language models share their blocks; the attention mask and the
#   task differ.
# - BERT's objective: hide 15% of the positions (80% [MASK], 10% random, 10% kept) and
#   predict what was there; the loss counts those positions only.
# - With both sides to read, a masked model fills blanks better; it cannot write left
#   to right, which a causal model does with the very objective it trained on.
# - A prefix LM is bidirectional over its prefix and causal after it.
#
# **Exercise**: 16.1 `mask_tokens` (`tinyllm/data.py`).
