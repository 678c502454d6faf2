"""Any bytes as tokens, with escapes for what a tokenizer cannot encode (tinyllm/compress.py uses it).

A tokenizer reads text; a compressor must take any file. The bytes are read as UTF-8
with Python's "surrogateescape" error handler: a byte that is not part of valid UTF-8
becomes a lone surrogate character (U+DC80..U+DCFF), which turns back into the same byte.
Runs of characters the tokenizer can encode become tokens; the rest (those surrogates, and,
for a char tokenizer, characters outside its vocabulary) are kept as raw bytes, "escaped".
"""
from __future__ import annotations

import regex


def tokens_and_escapes(tokenizer, data: bytes) -> tuple[list[int], dict[int, bytes]]:
    """``data`` as token ids and escaped bytes: ``escapes[i]`` holds the raw bytes that come just
    before token ``i`` (``i == len(tokens)``: after the last token). Special-token strings such as
    "<|endoftext|>" in the data are encoded as the ordinary text they are."""
    text = data.decode("utf-8", "surrogateescape")
    refused = sorted(c for c in set(text) if not _encodable(tokenizer, c))
    tokens: list[int] = []
    escapes: dict[int, bytes] = {}
    table: dict[int, bytes] = {}
    position = 0
    runs = regex.finditer("[" + "".join(regex.escape(c) for c in refused) + "]+", text) if refused else ()
    for run in runs:
        tokens += _encode_exactly(tokenizer, text[position:run.start()], table)
        escapes[len(tokens)] = run.group().encode("utf-8", "surrogateescape")
        position = run.end()
    tokens += _encode_exactly(tokenizer, text[position:], table)
    return tokens, escapes


def token_bytes_table(tokenizer, vocab_size: int) -> list[bytes]:
    """Each id's bytes, for ids 0..vocab_size-1 (a model may have more ids than its tokenizer: b"")."""
    return [token_bytes(tokenizer, i) if i < tokenizer.vocab_size else b"" for i in range(vocab_size)]


def token_bytes(tokenizer, i: int) -> bytes:
    """Token ``i``'s bytes (a byte-level BPE token may hold part of a character: decode_bytes)."""
    return tokenizer.decode_bytes([i]) if hasattr(tokenizer, "decode_bytes") else tokenizer.decode([i]).encode()


def _encodable(tokenizer, character: str) -> bool:
    if 0xD800 <= ord(character) <= 0xDFFF:     # a surrogate: a byte of invalid UTF-8, or not text at all
        return False
    try:
        tokenizer.encode(character, allowed_special="none")
    except ValueError:                         # a char tokenizer without this character
        return False
    return True


def _encode_exactly(tokenizer, text: str, table: dict[int, bytes]) -> list[int]:
    """``text`` encoded, after checking that its tokens' bytes give back its bytes (else no compressor
    could return the file)."""
    ids = tokenizer.encode(text, allowed_special="none")
    for i in set(ids) - table.keys():
        table[i] = token_bytes(tokenizer, i)
    if b"".join(table[i] for i in ids) != text.encode("utf-8"):
        raise ValueError(f"the tokenizer does not give back the text it encodes (for {text[:40]!r}): "
                         "its tokens' bytes differ from the text's")
    return ids

