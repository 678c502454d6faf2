"""Compression with a language model: the model predicts each token, an arithmetic coder writes it.

Lesson 11 shows that a model's cross-entropy is the size of a lossless code for a text;
this module is that code, for any bytes:

- **Tokens and escapes.** The bytes are read as UTF-8 (bytes that are not valid UTF-8
  kept as themselves) and cut into tokens. What the tokenizer cannot encode (a character
  outside a char model's vocabulary, invalid UTF-8, binary) is *escaped*: an ESCAPE symbol,
  then the raw byte at 8 bits. The escape's probability is learned from the stream as it
  goes (``escape_frequency``). Escaped bytes are not shown to the model.
- **Frequencies.** Each step the model's logits give probabilities, quantized to integer
  frequencies: every token at least 1 (no token is impossible), about TOKEN_TOTAL in all.
- **Streams.** The tokens are cut into ``streams`` pieces coded side by side, one model
  batch row each: a step costs one forward pass for all of them. Each stream starts
  without context, which costs a little ratio. Past ``block_size`` the context slides:
  the cache restarts from the last half of the window.
- **Determinism.** The decoder must see exactly the frequencies the encoder used, so both
  run the same steps: the same batch, the same incremental KV-cache forwards, float32
  logits turned into frequencies in float64 on the host. Guaranteed: the same machine,
  backend, library versions and thread settings. Not guaranteed: another device (the file
  records it and decompressing elsewhere is refused by name) or another CPU or BLAS, where
  the last bits of a logit can differ; then the decoded bytes miss the original's sha256,
  stored in the file, and decompress raises. It never returns wrong bytes.

The container, every number big-endian or as a varint (7 bits a byte, low first, the top
bit set on all but the last): MAGIC (4 bytes, the version in its last), a CRC-32 of all
that follows (4), the fingerprints of the model's weights and of the tokenizer (8 + 8, the
start of their sha256), the device (1: 0 cpu, 1 cuda), the start of the original's
sha256 (16), its length, the number of streams, and per stream its symbol count and coded
length; then the streams' coded bytes, one after another.
"""
from __future__ import annotations

import hashlib
import math
import struct
import zlib
from typing import Callable

import numpy as np

from .arithmetic_coder import ArithmeticDecoder, ArithmeticEncoder
from .backend import to_numpy
from .checkpoint import weights_sha256
from .sample import check_writes_left_to_right, document_start
from .tensor import no_grad
from .tokenizer.any_bytes import token_bytes_table, tokens_and_escapes

MAGIC = b"TLZ\x01"
TOKEN_TOTAL = 1 << 28           # the token frequencies of a step add up to at most this
ESCAPE_LIMIT = 1 << 29          # and the escape's is at most this: the sum stays within MAX_TOTAL (2^30)
MAX_STREAMS = 64                # by default: as many streams as make pieces of TOKENS_PER_STREAM, up to this
TOKENS_PER_STREAM = 512
Progress = Callable[[int, int, int], None]   # (bytes done, bytes in all, bits written so far)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Logits (S, V) -> softmax probabilities (S, V), in float64 on the host."""
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def token_frequencies(probs: np.ndarray) -> np.ndarray:
    """Probabilities (S, V) -> integer frequencies (S, V): floor(p * (TOKEN_TOTAL - V)) + 1, so each
    is at least 1 and each row adds up to at most TOKEN_TOTAL."""
    return np.floor(probs * (TOKEN_TOTAL - probs.shape[-1])).astype(np.int64) + 1


