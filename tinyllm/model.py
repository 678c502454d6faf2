"""The GPT: GPT-2's Transformer, written out op by op.

    ids (B, T) ─► token embedding + position embedding ─► n_layer × Block ─► LayerNorm ─► logits (B, T, V)

    Block:  x = x + attention(LayerNorm(x))     tokens look at earlier tokens
            x = x + MLP(LayerNorm(x))           each token thinks on its own

The logits at position t are the model's guess for the token at t + 1, made
from tokens 0..t only: the causal mask in attention forbids looking ahead.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from . import functional as F
from .backend import array_module, device_of, to_device
from .nn import GELU, Dropout, Embedding, LayerNorm, Linear, Module, ModuleList
from .tensor import Tensor, is_grad_enabled, no_grad


@dataclass(frozen=True)
class GPTConfig:
    """The shape of a GPT. Defaults are GPT-2 small (124M parameters)."""
    vocab_size: int = 50257   # number of distinct tokens
    block_size: int = 1024    # longest context the model can see
    n_layer: int = 12         # Transformer blocks
    n_head: int = 12          # attention heads per block
    n_embd: int = 768         # width of every token's vector
    dropout: float = 0.0      # dropout probability while training
    bias: bool = True         # biases in Linear and LayerNorm, as GPT-2
    causal: bool = True       # each position sees only itself and the past; False: the whole text (BERT)

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "GPTConfig":
        """A named shape (see ``PRESETS``), with any field overridden: ``from_preset("baby", vocab_size=65)``."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return replace(PRESETS[name], **overrides)

    def to_dict(self) -> dict:
        """The fields as a plain dict (saved in checkpoints; ``GPTConfig(**d)`` makes it again)."""
        return asdict(self)


PRESETS = {
    "gpt2": GPTConfig(n_layer=12, n_head=12, n_embd=768),           # 124M
    "gpt2-medium": GPTConfig(n_layer=24, n_head=16, n_embd=1024),   # 350M
    "gpt2-large": GPTConfig(n_layer=36, n_head=20, n_embd=1280),    # 774M
    "gpt2-xl": GPTConfig(n_layer=48, n_head=25, n_embd=1600),       # 1558M
    # nanoGPT's shakespeare_char shape (vocab 65 is the character set of that corpus)
    "char-small": GPTConfig(vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
    # nanoGPT's recipe for a CPU: trains in minutes on a laptop
    "baby": GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128),
}


class CausalSelfAttention(Module):
    """Multi-head self-attention in which each position sees only itself and the past
    (every position, with ``GPTConfig(causal=False)``: a bidirectional encoder, as BERT's)."""

    def __init__(self, config: GPTConfig):
        C = config.n_embd
        self.n_head = config.n_head
        self.is_causal = config.causal
        self.c_attn = Linear(C, 3 * C, bias=config.bias)   # q, k and v for all heads in one GEMM
        self.c_proj = Linear(C, C, bias=config.bias)       # mixes the heads' outputs back together
        self.attn_dropout = Dropout(config.dropout)   # its p drops attention weights, inside the fused op
        self.resid_dropout = Dropout(config.dropout)
        self.keep_attention = False   # set True to keep the last attention weights in .attention
        self.attention = None         # (B, n_head, T, T) array when kept; nothing is stored otherwise

    def forward(self, x: Tensor, cache: dict | None = None) -> Tensor:
        """x (B, T, C) -> (B, T, C): each position's mix of the values of itself and the positions before it."""
        # BEGIN EXERCISE 7.5: attention's forward: q, k, v from c_attn, H heads of D, attend, heads side by side, c_proj
        B, T, C = x.shape
        H, D = self.n_head, C // self.n_head
        # c_attn's (B, T, 3C) holds q, k and v side by side, each H heads of D: read it as
        # (B, T, 3, H, D) and split the 3. (Splitting (B, T, 3C) into three (B, T, C) is the
        # same numbers, but their gradients, laid out head-major, would each need a copy
        # back into (B, T, C) order before the backward could join them.)
        q, k, v = self.c_attn(x).reshape(B, T, 3, H, D).split(1, axis=2)   # three (B, T, 1, H, D)
        # Give each head its own slab: (B, T, 1, H, D) -> (B, T, H, D) -> (B, H, T, D)
        q, k, v = (t.reshape(B, T, H, D).transpose(1, 2) for t in (q, k, v))
        k, v = self.remember(q, k, v, cache)                       # unchanged in training
        # softmax(q kᵀ / √D) @ v, each position seeing only itself and the past, as one op
        # whose graph keeps only the (B, H, T, T) weights (see functional.py).
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.is_causal,
                                           dropout_p=self.attn_dropout.p if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, C)                     # put the heads side by side again
        return self.resid_dropout(self.c_proj(y))
        # END EXERCISE

    def remember(self, q: Tensor, k: Tensor, v: Tensor, cache: dict | None) -> tuple[Tensor, Tensor]:
        """What generation and pictures need from a forward; in training, (k, v) unchanged.

        With a KV cache (generation, lesson 10) this step's keys and values are written after
        those of the positions fed before, and attention reads all of them.
        With ``keep_attention`` the attention weights are kept in ``self.attention``."""
        if cache is not None:
            # The keys and values of earlier positions never change, so keep them and add
            # this step's; then only the new queries need computing. The cache's arrays have
            # room for a whole context from the start: each step writes its T positions in
            # place, where appending would copy everything cached, at every token.
            # BEGIN EXERCISE 10.3: KV cache: write this step's keys and values after the cached ones, read all
            B, H, T, D = k.shape
            if "k" not in cache:                                   # (B, H, block_size, D), on first use
                cache["k"] = array_module(k.data).empty((B, H, cache["capacity"], D), dtype=k.dtype)
                cache["v"] = array_module(v.data).empty_like(cache["k"])
            n = cache["length"]
            cache["k"][:, :, n:n + T], cache["v"][:, :, n:n + T] = k.data, v.data
            cache["length"] = n + T
            k, v = Tensor(cache["k"][:, :, :n + T]), Tensor(cache["v"][:, :, :n + T])  # views: no copy
            # END EXERCISE
        if self.keep_attention:                                    # for pictures: (B, H, T, T_keys)
            self.attention = F.attention_weights(q.data, k.data, is_causal=self.is_causal)
        return k, v


