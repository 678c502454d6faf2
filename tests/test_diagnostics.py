"""Training diagnostics against hand-computed values on a fixed tiny model, and forward hooks."""
import math

import numpy as np
import pytest

import tinyllm
from tinyllm import Tensor, optim
from tinyllm.diagnostics import (GELU_FLAT_BELOW, activations, describe, gradient_statistics, parameter_snapshot,
                                 update_to_data_ratios)
from tinyllm.model import GPT, GPTConfig
from tinyllm.nn import Linear


def tiny_model():
    tinyllm.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8)).to(dtype=np.float64)


def test_describe_by_hand():
    stats = describe(np.array([-4.0, -1.0, 0.0, 1.0, 4.0]), flat_below=-3)
    assert stats.mean == 0 and stats.std == pytest.approx(math.sqrt(34 / 5)) and stats.flat == pytest.approx(0.2)
    assert describe(np.ones((2, 3))).flat == 0.0
    with pytest.raises(ValueError, match="at least one value"):
        describe(np.zeros(0))


def test_a_forward_hook_sees_inputs_and_output_until_removed():
    layer = Linear(3, 2)
    seen = []
    remove = layer.register_forward_hook(lambda module, inputs, output: seen.append((module, inputs, output)))
    x = Tensor(np.ones((4, 3)))
    y = layer(x)
    assert len(seen) == 1 and seen[0][0] is layer and seen[0][1][0] is x and seen[0][2] is y
    remove()
    layer(x)
    assert len(seen) == 1


def test_activations_are_what_each_gelu_was_given_and_each_block_handed_on():
    model = tiny_model()
    ids = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
    acts = activations(model, ids)
    assert sorted(acts) == ["h.0", "h.0.mlp.gelu", "h.1", "h.1.mlp.gelu"]
    x = model.wte(ids) + model.wpe(np.arange(5))                    # by hand, block by block
    for i, block in enumerate(model.h):
        after_attention = x + block.attn(block.ln_1(x))
        gelu_input = block.mlp.c_fc(block.ln_2(after_attention))
        x = block(x)
        np.testing.assert_allclose(acts[f"h.{i}.mlp.gelu"], gelu_input.numpy(), rtol=1e-12)
        np.testing.assert_allclose(acts[f"h.{i}"], x.numpy(), rtol=1e-12)
    assert not any(vars(m).get("_forward_hooks") for m in model.modules())   # the hooks are gone
    stats = describe(acts["h.0.mlp.gelu"], GELU_FLAT_BELOW)
    assert stats.flat == pytest.approx((acts["h.0.mlp.gelu"] < -3).mean())


def test_gradient_statistics_describe_every_weight_matrix_gradient():
    model = tiny_model()
    ids = np.array([[1, 2, 3, 4]])
    model(ids, ids)[1].backward()
    stats = gradient_statistics(model)
    matrices = {name: p for name, p in model.named_parameters() if p.ndim == 2}
    assert set(stats) == set(matrices) and "h.0.attn.c_attn.weight" in stats and "h.0.attn.c_attn.bias" not in stats
    for name, p in matrices.items():
        assert stats[name] == describe(p.grad.numpy())


def test_update_to_data_ratio_of_an_sgd_step_is_lr_times_the_gradients_spread_over_the_weights():
    model = tiny_model()
    ids = np.array([[1, 2, 3, 4]])
    model(ids, ids)[1].backward()
    grads = {name: p.grad.numpy().copy() for name, p in model.named_parameters()}
    before = parameter_snapshot(model)
    optim.SGD(model.parameters(), lr=0.1).step()                     # w -= 0.1·g
    ratios = update_to_data_ratios(model, before)
    assert set(ratios) == set(before)
    for name, ratio in ratios.items():
        assert ratio == pytest.approx(0.1 * grads[name].std() / before[name].std(), rel=1e-9)
