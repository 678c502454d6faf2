"""Every op's backward against float64 central finite differences (tinyllm.gradcheck).

Each case is (name, function of tensors, input shapes). Inputs are random
normals; ``pos`` marks an input that must be positive (log, sqrt, a divisor),
``away`` one kept away from 0 (relu's kink, where the slope jumps).
"""
import numpy as np
import pytest

from tinyllm import Tensor, concat, functional as F, split
from tinyllm.gradcheck import gradcheck

BROADCAST_PAIRS = [((3, 4), (3, 4)), ((2, 1, 3), (4, 3)), ((3, 1), (1, 4)), ((5,), ())]

CASES = []
for sa, sb in BROADCAST_PAIRS:
    CASES += [
        (f"add{sa}{sb}", lambda a, b: a + b, [sa, sb]),
        (f"sub{sa}{sb}", lambda a, b: a - b, [sa, sb]),
        (f"mul{sa}{sb}", lambda a, b: a * b, [sa, sb]),
        (f"div{sa}{sb}", lambda a, b: a / b, [sa, ("pos", sb)]),
        (f"pow_tensor{sa}{sb}", lambda a, b: a ** b, [("pos", sa), sb]),
    ]
CASES += [
    ("scalar_ops", lambda a: 2.0 * a - 1.5 / (a * a + 1.0) + a / 3.0 - (1 - a), [(3, 4)]),
    ("pow_scalar", lambda a: a ** 3, [(2, 3)]),
    ("pow_fractional", lambda a: a ** 0.5, [("pos", (2, 3))]),
    ("neg", lambda a: -a, [(2, 3)]),
    ("exp", lambda a: a.exp(), [(2, 3, 4)]),
    ("log", lambda a: a.log(), [("pos", (2, 3))]),
    ("sqrt", lambda a: a.sqrt(), [("pos", (4,))]),
    ("tanh", lambda a: a.tanh(), [(3, 5)]),
    ("relu", lambda a: a.relu(), [("away", (3, 5))]),
    # reductions
    ("sum_all", lambda a: a.sum(), [(2, 3, 4)]),
    ("sum_axis0", lambda a: a.sum(0), [(2, 3, 4)]),
    ("sum_axes_keep", lambda a: a.sum(axis=(0, 2), keepdims=True), [(2, 3, 4)]),
    ("mean_last", lambda a: a.mean(-1), [(2, 3, 4)]),
    ("mean_all_keep", lambda a: a.mean(keepdims=True), [(2, 3)]),
    ("max_all", lambda a: a.max(), [(3, 4)]),
    ("max_axis", lambda a: a.max(axis=1), [(2, 3, 4)]),
    ("max_keep", lambda a: a.max(axis=(0, 2), keepdims=True), [(2, 3, 4)]),
    # shapes
    ("reshape", lambda a: a.reshape(4, -1) * 1.0, [(2, 3, 4)]),
    ("transpose", lambda a: a.transpose(0, 2), [(2, 3, 4)]),
    ("T", lambda a: a.T, [(2, 3)]),
    ("permute", lambda a: a.permute(2, 0, 1), [(2, 3, 4)]),
    ("slice", lambda a: a[1:, ::-2], [(3, 5)]),
    ("int_index", lambda a: a[1, :, -1], [(2, 3, 4)]),
    ("gather_rows", lambda a: a[np.array([[0, 2], [2, 2]])], [(4, 3)]),  # repeats: scatter-add
    ("gather_pairs", lambda a: a[np.array([0, 1, 1]), np.array([2, 0, 0])], [(2, 3)]),
    ("concat", lambda a, b: concat([a, b, a], axis=1), [(2, 3), (2, 1)]),
    ("split", lambda a: split(a, 2, axis=1)[0] * split(a, [1, 4], axis=1)[1][:, :2], [(2, 5)]),
    # matmul: 2-D, a shared 2-D weight, broadcast batch dims on either side
    ("matmul_2d", lambda a, b: a @ b, [(3, 4), (4, 5)]),
    ("matmul_shared_weight", lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    ("matmul_batched", lambda a, b: a @ b, [(2, 3, 4), (2, 4, 5)]),
    ("matmul_broadcast", lambda a, b: a @ b, [(2, 1, 4, 5), (3, 5, 2)]),
    ("matmul_broadcast_left", lambda a, b: a @ b, [(4, 5), (2, 5, 3)]),
    # functional
    ("linear", lambda x, w, b: F.linear(x, w, b), [(2, 3, 4), (5, 4), (5,)]),
    ("linear_no_bias", lambda x, w: F.linear(x, w), [(3, 4), (2, 4)]),
    ("softmax", lambda a: F.softmax(a), [(3, 5)]),
    ("softmax_axis0", lambda a: F.softmax(a, axis=0), [(3, 2, 4)]),
    ("softmax_causal_mask", lambda a: F.softmax(a, mask=np.triu(np.ones((4, 4), bool), 1)), [(2, 4, 4)]),
    ("log_softmax", lambda a: F.log_softmax(a), [(2, 3, 5)]),
    ("gelu", lambda a: F.gelu(a), [(3, 7)]),
    ("cross_entropy", lambda z: F.cross_entropy(z, np.array([0, 4, 2, 1])), [(4, 5)]),
    ("cross_entropy_3d_ignore", lambda z: F.cross_entropy(z, np.array([[1, -100], [0, 2]])), [(2, 2, 3)]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, w, b), [(2, 3, 6), (6,), (6,)]),
    ("layer_norm_plain", lambda x: F.layer_norm(x), [(4, 5)]),
    ("masked_fill", lambda a: F.masked_fill(a, np.triu(np.ones((3, 3), bool), 1), -7.0), [(2, 3, 3)]),
    ("where", lambda a, b: F.where(np.array([True, False, True]), a, b), [(2, 3), (3,)]),
    ("dropout", lambda a: F.dropout(a, 0.3, generator=np.random.default_rng(0)), [(4, 5)]),
    # attention: (B, H, T, D) queries against S keys; causal with T < S is a KV cache's step
    ("attention", lambda q, k, v: F.scaled_dot_product_attention(q, k, v), [(2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 2)]),
    ("attention_causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     [(2, 2, 5, 3)] * 3),
    ("attention_causal_cache", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     [(1, 2, 2, 3), (1, 2, 5, 3), (1, 2, 5, 3)]),
    ("attention_dropout", lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, is_causal=True, dropout_p=0.3, generator=np.random.default_rng(0)), [(2, 2, 5, 3)] * 3),
]


