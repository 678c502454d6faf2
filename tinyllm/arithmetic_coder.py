"""Arithmetic coding: a whole message as one number, each symbol narrowing an interval.

Start with the interval [0, 1). To code a symbol of probability p, split the interval
into one piece per symbol, each as wide as its probability, and keep the symbol's piece.
After the last symbol, any number inside the final interval identifies the whole message,
and its width is the product of the probabilities: writing such a number takes about
-log2(product) = the sum of -log2 p bits. A decoder that knows the same probabilities
finds the piece the number falls in, which names the symbol, and narrows the same way.

With exact fractions the interval shrinks without end. This coder (Witten, Neal and
Cleary, 1987) works with PRECISION-bit integers instead:

- **interval**: ``low`` and ``high`` are integers, the interval is [low, high]; a symbol
  is given by integer frequencies: its piece [start, start + freq) of a total.
- **renormalisation**: once the interval lies in the lower half, the next bit of every
  number in it is 0, so 0 is written and the interval doubled; in the upper half, 1.
  The interval stays wider than a quarter of the range, so a piece of frequency 1 of a
  total up to MAX_TOTAL never shrinks to nothing.
- **underflow**: an interval straddling the middle, inside the middle half, is doubled
  around the middle without knowing the next bit yet; ``pending`` counts those doublings,
  and once a bit is decided, that many opposite bits follow it.
- **termination**: two more bits (plus the pending ones) pick a number inside the final
  interval; the decoder reads zeros past the end.

Frequencies come from the caller: tinyllm/compress.py turns a model's logits into them.
"""
from __future__ import annotations

import numpy as np

PRECISION = 32                 # bits in low and high
FULL = 1 << PRECISION          # the integers 0 .. FULL-1 stand for [0, 1)
HALF = FULL >> 1
QUARTER = FULL >> 2
MAX_TOTAL = QUARTER            # the largest total of frequencies: every piece keeps a width of 1 or more


def narrow(low: int, high: int, start: int, freq: int, total: int) -> tuple[int, int]:
    """The interval [low, high] narrowed to a symbol's piece [start, start + freq) of ``total``."""
    # BEGIN EXERCISE 11.1: the interval update: keep the symbol's share of [low, high], in integers
    width = high - low + 1                                 # how many integers the interval holds
    high = low + width * (start + freq) // total - 1       # the piece's end, exclusive, minus one
    low = low + width * start // total                     # the piece's start
    # END EXERCISE
    return low, high


def check_frequencies(start: int, freq: int, total: int) -> None:
    """A piece [start, start + freq) of ``total`` that the coder can use, or a ValueError that says why."""
    if not (0 <= start and 0 < freq and start + freq <= total <= MAX_TOTAL):
        raise ValueError(f"cannot code the piece [{start}, {start + freq}) of a total of {total}: it needs "
                         f"0 <= start, freq >= 1, start + freq <= total <= {MAX_TOTAL}")


class ArithmeticEncoder:
    """Symbols in (``encode``), bits out (``finish`` returns them packed in bytes)."""

    def __init__(self):
        self.low, self.high = 0, FULL - 1
        self.pending = 0          # underflow doublings whose bit is not decided yet
        self.bits: list[int] = []

    def encode(self, start: int, freq: int, total: int) -> None:
        """Code the symbol whose piece of the frequency table is [start, start + freq) of ``total``."""
        self.low, self.high = narrow(self.low, self.high, start, freq, total)
        while True:
            if self.high < HALF:                              # all in the lower half: the bit is 0
                self._emit(0)
            elif self.low >= HALF:                            # all in the upper half: the bit is 1
                self._emit(1)
                self.low, self.high = self.low - HALF, self.high - HALF
            elif self.low >= QUARTER and self.high < HALF + QUARTER:   # straddles the middle, narrowly
                self.pending += 1
                self.low, self.high = self.low - QUARTER, self.high - QUARTER
            else:                                             # wider than a quarter: room enough
                return
            self.low, self.high = 2 * self.low, 2 * self.high + 1

    def _emit(self, bit: int) -> None:
        self.bits.append(bit)
        self.bits.extend([1 - bit] * self.pending)   # the doublings around the middle, now decided
        self.pending = 0

    @property
    def bit_count(self) -> int:
        """Bits written so far (the pending ones not yet)."""
        return len(self.bits)

    def finish(self) -> bytes:
        """End the message: bits naming a number inside the interval, then padded with zeros to whole bytes.
        The interval holds [QUARTER, HALF] (when low < QUARTER) or [HALF, HALF + QUARTER]:
        "01" or "10" followed by zeros is in it."""
        self.pending += 1
        self._emit(0 if self.low < QUARTER else 1)
        return np.packbits(np.array(self.bits, dtype=np.uint8)).tobytes()


class ArithmeticDecoder:
    """Bits in, symbols out: ``target`` says where the number sits, the caller finds the symbol
    whose piece holds it and calls ``decode`` with that piece, exactly as the encoder did."""

    def __init__(self, data: bytes):
        self.bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8)).tolist()
        self.position = 0
        self.low, self.high = 0, FULL - 1
        self.value = 0                  # PRECISION bits of the number, read so far
        for _ in range(PRECISION):
            self.value = 2 * self.value + self._next_bit()

    def _next_bit(self) -> int:
        bit = self.bits[self.position] if self.position < len(self.bits) else 0   # zeros past the end
        self.position += 1
        return bit

    def target(self, total: int) -> int:
        """Where the number lies in the frequency table: the coded symbol's piece holds this count."""
        width = self.high - self.low + 1
        return ((self.value - self.low + 1) * total - 1) // width

    def decode(self, start: int, freq: int, total: int) -> None:
        """Narrow as the encoder did for the symbol found, reading a new bit for each doubling."""
        self.low, self.high = narrow(self.low, self.high, start, freq, total)
        while True:
            if self.high < HALF:
                pass
            elif self.low >= HALF:
                self.low, self.high, self.value = self.low - HALF, self.high - HALF, self.value - HALF
            elif self.low >= QUARTER and self.high < HALF + QUARTER:
                self.low, self.high, self.value = self.low - QUARTER, self.high - QUARTER, self.value - QUARTER
            else:
                return
            self.low, self.high = 2 * self.low, 2 * self.high + 1
            self.value = 2 * self.value + self._next_bit()


def encode_all(symbols, cumulative: list[int]) -> bytes:
    """Code a message of symbols under one fixed frequency table: symbol s has the piece
    [cumulative[s], cumulative[s + 1]) of cumulative[-1]. (A model gives a new table each step.)"""
    encoder, total = ArithmeticEncoder(), cumulative[-1]
    for s in symbols:
        check_frequencies(cumulative[s], cumulative[s + 1] - cumulative[s], total)
        encoder.encode(cumulative[s], cumulative[s + 1] - cumulative[s], total)
    return encoder.finish()


def decode_all(data: bytes, cumulative: list[int], count: int) -> list[int]:
    """The ``count`` symbols ``encode_all`` coded into ``data`` under the same table."""
    decoder, total, symbols = ArithmeticDecoder(data), cumulative[-1], []
    for _ in range(count):
        s = int(np.searchsorted(cumulative, decoder.target(total), side="right")) - 1
        if not 0 <= s < len(cumulative) - 1:
            raise ValueError("corrupt data: the number falls outside the frequency table")
        decoder.decode(cumulative[s], cumulative[s + 1] - cumulative[s], total)
        symbols.append(s)
    return symbols
