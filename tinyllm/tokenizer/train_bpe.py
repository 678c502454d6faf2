"""Training byte-pair encoding: repeatedly merge the most frequent adjacent pair.

Start with every word as its UTF-8 bytes (ids 0-255). Count every adjacent pair
of ids across the corpus, merge the most frequent pair into a new id (256, 257,
...) everywhere, and repeat. The list of merges, in order, is the tokenizer.

The textbook loop recounts every pair after every merge. Here the counts are
kept up to date instead: a merge of (a, b) can only change the pairs inside the
words that contain (a, b), so only those words are touched. Two structures make
that fast:

    where[pair]        the words that contain ``pair``
    heap               (-count, pair) entries; the best pair is on top

When a count changes we push a fresh heap entry and leave the old one in place;
a popped entry whose count no longer matches is stale and skipped ("lazy
deletion"). Tie rule: the highest count wins; among equal counts the smallest
``(left_id, right_id)`` wins, which is exactly the heap's tuple order.
"""
from __future__ import annotations

import heapq
import sys
import time
from collections import defaultdict
from typing import Callable, Iterable


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids``, scanning left to right, by ``new_id``.

    >>> merge_pair([5, 6, 6, 6, 5, 6], (6, 6), 99)
    [5, 99, 6, 5, 6]
    """
    # BEGIN EXERCISE 5.1: merge_pair: scan left to right, replacing each (a, b) by new_id
    a, b = pair
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    # END EXERCISE


def train_merges(word_counts: dict[bytes, int], num_merges: int, first_id: int = 256,
                 on_merge: Callable[[int, tuple[int, int], int], None] | None = None) -> list[tuple[int, int]]:
    """Learn up to ``num_merges`` merges from distinct words and their frequencies.

    Returns the merged pairs in order; merge ``i`` creates id ``first_id + i``.
    Stops early when no pair is left (every word is a single token).
    ``on_merge(index, pair, count)`` is called after each merge (progress output).
    """
    words = [list(w) for w in word_counts]          # each distinct word, as a list of ids
    freqs = list(word_counts.values())              # how often each word occurs
    counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for i, (w, f) in enumerate(zip(words, freqs)):
        for pair in zip(w, w[1:]):
            counts[pair] += f
            where[pair].add(i)
    heap = [(-c, pair) for pair, c in counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[int, int]] = []
    while len(merges) < num_merges:
        best = _pop_best(heap, counts)
        if best is None:
            break
        count, pair = best
        new_id = first_id + len(merges)
        merges.append(pair)
        changed = set()
        for i in where.pop(pair):                    # only the words that contain the pair
            old, f = words[i], freqs[i]
            new = merge_pair(old, pair, new_id)
            # BEGIN EXERCISE 5.2: update the pair counts (and the pair -> words index) after merging one word
            old_pairs, new_pairs = list(zip(old, old[1:])), list(zip(new, new[1:]))
            for p in old_pairs:                      # take the old word's pairs out...
                counts[p] -= f
            for p in new_pairs:                      # ...and put the new word's pairs in
                counts[p] += f
                if new_id in p:                      # only pairs with the new token are new here
                    where[p].add(i)
            for p in set(old_pairs).difference(new_pairs):
                if p != pair:
                    where[p].discard(i)
            # END EXERCISE
            changed.update(old_pairs)
            changed.update(new_pairs)
            words[i] = new
        del counts[pair]
        changed.discard(pair)
        for p in changed:                            # fresh heap entries for changed counts
            if counts[p] > 0:
                heapq.heappush(heap, (-counts[p], p))
            else:
                del counts[p]
                where.pop(p, None)
        if on_merge:
            on_merge(len(merges) - 1, pair, count)
    return merges


def _pop_best(heap: list, counts: dict) -> tuple[int, tuple[int, int]] | None:
    """The live top of the heap as (count, pair), skipping stale entries; None when empty."""
    while heap:
        neg_count, pair = heapq.heappop(heap)
        if counts.get(pair) == -neg_count:
            return -neg_count, pair
    return None


def train_merges_slowly(word_counts: dict[bytes, int], num_merges: int,
                        first_id: int = 256) -> list[tuple[int, int]]:
    """The textbook version: recount every pair before every merge. Same result, far slower;
    kept as the reference the fast trainer is tested against."""
    words = [(list(w), f) for w, f in word_counts.items()]
    merges: list[tuple[int, int]] = []
    while len(merges) < num_merges:
        counts: dict[tuple[int, int], int] = defaultdict(int)
        for w, f in words:
            for pair in zip(w, w[1:]):
                counts[pair] += f
        if not counts:
            break
        pair = min(counts, key=lambda p: (-counts[p], p))  # highest count, then smallest pair
        words = [(merge_pair(w, pair, first_id + len(merges)), f) for w, f in words]
        merges.append(pair)
    return merges


class MergeProgress:
    """Prints progress about once a second: merges done, merges/s, and the latest new token as text."""

    def __init__(self, total: int, stream=None):
        self.total, self.stream = total, stream or sys.stderr
        self.start = self.last = time.perf_counter()

    def __call__(self, index: int, token: bytes, count: int) -> None:
        now = time.perf_counter()
        if now - self.last < 1.0 and 0 < index < self.total - 1:  # first, last, and once a second
            return
        self.last = now
        rate = (index + 1) / max(now - self.start, 1e-9)
        text = token.decode("utf-8", errors="replace")
        print(f"merge {index + 1:6d}/{self.total}  {rate:8.0f} merges/s  count {count:7d}  new token {text!r}",
              file=self.stream, flush=True)

    def finish(self, done: int) -> None:
        seconds = time.perf_counter() - self.start
        early = "; stopped early, every pre-token is already one token" if done < self.total else ""
        print(f"learned {done} merges in {seconds:.1f} s ({done / max(seconds, 1e-9):.0f} merges/s){early}",
              file=self.stream, flush=True)


def count_words(chunks: Iterable[str]) -> dict[bytes, int]:
    """Frequency of each distinct pre-token, as UTF-8 bytes."""
    counts: dict[bytes, int] = defaultdict(int)
    for chunk in chunks:
        counts[chunk.encode("utf-8")] += 1
    return dict(counts)
