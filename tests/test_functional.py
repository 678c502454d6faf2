"""The fused functions of tinyllm.functional against values worked out by hand."""
import math

import numpy as np
import pytest

import tinyllm
from tinyllm import Tensor, functional as F


def test_cross_entropy_by_hand():
    # Row 0: softmax([0, ln2, ln3]) = [1/6, 2/6, 3/6], target 2 -> -ln(1/2) = ln 2.
    # Row 1: uniform over 3 classes, target 0 -> ln 3.  Row 2 is ignored.
    logits = Tensor([[0.0, math.log(2), math.log(3)], [0.0, 0.0, 0.0], [5.0, -1.0, 2.0]], requires_grad=True)
    loss = F.cross_entropy(logits, np.array([2, 0, -100]))
    assert loss.item() == pytest.approx((math.log(2) + math.log(3)) / 2, rel=1e-6)
    loss.backward()
    # dloss/dlogits = (softmax - onehot) / (number of counted rows = 2); 0 for the ignored row
    expected = np.array([[1 / 6, 2 / 6, 3 / 6 - 1], [1 / 3 - 1, 1 / 3, 1 / 3], [0, 0, 0]]) / 2
    np.testing.assert_allclose(logits.grad.numpy(), expected, atol=1e-7)


def test_cross_entropy_is_stable_for_huge_logits():
    loss = F.cross_entropy(Tensor([[1000.0, 0.0], [-1000.0, 0.0]]), np.array([0, 1]))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_cross_entropy_at_uniform_logits_is_log_vocab():
    V = 65
    loss = F.cross_entropy(Tensor(np.zeros((4, 8, V))), np.random.default_rng(0).integers(0, V, (4, 8)))
    assert loss.item() == pytest.approx(math.log(V), rel=1e-6)


def test_cross_entropy_rejects_bad_targets():
    with pytest.raises(ValueError, match=r"integer targets of shape \(2,\)"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="outside 0..2"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3]))


def test_layer_norm_by_hand():
    # x = [1,2,3,4]: mean 2.5, variance 1.25, x̂ = (x - 2.5)/√1.25 = [-1.3416, -0.4472, 0.4472, 1.3416]
    x = Tensor([[1.0, 2.0, 3.0, 4.0]])
    w, b = Tensor([1.0, 2.0, 1.0, 2.0]), Tensor([0.0, 0.0, 1.0, 1.0])
    y = F.layer_norm(x, w, b, eps=0.0)
    np.testing.assert_allclose(y.numpy(), [[-1.3416408, -0.8944272, 1.4472136, 3.6832816]], rtol=1e-6)


def test_layer_norm_output_is_normalised():
    x = Tensor(np.random.default_rng(0).normal(3.0, 5.0, (4, 7, 32)))
    y = F.layer_norm(x).numpy()
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1, atol=1e-4)


def test_layer_norm_checks_parameter_shapes():
    with pytest.raises(ValueError, match=r"weight has shape \(3,\), expected \(4,\)"):
        F.layer_norm(Tensor(np.zeros((2, 4))), Tensor(np.ones(3)))


def test_linear_names_a_feature_mismatch():
    with pytest.raises(ValueError, match=r"linear: input \(2, 5\) has 5 features, weight \(3, 4\) expects 4"):
        F.linear(Tensor(np.zeros((2, 5))), Tensor(np.zeros((3, 4))))


def test_gelu_known_values():
    # GPT-2's tanh approximation: gelu(1) = 0.5·(1 + tanh(√(2/π)·1.044715)) = 0.841192
    y = F.gelu(Tensor([-1.0, 0.0, 1.0, 3.0])).numpy()
    np.testing.assert_allclose(y, [-0.158808, 0.0, 0.841192, 2.996363], atol=1e-6)


def test_softmax_and_log_softmax_agree():
    x = Tensor(np.random.default_rng(0).normal(0, 10, (3, 9)))
    p = F.softmax(x).numpy()
    np.testing.assert_allclose(p.sum(-1), 1, rtol=1e-6)
    np.testing.assert_allclose(np.log(p), F.log_softmax(x).numpy(), atol=1e-5)


def test_masked_softmax_equals_masked_fill_then_softmax():
    x = np.random.default_rng(1).normal(0, 3, (2, 3, 5, 5)).astype(np.float32)
    mask = np.triu(np.ones((5, 5), bool), 1)
    x[..., mask] = 1e4  # huge scores in the masked future must not swamp the rest
    fused = F.softmax(Tensor(x), mask=mask).numpy()
    reference = F.softmax(F.masked_fill(Tensor(x), mask, -np.inf)).numpy()
    np.testing.assert_allclose(fused, reference, rtol=1e-6)
    assert (fused[..., mask] == 0).all() and np.isfinite(fused).all()