def escape_frequency(token_total: int, escapes: int, tokens: int) -> int:
    """The ESCAPE symbol's frequency beside tokens adding up to ``token_total``: its odds against a
    token are (escapes + 1/64) / (tokens + 1), counting this stream's symbols so far. Text, which
    rarely escapes, pays a fraction of a bit per stream for the possibility; binary, after a few
    escapes, little more than the 8 bits of each byte."""
    return int(min(ESCAPE_LIMIT, max(1, token_total * (64 * escapes + 1) // (64 * tokens + 64))))


class _Predictor:
    """The model on every stream at once, one token per step; the KV cache restarts from the last
    half of the window when the window outgrows block_size."""

    def __init__(self, model, start: list[int], streams: int):
        self.model, self.block = model, model.config.block_size
        self.window = np.tile(np.array(start[-self.block:]), (streams, 1))   # (S, T): tokens in context
        self.cache = None

    def logits(self) -> np.ndarray:
        """(S, V) float32: each stream's logits for its next token."""
        if self.cache is None or self.window.shape[1] > self.block:
            self.window = self.window[:, -max(1, self.block // 2):] if self.cache else self.window
            self.cache, feed = self.model.new_cache(), self.window
        else:
            feed = self.window[:, -1:]
        logits, _ = self.model(feed, cache=self.cache)
        return to_numpy(logits.data[:, -1])

    def append(self, tokens: np.ndarray) -> None:
        self.window = np.concatenate([self.window, tokens[:, None]], axis=1)


DEVICES = ("cpu", "cuda")


def _fingerprints(model, tokenizer) -> dict:
    return {"model": bytes.fromhex(weights_sha256(model))[:8], "tokenizer": tokenizer.fingerprint()[:8],
            "device": model.device}


def _split(tokens: list[int], escapes: dict[int, bytes], streams: int) -> list[tuple[list, dict]]:
    """Cut the tokens into ``streams`` runs of (nearly) equal length; escapes go with the token they
    precede, the ones after the last token with the last stream."""
    bounds = np.linspace(0, len(tokens), streams + 1).round().astype(int)
    pieces = []
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        end = b + 1 if k == streams - 1 else b      # the last stream also takes the trailing escapes
        pieces.append((tokens[a:b], {i - a: escapes[i] for i in range(a, end) if i in escapes}))
    return pieces


def _step_tables(predictor: "_Predictor") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step's coding tables for every stream: probabilities, frequencies, each token's start
    (the frequencies before it) and the total, all (S, V) but the total (S,)."""
    probs = probabilities(predictor.logits())
    freqs = token_frequencies(probs)
    ends = np.cumsum(freqs, axis=1)
    return probs, freqs, ends - freqs, ends[:, -1]


@no_grad()
def compress(model, tokenizer, data: bytes, streams: int | None = None, progress: Progress | None = None,
             stats: dict | None = None) -> bytes:
    """``data`` compressed with ``model``'s predictions (see the module docstring); ``decompress``
    with the same model and tokenizer gives it back. ``streams``: how many pieces are coded side by
    side (more: faster, a little larger; None: one per TOKENS_PER_STREAM tokens, at most MAX_STREAMS).
    ``stats``, when given, receives the coded bits beside the
    bound: the model's cross-entropy on the same streams plus 8 bits per escaped byte."""
    check_writes_left_to_right(model)
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"compress takes bytes, got {type(data).__name__} (for text: text.encode('utf-8'))")
    if streams is not None and streams < 1:
        raise ValueError(f"the number of streams must be at least 1, got {streams}")
    data = bytes(data)
    tokens, escapes = tokens_and_escapes(tokenizer, data)
    if streams is None:
        streams = min(MAX_STREAMS, len(tokens) // TOKENS_PER_STREAM)
    pieces = _split(tokens, escapes, max(1, min(streams, len(tokens))))
    S = len(pieces)
    coders = [ArithmeticEncoder() for _ in range(S)]
    counts = np.zeros((S, 2), dtype=np.int64)       # per stream: tokens and escapes coded so far
    bound_bits = 0.0
    steps = max(len(toks) + (len(toks) in escaped) for toks, escaped in pieces)
    with model.evaluating():                         # dropout off: both sides must predict alike
        predictor = _Predictor(model, document_start(tokenizer), S)
        for step in range(steps):
            probs, freqs, starts, totals = _step_tables(predictor)
            fed = np.zeros(S, dtype=np.int64)       # the token each stream shows the model next
            for s, (toks, escaped) in enumerate(pieces):
                coder, total = coders[s], int(totals[s])
                for byte in escaped.get(step, b""):
                    escape = escape_frequency(total, counts[s, 1], counts[s, 0])
                    coder.encode(total, escape, total + escape)   # ESCAPE sits after the last token
                    coder.encode(byte, 1, 256)                    # then the raw byte: 8 bits
                    counts[s, 1] += 1
                    bound_bits += 8
                if step < len(toks):
                    token = toks[step]
                    escape = escape_frequency(total, counts[s, 1], counts[s, 0])
                    coder.encode(int(starts[s, token]), int(freqs[s, token]), total + escape)
                    counts[s, 0] += 1
                    bound_bits -= math.log2(probs[s, token])
                    fed[s] = token
            predictor.append(fed)
            if progress:
                progress(len(data) * (step + 1) // steps, len(data), sum(c.bit_count for c in coders))
    # The decoder reads zeros past the end of a stream, so the zero bytes that end one need not be stored.
    payloads = [coder.finish().rstrip(b"\0") for coder in coders]
    here = _fingerprints(model, tokenizer)
    body = (here["model"] + here["tokenizer"] + bytes([DEVICES.index(here["device"])]) + _digest(data)
            + _varints([len(data), S] + [int(n) for c, p in zip(counts, payloads) for n in (c.sum(), len(p))])
            + b"".join(payloads))
    blob = MAGIC + struct.pack(">I", zlib.crc32(body)) + body
    if stats is not None:
        stats.update(size=len(blob), coded_bits=8 * sum(map(len, payloads)), bound_bits=bound_bits, streams=S,
                     tokens=len(tokens), escaped_bytes=int(counts[:, 1].sum()))
    return blob


@no_grad()
def decompress(model, tokenizer, blob: bytes, progress: Progress | None = None) -> bytes:
    """The bytes ``compress`` was given, from its output and the same model and tokenizer.
    Raises a ValueError, naming the problem, for a damaged file, another model, tokenizer or
    device, or decoded bytes that miss the original's checksum; never returns wrong bytes."""
    check_writes_left_to_right(model)
    header, payloads = _read_container(bytes(blob))
    _check_same_model(header, _fingerprints(model, tokenizer))
    S = len(payloads)
    pieces_of = token_bytes_table(tokenizer, model.config.vocab_size)
    decoders = [ArithmeticDecoder(p) for p in payloads]
    left = np.array([symbols for symbols, _ in header["streams"]], dtype=np.int64)   # symbols still to decode
    counts = np.zeros((S, 2), dtype=np.int64)
    outputs: list[list[bytes]] = [[] for _ in range(S)]
    length, done, coded_bits = header["length"], 0, 8 * sum(map(len, payloads))
    with model.evaluating():                         # dropout off: both sides must predict alike
        predictor = _Predictor(model, document_start(tokenizer), S)
        while left.any():
            _, freqs, starts, totals = _step_tables(predictor)
            fed = np.zeros(len(left), dtype=np.int64)
            for s in np.flatnonzero(left):
                decoder, total = decoders[s], int(totals[s])
                while left[s]:
                    escape = escape_frequency(total, counts[s, 1], counts[s, 0])
                    target = decoder.target(total + escape)
                    left[s] -= 1
                    if target >= total:                                  # ESCAPE: a raw byte follows
                        decoder.decode(total, escape, total + escape)
                        byte = decoder.target(256)
                        if not 0 <= byte < 256:
                            raise ValueError(_MISMATCH)
                        decoder.decode(byte, 1, 256)
                        outputs[s].append(bytes([byte]))
                        counts[s, 1] += 1
                        done += 1
                        continue
                    token = int(np.searchsorted(starts[s], target, side="right")) - 1
                    if token < 0:
                        raise ValueError(_MISMATCH)
                    decoder.decode(int(starts[s, token]), int(freqs[s, token]), total + escape)
                    outputs[s].append(pieces_of[token])
                    counts[s, 0] += 1
                    done += len(pieces_of[token])
                    fed[s] = token
                    break                                               # one token per stream per step
            predictor.append(fed)
            if progress:
                progress(min(done, length), length, coded_bits)
    data = b"".join(b"".join(out) for out in outputs)
    if len(data) != length or _digest(data) != header["sha256"]:
        raise ValueError(_MISMATCH)
    return data


_MISMATCH = ("the decoded bytes do not match the original's sha256: the model's predictions here differ from "
             "those the compressor used (another CPU, BLAS library, library version or thread count?); "
             "decompress where it was compressed")


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:16]


def _varints(numbers: list[int]) -> bytes:
    """Each number in 7-bit groups, lowest first; the top bit says another group follows."""
    out = bytearray()
    for n in numbers:
        while n >= 0x80:
            out.append(0x80 | (n & 0x7F))
            n >>= 7
        out.append(n)
    return bytes(out)


def _read_varint(blob: bytes, at: int) -> tuple[int, int]:
    """The number starting at ``at`` and where the next one starts."""
    n, shift = 0, 0
    while True:
        if at >= len(blob) or shift > 63:
            raise ValueError("the compressed file's header is cut short or malformed")
        n |= (blob[at] & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if blob[at - 1] < 0x80:
            return n, at


def _read_container(blob: bytes) -> tuple[dict, list[bytes]]:
    """The header and the streams' payloads of a compressed file, after checking it is whole."""
    if blob[:3] != MAGIC[:3]:
        raise ValueError(f"not a tinyllm compressed file: it starts with {blob[:4]!r}, not {MAGIC!r}")
    if blob[3:4] != MAGIC[3:]:
        raise ValueError(f"a tinyllm compressed file of version {blob[3] if len(blob) > 3 else '?'}; "
                         f"this tinyllm reads version {MAGIC[3]}")
    if len(blob) < 8 or struct.unpack(">I", blob[4:8])[0] != zlib.crc32(blob[8:]):
        raise ValueError("the compressed file is damaged: its CRC-32 does not match its contents "
                         "(truncated, or a byte changed after it was written)")
    if len(blob) < 41 or blob[24] >= len(DEVICES):
        raise ValueError("the compressed file's header is cut short or malformed")
    header = {"model": blob[8:16], "tokenizer": blob[16:24], "device": DEVICES[blob[24]], "sha256": blob[25:41]}
    header["length"], at = _read_varint(blob, 41)
    count, at = _read_varint(blob, at)
    if not 1 <= count <= max(1, header["length"]):
        raise ValueError(f"the compressed file's header is malformed ({count} streams)")
    numbers = []
    for _ in range(2 * count):
        n, at = _read_varint(blob, at)
        numbers.append(n)
    header["streams"] = streams = list(zip(numbers[0::2], numbers[1::2]))
    offsets = np.cumsum([at] + [size for _, size in streams])
    if offsets[-1] != len(blob) or sum(n for n, _ in streams) > header["length"]:
        raise ValueError("the compressed file's stream table does not match its size")
    return header, [blob[a:b] for a, b in zip(offsets[:-1], offsets[1:])]


def _check_same_model(header: dict, here: dict) -> None:
    for key, what in (("model", "a model with other weights"), ("tokenizer", "another tokenizer")):
        if header[key] != here[key]:
            raise ValueError(f"this file was compressed with {what} ({key} fingerprint {header[key].hex()}; "
                             f"this one's is {here[key].hex()}): decompress with the model that compressed it")
    if header.get("device") != here["device"]:
        raise ValueError(f"this file was compressed on {header.get('device')!r} and is being decompressed on "
                         f"{here['device']!r}: the two compute logits that differ in their last bits, so "
                         f"decompress on {header.get('device')!r} (--device)")
