"""Sampling: the trained model "dreams" text, one token at a time.

Each step runs the model on the context, turns the last position's logits into
probabilities, reshapes them (temperature, top-k, top-p) and draws a token,
which joins the context for the next step. The context is cropped to the last
``block_size`` tokens, as GPT-2 does.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .backend import to_numpy
from .model import GPT
from .tensor import no_grad
from .tokenizer import END_OF_TEXT, CharTokenizer


def check_sampling_settings(temperature: float, top_k: int | None = None, top_p: float | None = None,
                            max_new_tokens: int = 0) -> None:
    """Raise a ValueError that names the setting when one of these cannot be used."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature} (for greedy decoding, the likeliest "
                         "token every time, keep the temperature and set top_k=1: --top-k 1)")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1 (None: no top-k filter), got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (None: no top-p filter), got {top_p}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be 0 or more, got {max_new_tokens}")


def check_writes_left_to_right(model: GPT) -> None:
    """Refuse, by name, a model that cannot predict the next token: a bidirectional one
    (``causal=False``) was trained to fill in masked tokens from both sides."""
    if not model.config.causal:
        raise ValueError("predicting the next token needs a causal model; this one (causal=False) sees the "
                         "whole text and was trained to fill in masked tokens")


def next_token_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> np.ndarray:
    """Probabilities over the vocabulary from one position's logits (V,).

    temperature < 1 sharpens, > 1 flattens; top_k keeps the k likeliest tokens;
    top_p keeps the smallest set of likeliest tokens whose probability reaches p.
    """
    check_sampling_settings(temperature, top_k, top_p)
    z = logits.astype(np.float64) / temperature
    # BEGIN EXERCISE 10.1: top-k and top-p: keep the k likeliest / the smallest set reaching mass p
    if top_k is not None:
        kth = np.sort(z)[-min(top_k, len(z))]
        z = np.where(z < kth, -np.inf, z)
    probs = np.exp(z - z.max())
    probs /= probs.sum()
    if top_p is not None:
        order = np.argsort(-probs, kind="stable")
        before = np.cumsum(probs[order]) - probs[order]  # probability of the tokens ranked above
        drop = order[before >= top_p]                     # a token stays if the mass above it is < p
        probs[drop] = 0.0
        probs /= probs.sum()
    # END EXERCISE
    return probs


@no_grad()
def top_next_tokens(model: GPT, ids: Sequence[int], k: int = 10) -> list[tuple[int, float]]:
    """The ``k`` likeliest next tokens after ``ids`` and their probabilities, likeliest first."""
    if not ids:
        raise ValueError("a prediction needs at least one token of context")
    check_writes_left_to_right(model)
    if k < 1:
        raise ValueError(f"the number of tokens to list must be at least 1, got {k}")
    logits, _ = model(np.array([ids[-model.config.block_size:]]))
    probs = next_token_probs(to_numpy(logits.data[0, -1]))
    order = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), float(probs[i])) for i in order]


def document_start(tokenizer) -> list[int]:
    """Where a model starts a fresh text: GPT-2's ``<|endoftext|>`` (its document boundary)
    when the tokenizer has one, else a new line (or, for characters without one, the first)."""
    special = getattr(tokenizer, "special_tokens", {})
    if END_OF_TEXT in special:
        return [special[END_OF_TEXT]]
    if isinstance(tokenizer, CharTokenizer) and "\n" not in tokenizer.index:
        return [0]
    return tokenizer.encode("\n")


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """The ids a continuation starts from: ``prompt`` encoded (an ``<|endoftext|>`` in it is
    GPT-2's document boundary), or, for an empty prompt, a fresh text's ``document_start``."""
    return tokenizer.encode(prompt, allowed_special="all") if prompt else document_start(tokenizer)


def token_piece(tokenizer, token: int) -> str | bytes:
    """A token's text, or its bytes when it holds only part of a character (GPT-2 has
    tokens for single bytes of "é" or "€": as text each would be just U+FFFD)."""
    text = tokenizer.decode([token])
    if "\ufffd" in text and hasattr(tokenizer, "decode_bytes"):
        return tokenizer.decode_bytes([token])
    return text


def token_label(tokenizer, token: int) -> str:
    """``token_piece`` as a Python literal: 'the' or b'\\xc3'."""
    return repr(token_piece(tokenizer, token))


def next_token_table(model: GPT, tokenizer, prompt: str, k: int = 10, bar_width: int = 40) -> str:
    """``top_next_tokens`` as text: one line per token, its probability and a bar of #.
    An empty prompt asks for the first token of a fresh text (see ``document_start``)."""
    return "\n".join(f"  {token_label(tokenizer, token):>12} {prob:6.1%}  " + "#" * round(prob * bar_width)
                     for token, prob in top_next_tokens(model, prompt_ids(tokenizer, prompt), k))


@no_grad()
def generate(model: GPT, ids: Sequence[int], max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
             on_token: Callable[[int], None] | None = None, use_cache: bool = True,
             stop_token: int | None = None) -> list[int]:
    """Continue ``ids`` by ``max_new_tokens`` sampled tokens; ``on_token`` sees each as it comes.
    With ``stop_token`` (an instruction-tuned model's ``<|endoftext|>``), stop early once it is drawn
    (it is the last token returned).

    With ``use_cache`` each new token costs one forward pass over one position, the
    keys and values of the earlier ones kept in a KV cache. Without it, every step
    recomputes the whole context: simpler, slower, the same tokens.
    """
    check_sampling_settings(temperature, top_k, top_p, max_new_tokens)
    ids = list(ids)
    if not ids:
        raise ValueError("generate needs at least one token of context")
    check_writes_left_to_right(model)
    rng = np.random.default_rng(seed)
    block = model.config.block_size
    cache, cached = None, 0  # cached: how many positions the cache holds
    # BEGIN EXERCISE 10.2: the generation loop: the model on the context, the last position's probabilities, draw, append
    for _ in range(max_new_tokens):
        if not use_cache:
            feed = ids[-block:]
        elif cache is None or cached + 1 > block:
            # Start (or, once the context is longer than block_size, restart) the cache: the
            # window slid, so every position moved and the old keys no longer apply.
            cache, feed = model.new_cache(), ids[-block:]
            cached = 0
        else:
            feed = ids[-1:]
        logits, _ = model(np.array([feed]), cache=cache if use_cache else None)
        cached += len(feed)
        probs = next_token_probs(to_numpy(logits.data[0, -1]), temperature, top_k, top_p)
        token = int(rng.choice(len(probs), p=probs))
        ids.append(token)
        if on_token:
            on_token(token)
        if token == stop_token:
            break
    # END EXERCISE
    return ids