def test_gelu_is_finite_and_exact_far_from_zero():
    x = Tensor([-100.0, -12.0, 12.0, 100.0], requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # no overflow warning either
        y = F.gelu(x)
        y.sum().backward()
    np.testing.assert_allclose(y.numpy(), [0.0, 0.0, 12.0, 100.0], atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0, 1.0], atol=1e-6)  # flat, then the identity


def test_masked_fill_and_where():
    x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    mask = np.array([[False, True], [False, False]])
    y = F.masked_fill(x, mask, -np.inf)
    assert y.numpy()[0, 1] == -np.inf and y.numpy()[1, 1] == 4.0
    z = F.where(mask, 10.0, x)
    np.testing.assert_array_equal(z.numpy(), [[1, 10], [3, 4]])
    (z * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2, 0], [2, 2]])


def test_dropout_train_and_eval():
    x = Tensor(np.ones((200, 200)))
    assert F.dropout(x, 0.25, training=False) is x
    y = F.dropout(x, 0.25).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01                         # about 1 - p survive
    np.testing.assert_allclose(y[kept], 1 / 0.75)                  # scaled so the mean is unchanged
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.dropout(x, 1.0)


def test_dropout_is_repeatable_with_manual_seed():
    x = Tensor(np.ones(100))
    tinyllm.manual_seed(7)
    a = F.dropout(x, 0.5).numpy()
    tinyllm.manual_seed(7)
    b = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)


def _attention_from_five_ops(q, k, v, p, generator):
    scores = (q * (1 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    att = F.softmax(scores, mask=F.causal_mask(q.shape[-2], k.shape[-2]))
    return F.dropout(att, p, generator=generator) @ v


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_fused_attention_equals_its_five_ops(p, rng):
    # Two new queries against five keys: the causal mask of a KV cache's step.
    arrays = [rng.standard_normal(shape) for shape in [(2, 3, 2, 4), (2, 3, 5, 4), (2, 3, 5, 4)]]
    g = rng.standard_normal((2, 3, 2, 4))
    results = []
    for attention in (_attention_from_five_ops, lambda q, k, v, p, generator:
                      F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p, generator=generator)):
        q, k, v = (Tensor(a, requires_grad=True) for a in arrays)
        y = attention(q, k, v, p, np.random.default_rng(5))  # the same dropout draws in both
        y.backward(g)
        results.append([y.numpy(), q.grad.numpy(), k.grad.numpy(), v.grad.numpy()])
    for fused, composed in zip(*results[::-1]):
        np.testing.assert_allclose(fused, composed, rtol=1e-5, atol=1e-6)
    # Query 0 is position 3 of 5: it sees keys 0..3, so key 4's gradient comes from query 1 only.
    assert not np.allclose(results[1][2][:, :, 4], 0)


def test_attention_names_bad_shapes():
    q, k = Tensor(np.zeros((1, 2, 3, 4))), Tensor(np.zeros((1, 2, 5, 4)))
    with pytest.raises(ValueError, match=r"q \(1, 2, 3, 4\), k \(1, 2, 5, 4\), v \(1, 2, 4, 4\)"):
        F.scaled_dot_product_attention(q, k, Tensor(np.zeros((1, 2, 4, 4))))
    with pytest.raises(ValueError, match=r"no more queries \(5\) than keys \(3\)"):
        F.scaled_dot_product_attention(k, q, q, is_causal=True)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.scaled_dot_product_attention(q, k, k, dropout_p=1.0)



def test_attention_weights_by_hand():
    # Equal scores: each query spreads evenly over the keys it may see (t + 1 of them, when causal).
    zeros = np.zeros((1, 1, 3, 2))
    np.testing.assert_allclose(F.attention_weights(zeros, zeros, is_causal=True)[0, 0],
                               [[1, 0, 0], [1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(F.attention_weights(zeros, zeros)[0, 0], np.full((3, 3), 1 / 3))
    # One new query after two cached keys (a KV cache's step) sees all three keys.
    np.testing.assert_allclose(F.attention_weights(zeros[:, :, :1], zeros, is_causal=True)[0, 0], [[1 / 3] * 3])
    # q·k / √D: q = (1, 0), keys (0, 0) and (2√2, 0), D = 2 -> scores 0 and 2 -> softmax (1, e²) / (1 + e²)
    q, k = np.array([[[[1.0, 0.0]]]]), np.array([[[[0.0, 0.0], [2 * math.sqrt(2), 0.0]]]])
    e2 = math.exp(2)
    np.testing.assert_allclose(F.attention_weights(q, k)[0, 0], [[1 / (1 + e2), e2 / (1 + e2)]], rtol=1e-12)
