"""The GPT built up one part at a time, to measure what each part buys (as "Let's build GPT" does).

    bigram     the token's own vector -> logits: the next token from the current one alone
    one head   + position embeddings and one head of causal self-attention
    multi-head + the config's n_head heads, side by side
    mlp        + the MLP after attention: a per-position computation on what was gathered
    residual   + residual connections: each part adds to x instead of replacing it
    layernorm  + a LayerNorm before each part and at the end (pre-LN, as GPT-2)
    blocks     + the config's n_layer blocks instead of one

``StagedGPT(config, stage)`` has the parts of ``stage`` and of every stage before it; the
last is GPT's arithmetic (with an output layer of its own: GPT-2 ties it to ``wte``).
Every stage is made of the GPT's own modules, so only the wiring in ``forward`` differs.
"""
from __future__ import annotations

from dataclasses import replace

from . import functional as F
from .backend import array_module
from .model import Block, GPTConfig
from .nn import Embedding, LayerNorm, Linear, Module, ModuleList
from .tensor import Tensor

STAGES = ("bigram", "one head", "multi-head", "mlp", "residual", "layernorm", "blocks")


class StagedGPT(Module):
    """The GPT of ``config`` with the parts of ``stage`` (one of ``STAGES``) and the stages before it."""

    def __init__(self, config: GPTConfig, stage: str):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; the stages, in order: {', '.join(STAGES)}")
        self.config, self.stage = config, stage
        level = STAGES.index(stage)
        has = {part: level >= STAGES.index(part) for part in ("one head", "mlp", "residual", "layernorm")}
        self.has_attention, self.has_mlp = has["one head"], has["mlp"]
        self.has_residual, self.has_layernorm = has["residual"], has["layernorm"]
        C = config.n_embd
        self.wte = Embedding(config.vocab_size, C)
        blocks = 0 if level == 0 else config.n_layer if stage == "blocks" else 1
        heads = 1 if stage == "one head" else config.n_head
        if self.has_attention:
            self.wpe = Embedding(config.block_size, C)
        self.h = ModuleList(Block(replace(config, n_head=heads)) for _ in range(blocks))
        for block in self.h:   # a stage's blocks hold only the parts it has
            if self.has_residual:
                block.shrink_residual_projections(config.n_layer)
            if not self.has_mlp:
                block.mlp = block.ln_2 = None
            if not self.has_layernorm:
                block.ln_1 = block.ln_2 = None
        self.ln_f = LayerNorm(C, bias=config.bias) if self.has_layernorm else None
        self.lm_head = Linear(C, config.vocab_size, bias=False)

    def forward(self, ids, targets=None) -> tuple[Tensor, Tensor | None]:
        """ids (B, T) -> logits (B, T, vocab_size), and the mean cross-entropy against ``targets`` when given."""
        xp = array_module(self.wte.weight.data)
        ids = xp.asarray(ids.data if isinstance(ids, Tensor) else ids)
        # BEGIN EXERCISE 17.1: the staged forward: only the parts this stage has, wired as its flags say
        x = self.wte(ids)                                            # (B, T, C)
        if self.has_attention:
            x = x + self.wpe(xp.arange(ids.shape[1]))
        for block in self.h:
            a = block.attn(block.ln_1(x) if self.has_layernorm else x)
            x = x + a if self.has_residual else a
            if self.has_mlp:
                m = block.mlp(block.ln_2(x) if self.has_layernorm else x)
                x = x + m if self.has_residual else m
        if self.has_layernorm:
            x = self.ln_f(x)
        logits = self.lm_head(x)                                     # (B, T, C) -> (B, T, V)
        # END EXERCISE
        loss = F.cross_entropy(logits, xp.asarray(targets)) if targets is not None else None
        return logits, loss
