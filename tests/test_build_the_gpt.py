"""Every forward pass a learner writes, against the same arithmetic written out in NumPy.

In float64 each piece must agree with its plain-NumPy twin to rounding: a linear layer,
log_softmax and softmax, an embedding lookup, LayerNorm, attention (head by head, as
lesson 07 does it), the MLP, a Transformer block, and the whole GPT with its loss.
"""
import math

import numpy as np
import pytest

import tinyllm
from tinyllm import Tensor, functional as F, nn
from tinyllm.model import GPT, MLP, Block, CausalSelfAttention, GPTConfig

CONFIG = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)
TIGHT = dict(rtol=1e-10, atol=1e-12)


# --- the arithmetic, in plain NumPy ------------------------------------------------------
def np_softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_linear(x, layer):
    return x @ layer.weight.numpy().T + (layer.bias.numpy() if layer.bias is not None else 0)


def np_layer_norm(x, layer, eps=1e-5):
    x_hat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    return x_hat * layer.weight.numpy() + layer.bias.numpy()


def np_gelu(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def np_attention(x, attn):
    """Causal self-attention one head at a time: c_attn's output holds q, then k, then v, each
    the H heads' D columns side by side."""
    B, T, C = x.shape
    D = C // attn.n_head
    qkv = np_linear(x, attn.c_attn)
    future = np.triu(np.ones((T, T), bool), k=1)
    heads = []
    for h in range(attn.n_head):
        q, k, v = (qkv[..., part * C + h * D: part * C + (h + 1) * D] for part in range(3))
        scores = np.where(future, -np.inf, q @ k.swapaxes(-1, -2) / math.sqrt(D))
        heads.append(np_softmax(scores) @ v)
    return np_linear(np.concatenate(heads, axis=-1), attn.c_proj)


def np_mlp(x, mlp):
    return np_linear(np_gelu(np_linear(x, mlp.c_fc)), mlp.c_proj)


def np_block(x, block):
    x = x + np_attention(np_layer_norm(x, block.ln_1), block.attn)
    return x + np_mlp(np_layer_norm(x, block.ln_2), block.mlp)


def float64(module, seed=0):
    """``module`` with random (not initial) parameters in float64: zeros and ones would hide mistakes."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data = rng.standard_normal(p.shape) * 0.5
    return module


def inputs(shape=(2, 5, 8), seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


# --- the pieces ------------------------------------------------------------------------------
def test_linear_by_hand():
    x = inputs((2, 3, 4))
    for bias in (True, False):
        layer = float64(nn.Linear(4, 5, bias=bias))
        y = layer(Tensor(x, dtype=np.float64))
        assert y.shape == (2, 3, 5)
        np.testing.assert_allclose(y.numpy(), np_linear(x, layer), **TIGHT)


def test_log_softmax_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]])
    y = F.log_softmax(Tensor(x, dtype=np.float64)).numpy()
    # log softmax is unchanged by adding a constant to a row: rows 0 and 1 are the same
    expected = np.log(np_softmax(np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [-5.0, 0.0, 5.0]])))
    np.testing.assert_allclose(y, expected, **TIGHT)
    np.testing.assert_allclose(F.log_softmax(Tensor(x.T, dtype=np.float64), axis=0).numpy(), expected.T, **TIGHT)


def test_softmax_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, 1002.0]])
    y = F.softmax(Tensor(x, dtype=np.float64)).numpy()
    e = np.exp([0.0, 1.0, 2.0])
    np.testing.assert_allclose(y, [e / e.sum()] * 2, **TIGHT)   # no overflow at 1000
    masked = F.softmax(Tensor(np.zeros((3, 3)), dtype=np.float64), mask=np.triu(np.ones((3, 3), bool), 1)).numpy()
    np.testing.assert_allclose(masked, [[1, 0, 0], [1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3]], **TIGHT)
    columns = F.softmax(Tensor(x.T, dtype=np.float64), axis=0).numpy()
    np.testing.assert_allclose(columns, y.T, **TIGHT)
    nothing = F.softmax(Tensor(np.zeros((2, 3))), mask=np.array([[True] * 3, [False, True, False]])).numpy()
    np.testing.assert_array_equal(nothing, [[0, 0, 0], [0.5, 0, 0.5]])   # a row masked everywhere takes nothing


def test_embedding_looks_up_rows():
    table = float64(nn.Embedding(5, 3))
    ids = np.array([[1, 3], [1, 0]])
    out = table(ids)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.numpy(), table.weight.numpy()[ids])


def test_attention_layer_by_hand():
    attn = float64(CausalSelfAttention(CONFIG))
    x = inputs()
    np.testing.assert_allclose(attn(Tensor(x, dtype=np.float64)).numpy(), np_attention(x, attn), **TIGHT)


def test_mlp_by_hand():
    mlp = float64(MLP(CONFIG))
    x = inputs()
    np.testing.assert_allclose(mlp(Tensor(x, dtype=np.float64)).numpy(), np_mlp(x, mlp), **TIGHT)


def test_block_by_hand():
    block = float64(Block(CONFIG))
    x = inputs()
    np.testing.assert_allclose(block(Tensor(x, dtype=np.float64)).numpy(), np_block(x, block), **TIGHT)


def test_gpt_forward_and_loss_by_hand():
    tinyllm.manual_seed(0)
    model = float64(GPT(CONFIG))
    ids = np.random.default_rng(2).integers(0, 13, (2, 6))
    targets = np.random.default_rng(3).integers(0, 13, (2, 6))
    x = model.wte.weight.numpy()[ids] + model.wpe.weight.numpy()[:6]
    for block in model.h:
        x = np_block(x, block)
    expected = np_layer_norm(x, model.ln_f) @ model.wte.weight.numpy().T      # the head is tied to wte
    expected_loss = -np.log(np_softmax(expected)[np.arange(2)[:, None], np.arange(6), targets]).mean()
    logits, loss = model(ids, targets)
    np.testing.assert_allclose(logits.numpy(), expected, **TIGHT)
    assert loss.item() == pytest.approx(expected_loss, rel=1e-10)
    assert model(ids)[1] is None                                              # no targets, no loss
