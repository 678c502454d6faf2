"""A GPT-2 written independently in PyTorch's own idiom, the reference tinyllm is checked against.

Used by tests/test_against_torch.py and bench/train_step.py, only where PyTorch is
installed. Parameter names match tinyllm's, so a tinyllm state dict carries
straight over (``load_tinyllm_state``).
"""
import math

import numpy as np
import torch
from torch import nn

from tinyllm.model import GPTConfig


class TorchAttention(nn.Module):
    def __init__(self, c: GPTConfig, fused: bool = False):
        super().__init__()
        self.n_head, self.fused = c.n_head, fused
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if self.fused:  # PyTorch's one-kernel attention, as nanoGPT uses: the same numbers, faster
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool, device=x.device), 1), float("-inf"))
            y = torch.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class TorchMLP(nn.Module):
    def __init__(self, c: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd)
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd)

    def forward(self, x):
        return self.c_proj(nn.functional.gelu(self.c_fc(x), approximate="tanh"))


class TorchBlock(nn.Module):
    def __init__(self, c: GPTConfig, fused: bool = False):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(c.n_embd), TorchAttention(c, fused)
        self.ln_2, self.mlp = nn.LayerNorm(c.n_embd), TorchMLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TorchGPT(nn.Module):
    """``fused=True``: attention by ``scaled_dot_product_attention``, as nanoGPT's model."""

    def __init__(self, c: GPTConfig, fused: bool = False):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(c.vocab_size, c.n_embd), nn.Embedding(c.block_size, c.n_embd)
        self.h = nn.ModuleList(TorchBlock(c, fused) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids, targets):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return logits, nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())


def load_tinyllm_state(model: nn.Module, state: dict) -> None:
    """Copy a tinyllm ``state_dict`` (name -> array) into the PyTorch model."""
    with torch.no_grad():
        for name, array in state.items():
            param = model.get_parameter(name)
            param.copy_(torch.from_numpy(np.array(array)).to(param.device))