class MLP(Module):
    """Per-token feed-forward network: widen 4×, GELU, narrow back."""

    def __init__(self, config: GPTConfig):
        C = config.n_embd
        self.c_fc = Linear(C, 4 * C, bias=config.bias)
        self.gelu = GELU()
        self.c_proj = Linear(4 * C, C, bias=config.bias)
        self.dropout = Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        # BEGIN EXERCISE 8.4: the MLP's forward: c_fc, GELU, c_proj, dropout
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B,T,C) -> (B,T,4C) -> (B,T,C)
        # END EXERCISE


class Block(Module):
    """One Transformer block, pre-LayerNorm as in GPT-2: normalise, transform, add back."""

    def __init__(self, config: GPTConfig):
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def shrink_residual_projections(self, n_layer: int) -> None:
        """GPT-2's init: every residual branch ends in a c_proj, and n_layer × 2 of them add up
        in the residual stream, so their weights start smaller by 1/√(2·n_layer)."""
        for proj in (self.attn.c_proj, self.mlp.c_proj):
            proj.weight.data *= np.float32(1 / math.sqrt(2 * n_layer))

    def forward(self, x: Tensor, cache: dict | None = None) -> Tensor:
        # BEGIN EXERCISE 8.5: the block's forward: x plus attention of ln_1(x), then plus the MLP of ln_2(x)
        x = x + self.attn(self.ln_1(x), cache)   # the residual stream carries x through unchanged...
        x = x + self.mlp(self.ln_2(x))           # ...and each sublayer adds its contribution
        return x
        # END EXERCISE


