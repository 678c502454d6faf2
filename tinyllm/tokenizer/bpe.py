"""Byte-level BPE, the tokenizer of GPT-2: train your own, or load GPT-2's released one.

Text -> pre-tokens -> bytes -> merges:

1. A regex cuts the text into pre-tokens (words, numbers, punctuation runs,
   whitespace, each word keeping the space before it: "Hello", " world").
   Merges never cross a pre-token boundary, so " dog" and "dog." share pieces.
2. Each pre-token becomes its UTF-8 bytes: 256 base tokens cover any text.
3. The learned merges are applied in the order they were learned (their rank).

Ids: a trained tokenizer gives byte ``b`` id ``b`` and merge ``i`` id ``256 + i``;
special tokens such as ``<|endoftext|>`` come after. GPT-2's files assign ids
their own way, so the byte ids and each merge's id are stored, not assumed.
"""
from __future__ import annotations

import codecs
import json
import os
from typing import Callable, Iterable

import regex

from ..files import write_atomically
from .base import Tokenizer, check_text
from .train_bpe import MergeProgress, count_words, merge_pair, train_merges

# GPT-2's pre-tokenizer: contractions, letters, numbers, other symbols (each with an
# optional leading space), and whitespace (a run keeps its last space for the next word).
END_OF_TEXT = "<|endoftext|>"   # GPT-2's special token between documents
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# A tokenizer file comes from anywhere: what loading one (from_dict, from_gpt2_files) accepts.
TRUSTED_PATTERNS = {GPT2_PATTERN}   # a file's own regex could backtrack for ever; add yours if you trust it
MAX_IDS = 1_000_000                 # GPT-2: 50,257
MAX_TOKEN_BYTES = 1024              # GPT-2's longest token: 128 bytes; a merge chain must not build megabytes


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte, used in its ``encoder.json`` and ``vocab.bpe``.

    Those files are text, so every byte needs a visible character. Bytes that are
    already printable (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for themselves; the
    others (space, control codes, ...) are given characters from 256 upwards, in order.
    That is why a leading space shows as ``Ġ`` (256 + 32 = U+0120) in GPT-2's vocabulary.
    """
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


class ByteLevelBPE(Tokenizer):
    """Byte-level BPE: ``merges`` is a list of (left_id, right_id, new_id) in rank order."""

    def __init__(self, merges: Iterable[tuple[int, int, int]], byte_ids: list[int] | None = None,
                 special_tokens: dict[str, int] | None = None, pattern: str = GPT2_PATTERN):
        self.merges = [tuple(m) for m in merges]
        self.byte_ids = list(byte_ids) if byte_ids is not None else list(range(256))
        self.special_tokens = dict(special_tokens or {})
        self.pattern = pattern
        self._pre_tokenizer = regex.compile(pattern)
        # pair -> (rank, new id): the encoder merges the lowest-ranked pair first.
        self.ranks = {(a, b): (rank, new) for rank, (a, b, new) in enumerate(self.merges)}
        self.vocab: dict[int, bytes] = {i: bytes([b]) for b, i in enumerate(self.byte_ids)}
        for a, b, new in self.merges:
            self.vocab[new] = self.vocab[a] + self.vocab[b]
        for text, i in self.special_tokens.items():
            self.vocab[i] = text.encode("utf-8")
        self._special_ids = {i: text for text, i in self.special_tokens.items()}
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return max(self.vocab) + 1

    # --- training -------------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: Iterable[str] = (),
              verbose: bool = False, pattern: str = GPT2_PATTERN) -> "ByteLevelBPE":
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``.

        Special tokens are cut out of the text before counting (nothing merges across
        them) and get the ids after the merges. With ``verbose``, progress goes to stderr.
        """
        special_tokens = list(special_tokens)
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise ValueError(f"vocab_size {vocab_size} is below the 256 byte tokens plus "
                             f"{len(special_tokens)} special tokens")
        if not text:
            raise ValueError("cannot train a tokenizer on empty text")
        pre_tokenizer = regex.compile(pattern)
        pieces = _split_on(text, special_tokens) if special_tokens else [text]
        word_counts = count_words(w for piece in pieces if piece not in special_tokens
                                  for w in pre_tokenizer.findall(piece))
        on_merge = None
        if verbose:
            progress, vocab = MergeProgress(num_merges), {b: bytes([b]) for b in range(256)}

            def on_merge(index, pair, count):  # keep the new token's bytes, to show it as text
                vocab[256 + index] = vocab[pair[0]] + vocab[pair[1]]
                progress(index, vocab[256 + index], count)
        pairs = train_merges(word_counts, num_merges, first_id=256, on_merge=on_merge)
        if verbose:
            progress.finish(len(pairs))
        merges = [(a, b, 256 + i) for i, (a, b) in enumerate(pairs)]
        first_special = 256 + len(merges)
        return cls(merges, special_tokens={s: first_special + i for i, s in enumerate(special_tokens)},
                   pattern=pattern)

    # --- encoding ---------------------------------------------------------------
    def encode(self, text: str, allowed_special: str | set = "none_raise") -> list[int]:
        """Text -> ids.

        ``allowed_special`` says what to do with special-token strings in ``text``:
        ``"none_raise"`` (default) raises if one occurs, ``"none"`` encodes them as
        ordinary text, ``"all"`` or a set of strings encodes those as their special ids.
        """
        check_text(text)
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif allowed_special in ("none", "none_raise"):
            allowed = set()
        else:
            allowed = set(allowed_special)
            unknown = allowed - set(self.special_tokens)
            if unknown:
                raise ValueError(f"not special tokens of this tokenizer: {sorted(unknown)}")
        if allowed_special != "none":
            for s in set(self.special_tokens) - allowed:
                if s in text:
                    raise ValueError(f"text contains the special token {s!r}; pass allowed_special='all' "
                                     f"(or a set naming it) to encode it as a special token, or "
                                     f"allowed_special='none' to encode it as plain text "
                                     f"(tinyllm tokenizer encode: --allowed-special all / none)")
        ids: list[int] = []
        for piece in (_split_on(text, sorted(allowed)) if allowed else [text]):
            if piece in allowed:
                ids.append(self.special_tokens[piece])
            else:
                for word in self._pre_tokenizer.findall(piece):
                    ids.extend(self._encode_word(word))
        return ids

    def _encode_word(self, word: str) -> list[int]:
        """One pre-token -> ids, merging the lowest-ranked adjacent pair until none is mergeable."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        # BEGIN EXERCISE 5.3: encode one pre-token: its bytes' ids, then merge the lowest-ranked pair until none is a merge
        ids = [self.byte_ids[b] for b in word.encode("utf-8")]
        never = (len(self.merges), None)                # the rank of a pair that is no merge: after every merge
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, never))
            rank, new_id = self.ranks.get(pair, never)
            if new_id is None:
                break
            ids = merge_pair(ids, pair, new_id)
        # END EXERCISE
        if len(self._cache) < 200_000:
            self._cache[word] = ids
        return ids

    # --- decoding ---------------------------------------------------------------
    def decode_bytes(self, ids) -> bytes:
        """Ids -> the exact bytes they stand for."""
        try:
            return b"".join(self.vocab[int(i)] for i in ids)
        except KeyError as e:
            raise ValueError(f"token id {e.args[0]} is not in the vocabulary (size {self.vocab_size})") from None

    def decode(self, ids) -> str:
        """Ids -> text; byte sequences that are not valid UTF-8 become U+FFFD (as GPT-2 does)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> Callable[[int], str]:
        """Ids one at a time -> text. A character whose UTF-8 bytes are split over several
        tokens ("é" is two bytes; GPT-2 has no token for many) comes out whole, when its last
        byte arrives: decoding each token alone would print two U+FFFD instead."""
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return lambda i: utf8.decode(self.decode_bytes([i]))

    # --- files ------------------------------------------------------------------
    def to_dict(self) -> dict:
        show = bytes_to_unicode()
        return {
            "type": "ByteLevelBPE",
            "about": "merges are [left_id, right_id, new_id] in the order they apply; byte_ids[b] is the "
                     "id of raw byte b; 'tokens' shows each merged token GPT-2 style (a space is Ġ) for "
                     "people to read and is ignored when loading",
            "pattern": self.pattern,
            "byte_ids": self.byte_ids,
            "special_tokens": self.special_tokens,
            "merges": [list(m) for m in self.merges],
            "tokens": {str(new): "".join(show[b] for b in self.vocab[new]) for _, _, new in self.merges},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ByteLevelBPE":
        if data["pattern"] not in TRUSTED_PATTERNS:
            raise ValueError("its pre-tokenizer pattern is not GPT-2's, and a regular expression from a file "
                             "could run for ever; if you trust it, add it to tinyllm.tokenizer.TRUSTED_PATTERNS")
        _check_ids(data["merges"], data["byte_ids"], data["special_tokens"])
        return cls(data["merges"], data["byte_ids"], data["special_tokens"], data["pattern"])

    @classmethod
    def from_gpt2_files(cls, encoder_json: str, vocab_bpe: str) -> "ByteLevelBPE":
        """Load GPT-2's released ``encoder.json`` (token -> id) and ``vocab.bpe`` (merges in rank order)."""
        byte_decoder = {ch: b for b, ch in bytes_to_unicode().items()}
        try:
            with open(encoder_json, encoding="utf-8") as f:
                encoder = json.load(f)
            with open(vocab_bpe, encoding="utf-8") as f:
                lines = [line for line in f.read().split("\n")[1:] if line]  # line 0: "#version: 0.2"
            byte_ids = [encoder[ch] for ch in (bytes_to_unicode()[b] for b in range(256))]
            merges = []
            for line in lines:
                left, right = line.split(" ")
                merges.append((encoder[left], encoder[right], encoder[left + right]))
        except (KeyError, ValueError, TypeError, AttributeError) as e:  # JSON errors are ValueErrors
            raise ValueError(f"{encoder_json} and {vocab_bpe} are not a GPT-2 tokenizer's files "
                             f"({type(e).__name__}: {e})") from None
        specials = {tok: i for tok, i in encoder.items() if tok.startswith("<|") and tok.endswith("|>")}
        try:
            _check_ids(merges, byte_ids, specials)
        except ValueError as e:
            raise ValueError(f"{encoder_json} and {vocab_bpe}: {e}") from None
        tok = cls(merges, byte_ids, specials)
        for token, i in encoder.items():  # the files must agree with each other
            if token not in specials and tok.vocab.get(i) != bytes(byte_decoder[c] for c in token):
                raise ValueError(f"{encoder_json} and {vocab_bpe} disagree about token {token!r} (id {i})")
        return tok

    def save_gpt2_files(self, encoder_json: str | os.PathLike, vocab_bpe: str | os.PathLike) -> None:
        """Write the two files ``from_gpt2_files`` reads (Hugging Face names them vocab.json and
        merges.txt): every token spelled as GPT-2 spells it, and the merges in rank order."""
        if self.pattern != GPT2_PATTERN:
            raise ValueError("GPT-2's files have no place for a pre-tokenizer pattern, and this one is not GPT-2's")
        unmarked = [text for text in self.special_tokens if not (text.startswith("<|") and text.endswith("|>"))]
        if unmarked:
            raise ValueError(f"GPT-2's files mark special tokens as <|...|>, and {unmarked[0]!r} is not")
        show = bytes_to_unicode()
        spelled = {i: "".join(show[b] for b in token) for i, token in sorted(self.vocab.items())
                   if i not in self._special_ids}
        encoder = {text: i for i, text in spelled.items()} | self.special_tokens
        if len(encoder) != len(self.vocab):
            raise ValueError("two of this tokenizer's tokens stand for the same text, and GPT-2's files "
                             "can hold only one of them")
        text = json.dumps(encoder, ensure_ascii=False)
        merges = "#version: 0.2\n" + "".join(f"{spelled[a]} {spelled[b]}\n" for a, b, _ in self.merges)
        write_atomically(encoder_json, lambda f: f.write(text.encode("utf-8")))
        write_atomically(vocab_bpe, lambda f: f.write(merges.encode("utf-8")))


def _check_ids(merges, byte_ids, special_tokens) -> None:
    """Refuse ids a loaded tokenizer cannot stand on, before any token is built: 256 distinct byte
    ids; each merge joining two ids defined before it into a new one, within MAX_TOKEN_BYTES;
    special tokens on ids of their own; every id from 0 to the largest used, within MAX_IDS."""
    def is_id(i) -> bool:
        return isinstance(i, int) and not isinstance(i, bool) and 0 <= i < MAX_IDS
    if len(byte_ids) != 256 or not all(map(is_id, byte_ids)) or len(set(byte_ids)) != 256:
        raise ValueError(f"byte_ids must be 256 distinct ids from 0 to {MAX_IDS - 1}")
    length = {i: 1 for i in byte_ids}          # id -> its token's length in bytes
    if len(merges) > MAX_IDS:
        raise ValueError(f"{len(merges):,} merges: more than the {MAX_IDS:,} ids a tokenizer may have")
    for rank, merge in enumerate(merges):
        if not (isinstance(merge, (list, tuple)) and len(merge) == 3 and all(map(is_id, merge))):
            raise ValueError(f"merge {rank} is {merge!r}, not [left_id, right_id, new_id]")
        a, b, new = merge
        if a not in length or b not in length:
            raise ValueError(f"merge {rank} joins id {a if a not in length else b}, which no byte or earlier "
                             "merge defines")
        if new in length:
            raise ValueError(f"merge {rank} makes id {new}, which is already defined")
        length[new] = length[a] + length[b]
        if length[new] > MAX_TOKEN_BYTES:
            raise ValueError(f"merge {rank} makes a token of {length[new]} bytes, more than {MAX_TOKEN_BYTES}")
    for text, i in special_tokens.items():
        if not (isinstance(text, str) and text and is_id(i)) or i in length:
            raise ValueError(f"special token {text!r} has id {i!r}, which is not an id of its own")
        length[i] = len(text)
    missing = sorted(set(range(max(length) + 1)) - set(length))
    if missing:
        raise ValueError(f"its ids have gaps (no token has id {', '.join(map(str, missing[:5]))}"
                         f"{' …' if len(missing) > 5 else ''}): the model's embedding rows would not match")


def _split_on(text: str, specials: list[str]) -> list[str]:
    """Cut ``text`` around each occurrence of the special strings, keeping them as pieces."""
    alternatives = "|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))
    return [p for p in regex.split(f"({alternatives})", text) if p]
