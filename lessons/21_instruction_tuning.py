# %% [markdown]
# # Lesson 21 — Instruction tuning: from continuing text to answering, and stopping
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–21.1 are solved
# (this lesson teaches 21.1); or in this checkout, where every exercise is solved.*
#
# **What you will build:** a dataset of questions and answers made from the Python
# reference that ships with CPython; the template that lays each out, with the loss
# counted on the answer only; a small model pretrained on the reference, then tuned on
# the questions; and the two side by side on questions about topics held out of tuning.
#
# A pretrained model continues text. Asked a question, it writes whatever tends to follow
# such a line, and it does not know when to stop. Instruction tuning is fine-tuning on
# examples of a request followed by its answer, always in one template, with three
# choices that make it work: the template marks where the answer begins, the loss counts
# only the answer's tokens (the model is not taught to write questions), and every answer
# ends with `<|endoftext|>`, so that generation can stop there.

# %%
from shared import FAST, exercises_before, reference_model
from tinyllm.checkpoint import load_checkpoint
from tinyllm.data import cache_dir
from tinyllm.instruct import (IGNORE_INDEX, InstructionBatches, encode_example, prompt_text, pydoc_instructions,
                              response_loss, write_instructions)
from tinyllm.sample import generate
from tinyllm.tokenizer import END_OF_TEXT
from tinyllm.train import TrainConfig, train

exercises_before(21)

# %% [markdown]
# ## The data: questions the reference answers in its own words
# `pydoc_instructions` turns each of the reference's topics into up to three questions:
# "Explain …" (answered by the topic's first paragraph), "Show the grammar of …" (its first
# grammar block) and "Give an example of …" (its first `>>>` example). Every eighth topic
# is held out: its questions form the validation split, so that we can ask about topics
# the tuning never showed an answer for (the base model did read their text in pretraining).

# %%
examples = pydoc_instructions()
splits = {name: [e for e in examples if e["split"] == name] for name in ("train", "val")}
print(f"{len(examples)} examples: {len(splits['train'])} to tune on, {len(splits['val'])} held out")
for e in examples[:2]:
    print(f"\n{e['instruction']!r}\n -> {e['output'][:200]!r}")

# %% [markdown]
# ## The template, and the mask
# One example becomes one sequence: the prompt (instruction headers and the question),
# the answer, and `<|endoftext|>`. Training predicts each next token, as always, but
# **exercise 21.1** (`encode_example` in `tinyllm/instruct.py`) sets the targets of
# every prompt position to `ignore_index` (−100), which the cross-entropy leaves out of
# its mean (lesson 14 did the same by hand). What remains is the answer and its stop.

# %%
base_dir = reference_model()
base, tok = (load_checkpoint(base_dir, device="cpu")[k] for k in ("model", "tokenizer"))
base.eval()
example = splits["train"][0]
print(prompt_text(example) + example["output"] + END_OF_TEXT)
inputs, targets = encode_example(tok, example)
scored = targets != IGNORE_INDEX
print(f"{len(inputs)} positions; {scored.sum()} scored (the answer's tokens and the end of text), "
      f"{(~scored).sum()} not (the prompt's)")
print("the first scored target:", repr(tok.decode([int(targets[scored][0])])),
      "| the last:", repr(tok.decode([int(targets[scored][-1])])))

# %% [markdown]
# Batches hold examples of different lengths: each is padded to the longest in its batch
# with targets that are ignored too (`InstructionBatches`, which serves the training loop
# as `TokenBatches` does). The base model: 2 blocks, 128 wide, a BPE vocabulary of 1024
# trained on the reference, with `<|endoftext|>` between its topics, and contexts of 256
# tokens, long enough for most answers to end inside them.
#
# ## Tuning
# `tinyllm train --init-from BASE --instructions FILE.jsonl` does the rest: it is
# lesson 14's fine-tuning with these batches. A few passes over the examples; more would
# fit the training answers better and the held-out ones worse.

# %%
work = cache_dir() / "lessons" / "instructions"
write_instructions(examples, work / "pydoc.jsonl")
steps = 10 if FAST else 80
train(TrainConfig(init_from=str(base_dir), instructions=str(work / "pydoc.jsonl"), out=str(work / "tuned"),
                  max_iters=steps, eval_interval=steps, eval_iters=2, batch_size=8, lr=1e-3, warmup_iters=10,
                  sample_tokens=0, log_interval=max(1, steps // 4), device="cpu"))
tuned = load_checkpoint(work / "tuned", device="cpu")["model"].eval()

# %% [markdown]
# ## Base against tuned, on held-out topics
# The answer loss (nats per answer token, the prompt not counted) on the held-out
# questions, and each model's answers to them, sampled at temperature 0.7 for at most
# 150 tokens: how many end with `<|endoftext|>` on their own.

# %%
batches = InstructionBatches(examples, tok, base.config.block_size)
stop = tok.special_tokens[END_OF_TEXT]
answers = {}
for name, model in (("base", base), ("tuned", tuned)):
    answers[name] = [generate(model, tok.encode(prompt_text(e)), 20 if FAST else 150, temperature=0.7, seed=i,
                              stop_token=stop)[len(tok.encode(prompt_text(e))):] for i, e in enumerate(splits["val"])]
    stopped = sum(a[-1] == stop for a in answers[name])
    print(f"{name:5s}: answer loss on held-out questions {response_loss(model, batches, 'val'):.3f}; "
          f"{stopped} of {len(splits['val'])} answers stop on their own")
for i in (0, 1, 2):
    print(f"\n{splits['val'][i]['instruction']!r}")
    for name in answers:
        text = tok.decode([t for t in answers[name][i] if t != stop])
        print(f"  {name}: {text[:300]!r}")
    print(f"  the reference: {splits['val'][i]['output'][:300]!r}")

# %% [markdown]
# Read the answers against each other. The base model continues the prompt as it would
# any text, blank lines and fragments of other topics, until it happens on an end of
# text or runs out of tokens. The tuned one starts writing at once, one short passage,
# and stops far more often (the counts above). What it says is only as good as what a
# model this small learned in two minutes of pretraining: the tuning teaches the form of
# an answer, not new facts, and the answer loss moves far less than the stopping does.
#
# ## From the command line
#
#     python -c "from tinyllm.instruct import *; write_instructions(pydoc_instructions(), 'pydoc.jsonl')"
#     tinyllm train --init-from BASE --instructions pydoc.jsonl --max-iters 80 --lr 1e-3 --out out/instruct
#     tinyllm chat --ckpt out/instruct
#
# `--lora-rank` (lesson 19) combines with `--instructions`: the same tuning, on adapters.
#
# ## What you now know
# - Instruction tuning is fine-tuning on request → answer examples in one template.
# - The loss counts only the answer (the prompt's targets are ignored), and each answer
#   ends with an end-of-text token that generation stops at.
# - It changes how a model answers (its form, its length) more than what it knows.
#
# **Exercise**: 21.1 `encode_example`'s response mask (`tinyllm/instruct.py`).
