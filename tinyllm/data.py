"""Text in, batches of token ids out.

    corpus (a name or a file) -> text -> tokenizer -> one long array of ids
    -> 90% train / 10% validation -> random (B, T+1) windows -> inputs x and targets y

The target at position t is simply the token at t + 1: a GPT learns to predict
the next token everywhere in the window at once.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .tokenizer import ByteLevelBPE, CharTokenizer, Tokenizer, load_tokenizer


def load_corpus(name_or_path: str) -> str:
    """``"pydoc"``: the English reference text inside every CPython (``pydoc_data.topics``);
    anything else: a UTF-8 text file."""
    if name_or_path == "pydoc":
        from pydoc_data.topics import topics
        text = "\n\n".join(topics[key] for key in sorted(topics))
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"no corpus file at {path} (use a text file, or 'pydoc')")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text: {e}") from None
    if not text:
        raise ValueError(f"the corpus {name_or_path!r} is empty")
    return text


def make_tokenizer(kind: str, text: str, vocab_size: int = 512, verbose: bool = False) -> Tokenizer:
    """``"char"``: one id per character of ``text``; ``"bpe"``: byte-level BPE trained on
    ``text`` to ``vocab_size``; anything else: a saved tokenizer file."""
    if kind == "char":
        return CharTokenizer.train(text)
    if kind == "bpe":
        return ByteLevelBPE.train(text, vocab_size, verbose=verbose)
    return load_tokenizer(kind)


def encode_corpus(text: str, tokenizer: Tokenizer) -> np.ndarray:
    """All of ``text`` as one array of ids: uint16 when every id fits (half the memory), else uint32."""
    dtype = np.uint16 if tokenizer.vocab_size <= 2 ** 16 else np.uint32
    return np.array(tokenizer.encode(text), dtype=dtype)


class TokenBatches:
    """Random windows of a token array, split 90/10 into train and validation."""

    def __init__(self, ids: np.ndarray, block_size: int, val_fraction: float = 0.1):
        n_val = int(len(ids) * val_fraction)
        self.splits = {"train": ids[: len(ids) - n_val], "val": ids[len(ids) - n_val:]}
        self.block_size = block_size
        for name, part in self.splits.items():
            if len(part) < block_size + 1:
                raise ValueError(f"the {name} split has {len(part)} tokens, fewer than one block of "
                                 f"{block_size} + 1: use a longer corpus or a smaller --block-size")

    def get_batch(self, split: str, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(x, y), each (batch_size, block_size) int64; y is x shifted left by one token."""
        data = self.splits[split]
        starts = rng.integers(0, len(data) - self.block_size, batch_size)
        windows = data[starts[:, None] + np.arange(self.block_size + 1)].astype(np.int64)  # (B, T+1)
        return windows[:, :-1], windows[:, 1:]