def make_input(spec, rng):
    kind, shape = spec if len(spec) == 2 and isinstance(spec[0], str) else (None, spec)
    x = rng.standard_normal(shape)
    if kind == "pos":
        x = np.abs(x) + 0.5
    elif kind == "away":
        x = np.sign(x) * (np.abs(x) + 0.1)
    return Tensor(x, dtype=np.float64, requires_grad=True)


@pytest.mark.parametrize("name,fn,specs", CASES, ids=[c[0] for c in CASES])
def test_gradcheck(name, fn, specs, rng):
    inputs = [make_input(s, rng) for s in specs]
    result = gradcheck(fn, inputs)
    assert result.passed


def test_gradcheck_catches_a_wrong_backward(rng):
    """The checker itself must fail on a wrong formula (here d(x²)/dx = x, off by 2x)."""
    from tinyllm.tensor import from_op

    def bad_square(x):
        return from_op(x.data ** 2, (x,), lambda g: (g * x.data,), "bad_square")
    x = Tensor(rng.standard_normal(5), dtype=np.float64, requires_grad=True)
    with pytest.raises(AssertionError, match="gradcheck failed"):
        gradcheck(bad_square, [x])
    assert not gradcheck(bad_square, [x], raise_on_failure=False).passed


def test_gradcheck_wants_float64():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda x: x * 2, [Tensor([1.0, 2.0], requires_grad=True)])