class GPT(Module):
    """GPT-2: ``GPT(config)(ids, targets=None) -> (logits, loss)``."""

    def __init__(self, config: GPTConfig):
        self.config = config
        C = config.n_embd
        self.wte = Embedding(config.vocab_size, C)     # token embedding
        self.wpe = Embedding(config.block_size, C)     # position embedding
        self.drop = Dropout(config.dropout)
        self.h = ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = LayerNorm(C, bias=config.bias)
        self.lm_head = Linear(C, config.vocab_size, bias=False)
        # Weight tying: reading a token's vector and scoring a token use one matrix
        # (GPT-2 does this; it saves V·C parameters).
        self.lm_head.weight = self.wte.weight
        for block in self.h:
            block.shrink_residual_projections(config.n_layer)

    @property
    def device(self) -> str:
        return self.wpe.weight.device  # (wpe: never quantized, unlike wte)

    def forward(self, ids, targets=None, cache: list[dict] | None = None) -> tuple[Tensor, Tensor | None]:
        """ids (B, T) integer token ids -> logits (B, T, vocab_size), and the mean
        cross-entropy against ``targets`` (B, T) when given (else None).

        ``cache``, for generation: a list of one dict per layer (start with ``new_cache()``),
        holding the keys and values of the positions already fed; ``ids`` then continue them.
        """
        xp = array_module(self.wpe.weight.data)
        if cache is not None and not self.config.causal:
            raise ValueError("a KV cache serves a causal model, which writes left to right; this one "
                             "(causal=False) sees the whole text at once")
        if cache is not None and is_grad_enabled():
            raise ValueError("a KV cache serves generation, where no gradient flows: call the model "
                             "under tinyllm.no_grad() (generate does)")
        past = cache[0]["length"] if cache else 0
        ids = self._check_ids(ids, past)
        B, T = ids.shape
        if targets is not None:
            targets = targets.data if isinstance(targets, Tensor) else xp.asarray(targets)
        # BEGIN EXERCISE 8.6: the GPT's forward: token + position embeddings, dropout, the blocks, ln_f, lm_head, loss
        positions = xp.arange(past, past + T)          # after a KV cache's `past` positions
        x = self.wte(ids) + self.wpe(positions)        # (B, T, C) + (T, C) -> (B, T, C)
        x = self.drop(x)
        for i, block in enumerate(self.h):
            x = block(x, cache[i] if cache is not None else None)
        logits = self.lm_head(self.ln_f(x))            # (B, T, C) -> (B, T, V)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss
        # END EXERCISE

    def new_cache(self) -> list[dict]:
        """An empty KV cache for ``forward(..., cache=...)``: one dict per layer, with room for a
        context of ``block_size`` positions (its arrays made on first use) and none filled yet."""
        return [{"length": 0, "capacity": self.config.block_size} for _ in self.h]

    def _check_ids(self, ids, past: int = 0):
        ids = ids.data if isinstance(ids, Tensor) else ids
        ids = ids if hasattr(ids, "shape") else np.asarray(ids)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"GPT expects integer token ids of shape (B, T), got {ids.dtype} {ids.shape}")
        if past + ids.shape[1] > self.config.block_size:
            raise ValueError(f"sequence length {past + ids.shape[1]} exceeds the model's block_size "
                             f"{self.config.block_size}; crop the context to the last {self.config.block_size}")
        # The range is checked here while the ids are on the host. Ids already on the GPU (training
        # batches) are checked there, by the embedding's lookup (ops/shape.py), and the answer is
        # read with the logits and the loss: reading it now would wait for the GPU at every step.
        if device_of(ids) == "cpu" and ids.size and (ids.min() < 0 or ids.max() >= self.config.vocab_size):
            raise ValueError(f"token ids must be in 0..{self.config.vocab_size - 1}, "
                             f"got values from {ids.min()} to {ids.max()}")
        return to_device(ids, self.device)

    def crop_block_size(self, block_size: int) -> None:
        """Shorten the context to ``block_size`` positions, keeping their embeddings (the first
        rows of ``wpe``): fine-tuning GPT-2 on 256 tokens instead of 1024 costs a quarter."""
        if not 1 <= block_size <= self.config.block_size:
            raise ValueError(f"block_size {block_size}: cropping keeps 1 to {self.config.block_size} positions")
        self.config = replace(self.config, block_size=block_size)
        self.wpe.weight.data = self.wpe.weight.data[:block_size].copy()

    def set_dropout(self, p: float) -> None:
        """Dropout probability ``p`` everywhere (a loaded model keeps the one it was made with)."""
        self.config = replace(self.config, dropout=p)   # checks 0 <= p < 1
        for module in self.modules():
            if isinstance(module, Dropout):
                module.p = p

    def num_parameters(self) -> int:
        """How many numbers the model learns (the tied embedding counted once)."""
        return sum(p.size for p in self.parameters())

    @no_grad()
    def attention_maps(self, ids) -> list:
        """The attention weights of every layer for ``ids``: a list of (B, n_head, T, T) arrays."""
        layers = [block.attn for block in self.h]
        for attn in layers:
            attn.keep_attention = True
        try:
            self.forward(ids)
            return [attn.attention for attn in layers]
        finally:
            for attn in layers:
                attn.keep_attention, attn.attention = False, None


def check_config_fits(config: GPTConfig, shapes: dict[str, tuple]) -> None:
    """Refuse a config that a file's own arrays (``shapes``: name -> shape, under GPT's names)
    contradict, before a model of its size is built: a config claiming millions of layers
    must not be allocated first and found wrong after."""
    blocks = {name.split(".")[1] for name in shapes if name.startswith("h.")}
    wte = shapes.get("wte.weight", shapes.get("wte.weight.qweight"))   # (quantized: its integers)
    found = {"n_layer": len(blocks), "block_size, n_embd": shapes.get("wpe.weight"),
             "vocab_size": wte and wte[0]}
    wanted = {"n_layer": config.n_layer, "block_size, n_embd": (config.block_size, config.n_embd),
              "vocab_size": config.vocab_size}
    wrong = [f"{k} {wanted[k]} in its config, {found[k]} in its arrays" for k in wanted if found[k] != wanted[k]]
    if wrong:
        raise ValueError("its config does not fit its arrays: " + "; ".join(wrong))
