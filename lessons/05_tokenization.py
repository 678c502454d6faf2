# %% [markdown]
# # Lesson 05 — Tokenization
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–5.3 are solved
# (this lesson teaches 5.1–5.3); or in this checkout, where every exercise is solved.*
#
# **What you will build:** three ways to turn text into integers (characters, UTF-8
# bytes, and byte-level BPE, GPT-2's method), BPE's merges carried out by hand on a
# toy string, a BPE tokenizer trained on Python's docs and what a bigger vocabulary
# buys, and, when its files are present, GPT-2's released tokenizer on the same text.
#
# A model reads integers, not text. The *tokenizer* decides what one integer stands
# for: a character, a byte, or a frequent chunk such as " the". Fewer, longer tokens
# mean the same context window sees more text, at the price of a bigger vocabulary.

# %%
from collections import Counter

import matplotlib.pyplot as plt

from shared import FAST, GPT2_DIR, exercises_before, save_figure
from tinyllm.data import load_corpus
from tinyllm.pretrained import gpt2_tokenizer_files
from tinyllm.tokenizer import ByteLevelBPE, CharTokenizer, merge_pair

exercises_before(5)

sentence = "Tokenizers cut text into pieces: ünïcödé too! 🙂"

# %% [markdown]
# ## Characters and bytes
# One id per character needs a vocabulary of every character ever seen, and fails on
# one it never saw. UTF-8 bytes need only 256 ids and can spell anything, but a
# character like "🙂" costs 4 of them.

# %%
chars = CharTokenizer.train(sentence)
print(f"characters: {len(chars.encode(sentence))} tokens, vocabulary {chars.vocab_size}")
raw = list(sentence.encode("utf-8"))
print(f"UTF-8 bytes: {len(raw)} tokens, vocabulary 256; '🙂' is {list('🙂'.encode('utf-8'))}")

# %% [markdown]
# ## Byte-pair encoding, by hand
# BPE starts from bytes and repeatedly *merges* the most frequent adjacent pair into a
# new token. On "aaabdaaabac" (ids 97 = 'a', 98 = 'b', ...): "aa" is most frequent, so
# it becomes token 256; then "ab" (with 256 before it) and so on. Each merge shortens
# the sequence; the list of merges *is* the tokenizer.

# %%
ids = list("aaabdaaabac".encode())
for new_id in range(256, 259):
    pairs = Counter(zip(ids, ids[1:]))
    pair = min(pairs, key=lambda p: (-pairs[p], p))   # most frequent; ties: the smallest pair
    ids = merge_pair(ids, pair, new_id)
    print(f"merge {pair} -> {new_id}: {ids}")

# %% [markdown]
# ## A BPE tokenizer for Python's documentation
# `ByteLevelBPE.train` does the same on a real corpus, after first cutting the text into
# words with GPT-2's regular expression (so no merge crosses from a word into the
# space or punctuation after it). A token that holds only part of a multi-byte
# character prints as "�": the bytes are all there, as `decode_bytes` shows. Its trainer
# updates pair counts incrementally instead of recounting everything after each merge
# (that is exercise 5.2).

# %%
text = load_corpus("pydoc")[: 100_000 if FAST else None]
bpe = ByteLevelBPE.train(text, vocab_size=300 if FAST else 1024)


def token_text(i: int) -> str:
    return bpe.decode_bytes([i]).decode("utf-8", "replace")


print("first merges:", [token_text(i) for i in range(256, 266)])
print("last merges: ", [token_text(i) for i in range(bpe.vocab_size - 5, bpe.vocab_size)])
pieces = [bpe.decode([i]) for i in bpe.encode(sentence)]
print(f"{len(pieces)} tokens:", "|".join(pieces))
sample = text[:20_000]
print(f"on pydoc text: {len(sample) / len(bpe.encode(sample)):.2f} characters per token")
assert bpe.decode(bpe.encode(sentence)) == sentence  # nothing lost: bytes can spell anything

# %% [markdown]
# ## Encoding: the merges replayed in the order they were learned
# To encode a new word, start from its bytes and apply merges, always the one learned
# *earliest* (lowest rank) among the pairs now adjacent, until no adjacent pair is a
# merge (exercise 5.3). Not left to right: in " cat", if "at" was learned before " c",
# it merges first, as it did in training. Here is one word, step by step:

# %%
word = " function"
steps = [list(word.encode("utf-8"))]
while True:
    ranked = [(bpe.ranks[pair], pair) for pair in zip(steps[-1], steps[-1][1:]) if pair in bpe.ranks]
    if not ranked:
        break
    rank, pair = min(ranked)
    steps.append(merge_pair(steps[-1], pair, bpe.ranks[pair][1]))
    print(f"merge of rank {rank[0]:4d}: " + "|".join(token_text(i) for i in steps[-1]))
