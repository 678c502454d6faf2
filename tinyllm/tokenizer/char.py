"""The simplest tokenizer: one id per character, as nanoGPT's shakespeare_char."""
from __future__ import annotations

from collections import Counter

from .base import Tokenizer, check_text


class CharTokenizer(Tokenizer):
    """Ids are positions in the sorted list of the characters seen in the training text."""

    def __init__(self, chars: str):
        if len(set(chars)) != len(chars) or not chars:
            raise ValueError("CharTokenizer needs a non-empty string of distinct characters")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}

    @classmethod
    def train(cls, text: str) -> "CharTokenizer":
        """The vocabulary is every distinct character of ``text``, sorted."""
        if not text:
            raise ValueError("cannot build a character vocabulary from empty text")
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str, allowed_special: str | set = "none_raise") -> list[int]:
        """Text -> ids, one per character. (No special tokens here: ``allowed_special`` is
        accepted so that every tokenizer encodes with the same call.)"""
        check_text(text)
        try:
            return [self.index[c] for c in text]
        except KeyError:
            unknown = [c for c, _ in Counter(c for c in text if c not in self.index).most_common()]
            named = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            what = f"character {named} is" if len(unknown) == 1 else f"characters {named}{more} are"
            raise ValueError(f"{what} not in this tokenizer's vocabulary of {len(self.chars)} characters, "
                             f"which holds those of its training text") from None

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < len(self.chars)]
        if bad:
            raise ValueError(f"token id {bad[0]} is not in the vocabulary (ids 0..{len(self.chars) - 1})")
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict:
        return {"type": "CharTokenizer", "chars": self.chars}

    @classmethod
    def from_dict(cls, data: dict) -> "CharTokenizer":
        return cls(data["chars"])
