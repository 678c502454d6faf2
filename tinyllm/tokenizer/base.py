"""What every tokenizer offers, and its file format.

A tokenizer turns text into a list of integer ids and back. Both kinds in
tinyllm (``CharTokenizer`` and ``ByteLevelBPE``) save to one JSON file whose
``"type"`` field names the class; ``load_tokenizer(path)`` reads either.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Callable

from ..files import write_atomically


class Tokenizer:
    """The shared interface: ``encode``, ``decode``, ``vocab_size``, ``save``, ``load``."""

    def encode(self, text: str, allowed_special: str | set = "none_raise") -> list[int]:
        """Text -> ids. ``allowed_special`` says what to do with special-token strings such as
        ``"<|endoftext|>"`` in ``text``, for a tokenizer that has special tokens (see ByteLevelBPE)."""
        raise NotImplementedError

    def decode(self, ids) -> str:
        """Ids -> text."""
        raise NotImplementedError

    def stream_decoder(self) -> Callable[[int], str]:
        """A function to feed ids one at a time, as they are sampled: it returns the text each adds."""
        return lambda i: self.decode([i])

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def to_dict(self) -> dict:
        """The JSON-ready description this tokenizer saves (``"type"`` included)."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict) -> "Tokenizer":
        """The tokenizer ``to_dict`` described."""
        raise NotImplementedError

    def fingerprint(self) -> bytes:
        """sha256 of what ``to_dict`` describes (keys sorted): equal for equal tokenizers, whatever file
        they came from (the token cache's key, and compressed files' check of their tokenizer)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode("utf-8")).digest()

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as one JSON file, atomically (a reader never sees half a file)."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=1)
        write_atomically(path, lambda f: f.write(text.encode("utf-8")))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Read a file ``save`` wrote; it must hold this kind of tokenizer."""
        tok = load_tokenizer(path)
        if not isinstance(tok, cls):
            raise ValueError(f"{path} holds a {type(tok).__name__}, not a {cls.__name__}")
        return tok


def check_text(text) -> None:
    """Tokenizers read text: a ``str``. Bytes (say, a file opened in binary) are refused by name."""
    if not isinstance(text, str):
        hint = " (decode bytes first: data.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
        raise TypeError(f"encode expects text (a str), got {type(text).__name__}{hint}")


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Read a tokenizer saved by ``save``, whichever kind it is."""
    from . import TOKENIZER_TYPES
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"no tokenizer file at {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a tokenizer file (not valid JSON: {e})") from None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in TOKENIZER_TYPES:
        raise ValueError(f"{path}: unknown tokenizer type {kind!r}; expected one of {sorted(TOKENIZER_TYPES)}")
    try:
        return TOKENIZER_TYPES[kind].from_dict(data)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: corrupt {kind} file ({type(e).__name__}: {e})") from None