assert steps[-1] == bpe.encode(word)

# %% [markdown]
# ## How big a vocabulary?
# Merges are learned one after another, and a later one never changes an earlier one:
# the first k merges of a long training run *are* the tokenizer that training to
# 256 + k would give. So one run to 4096 shows every smaller vocabulary too.

# %%
big = ByteLevelBPE.train(text, vocab_size=600 if FAST else 4096)
assert big.merges[:len(bpe.merges)] == bpe.merges        # the tokenizer above is its beginning
sizes = [256, 512, 600] if FAST else [256, 512, 1024, 2048, 4096]
per_token = [len(sample) / len(ByteLevelBPE(big.merges[:size - 256]).encode(sample)) for size in sizes]
for size, chars_per_token in zip(sizes, per_token):
    print(f"vocabulary {size:5d}: {chars_per_token:.2f} characters per token")
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(sizes, per_token, "o-")
ax.set_xscale("log", base=2)
ax.set_xticks(sizes, [str(size) for size in sizes])
ax.set(xlabel="vocabulary size (256 bytes + merges)", ylabel="characters per token",
       title="Each doubling of the vocabulary buys less", ylim=(0, None))
save_figure(fig, "05_vocabulary_size.png")

# %% [markdown]
# The first merges take the commonest pairs and shorten the text the most; each
# doubling after that buys less. What a bigger vocabulary costs: a row of the
# embedding table and a column of the output layer per token (GPT-2's 50,257 × 768
# are 38.6M of its 124M parameters, lesson 08), and a rare token is seen too few
# times in training to learn it well. What it buys: shorter sequences, so the same
# context sees more text and a step costs less per character.

# %% [markdown]
# ## Special tokens
# GPT-2 learned from documents joined end to end with `<|endoftext|>` between them:
# one extra id after the merges, a token no text spells by accident. Encoding a corpus
# turns that string into the one id (`allowed_special="all"`, what `tinyllm train`
# does). Text from elsewhere is refused by default, so that a user's prompt cannot
# slip in a control token unnoticed; `allowed_special="none"` spells it as plain text.

# %%
with_eot = ByteLevelBPE(bpe.merges, special_tokens={"<|endoftext|>": bpe.vocab_size})
documents = "The end.<|endoftext|>A new start."
print("as a special token:", with_eot.encode(documents, allowed_special="all"))
print("spelled out:       ", with_eot.encode(documents, allowed_special="none"))
try:
    with_eot.encode(documents)
except ValueError as e:
    print("by default:         refused:", str(e).split(";")[0])

# %% [markdown]
# ## GPT-2's released tokenizer
# GPT-2 is code plus parameters, and its tokenizer is part of the parameters: 50,000
# merges learned from web text, published as `encoder.json` and `vocab.bpe` (Hugging
# Face calls the same two files `vocab.json` and `merges.txt`). tinyllm reads them and
# gives the same ids as OpenAI's: "Hello world" is [15496, 995]. This cell looks in the
# folder of the README's "OpenAI's GPT-2" download (`gpt2`, or `TINYLLM_GPT2`). A
# tokenizer fits the text it learned from: on pydoc, GPT-2's 50,257 tokens, learned
# from web text, average fewer characters than our 4096, learned from pydoc itself.

# %%
files = gpt2_tokenizer_files(GPT2_DIR)
if files:
    gpt2 = ByteLevelBPE.from_gpt2_files(*files)
    print("Hello world ->", gpt2.encode("Hello world"))
    print("|".join(gpt2.decode([i]) for i in gpt2.encode(sentence)))
    print(f"on the pydoc sample: {len(sample) / len(gpt2.encode(sample)):.2f} characters per token "
          f"(ours of {big.vocab_size}, trained on this very text: {per_token[-1]:.2f})")
else:
    print(f"(GPT-2's tokenizer files are not in {GPT2_DIR.resolve()}; skipping)")

# %% [markdown]
# ## What you now know
# - Characters: small vocabulary, long sequences, unknown characters fail.
#   Bytes: 256 ids spell anything. BPE: frequent chunks become single tokens.
# - BPE training = repeatedly merge the most frequent adjacent pair; encoding replays
#   the merges in the order they were learned.
# - A tokenizer is trained once and frozen with the model: GPT-2's ids only mean
#   something to GPT-2.
# - Special tokens such as `<|endoftext|>` are ids outside the merges; a corpus uses
#   them, a user's text must ask to.
#
# **Exercises**: 5.1 `merge_pair`, 5.2 the incremental pair-count update in
# `train_merges` (both in `tinyllm/tokenizer/train_bpe.py`), 5.3 encoding one pre-token
# by merge rank (`ByteLevelBPE._encode_word`, `tinyllm/tokenizer/bpe.py`).
