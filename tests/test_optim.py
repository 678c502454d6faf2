"""Optimizers, clipping and the learning-rate schedule against hand-computed steps."""

import numpy as np
import pytest

from tinyllm import optim
from tinyllm.nn import Parameter
from tinyllm.tensor import Tensor


def with_grad(values, grad):
    p = Parameter(np.array(values, np.float32))
    p.grad = Tensor(np.array(grad, np.float32))
    return p


def test_sgd_with_momentum_by_hand():
    p = with_grad([1.0, 2.0], [0.5, -1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.step()                     # v = g;            p = [1 - 0.05, 2 + 0.1]
    np.testing.assert_allclose(p.numpy(), [0.95, 2.1], rtol=1e-6)
    opt.step()                     # v = 0.9 g + g = 1.9 g
    np.testing.assert_allclose(p.numpy(), [0.95 - 0.095, 2.1 + 0.19], rtol=1e-6)


def test_adamw_first_step_is_lr_times_sign_and_decays_only_matrices():
    w = with_grad([[1.0, -2.0]], [[0.3, -4.0]])
    b = with_grad([1.0, -2.0], [0.3, -4.0])
    optim.AdamW([w, b], lr=0.01, weight_decay=0.1).step()
    # step 1: m̂ = g, v̂ = g², so the step is lr·g/(|g| + eps) ≈ lr·sign(g)
    np.testing.assert_allclose(w.numpy(), [[1.0 * (1 - 0.001) - 0.01, -2.0 * (1 - 0.001) + 0.01]], rtol=1e-5)
    np.testing.assert_allclose(b.numpy(), [1.0 - 0.01, -2.0 + 0.01], rtol=1e-5)


def test_adamw_follows_its_formula_over_several_steps():
    """Five steps against AdamW written out in float64, one parameter at a time, with the
    learning rate changed midway (as a schedule does): step 1 alone cannot tell whether the
    moments and bias corrections carry over correctly from step to step."""
    rng = np.random.default_rng(1)
    b0, w0 = rng.standard_normal(3), rng.standard_normal((2, 3))   # a vector first: only the matrix decays
    ours = [Parameter(b0.astype(np.float32)), Parameter(w0.astype(np.float32))]
    opt = optim.AdamW(ours, lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.5)
    expected, decay = [b0, w0], [0.0, 0.5]
    m, v = [np.zeros_like(b0), np.zeros_like(w0)], [np.zeros_like(b0), np.zeros_like(w0)]
    for t, lr in enumerate([0.01, 0.01, 0.03, 0.03, 0.003], start=1):
        opt.lr = lr
        grads = [rng.standard_normal(b0.shape), rng.standard_normal(w0.shape)]
        for i, g in enumerate(grads):
            ours[i].grad = Tensor(g.astype(np.float32))
            expected[i] = expected[i] * (1 - lr * decay[i])
            m[i] = 0.8 * m[i] + 0.2 * g
            v[i] = 0.9 * v[i] + 0.1 * g * g
            m_hat, v_hat = m[i] / (1 - 0.8 ** t), v[i] / (1 - 0.9 ** t)
            expected[i] = expected[i] - lr * m_hat / (np.sqrt(v_hat) + 1e-6)
        opt.step()
    for p, e in zip(ours, expected):
        np.testing.assert_allclose(p.numpy(), e, rtol=1e-5, atol=1e-6)


def test_adamw_matches_pytorch():
    # A vector before a matrix: the flat layout puts matrices first, and only they decay.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    b0, w0 = rng.standard_normal(4).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    grads = rng.standard_normal((5, 16)).astype(np.float32)
    ours = [Parameter(b0.copy()), Parameter(w0.copy())]
    theirs = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in (b0, w0)]
    opt = optim.AdamW(ours, lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)
    t_opt = torch.optim.AdamW([{"params": [theirs[0]], "weight_decay": 0.0},
                               {"params": [theirs[1]], "weight_decay": 0.1}], lr=0.01, betas=(0.9, 0.99))
    for g in grads:
        for p, t in zip(ours, theirs):
            g_p, g = g[:p.data.size].reshape(p.shape), g[p.data.size:]
            p.grad, t.grad = Tensor(g_p), torch.from_numpy(g_p.copy())
        opt.step()
        t_opt.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_parameter_groups_decay_as_each_group_says_as_in_pytorch():
    # A group that names weight_decay decays all its parameters by it (a vector too); a group that
    # does not follows the default rule: matrices by the optimizer's weight_decay, vectors not at all.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    shapes = {"w1": (3, 2), "b1": (3,), "w2": (2, 2), "b2": (2,), "w3": (2, 3)}
    start = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    ours = {k: Parameter(v.copy()) for k, v in start.items()}
    theirs = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in start.items()}
    opt = optim.AdamW([{"params": [ours["w1"], ours["b1"]], "weight_decay": 0.5},
                       {"params": [ours["w2"]], "weight_decay": 0.0},
                       {"params": [ours["b2"], ours["w3"]]}], lr=0.05, weight_decay=0.1)
    t_opt = torch.optim.AdamW([{"params": [theirs["w1"], theirs["b1"]], "weight_decay": 0.5},
                               {"params": [theirs["w2"], theirs["b2"]], "weight_decay": 0.0},
                               {"params": [theirs["w3"]], "weight_decay": 0.1}], lr=0.05)
    # the flat layout: decay 0.5 (w1, b1), then 0.1 (w3), then the undecayed: two runs
    assert [(run.stop - run.start, wd) for run, wd in opt.decay_runs] == [(6 + 3, 0.5), (6, 0.1)]
    for _ in range(4):
        for k in shapes:
            g = rng.standard_normal(shapes[k]).astype(np.float32)
            ours[k].grad, theirs[k].grad = Tensor(g), torch.from_numpy(g.copy())
        opt.step()
        t_opt.step()
    for k in shapes:
        np.testing.assert_allclose(ours[k].numpy(), theirs[k].detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


def test_bad_parameter_groups_are_refused_by_name():
    a, b = with_grad([1.0], [1.0]), with_grad([2.0], [1.0])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.AdamW([{"params": [a]}, {"params": [a, b]}])
    with pytest.raises(ValueError, match=r"may set \['weight_decay'\]; got \['lr', 'params'\]"):
        optim.AdamW([{"params": [a], "lr": 0.1}])
    with pytest.raises(ValueError, match=r"may set \[\]; got \['params', 'weight_decay'\]"):
        optim.SGD([{"params": [a], "weight_decay": 0.1}])
    with pytest.raises(ValueError, match="either parameters or parameter groups"):
        optim.AdamW([a, {"params": [b]}])
    with pytest.raises(ValueError, match="weight_decay must be 0 or more, got -1"):
        optim.AdamW([{"params": [a], "weight_decay": -1}])
    optim.AdamW([a, a, b])  # the same parameter twice in one list is one parameter, as before


def test_parameters_become_views_of_one_flat_array_and_survive_replacement():
    from tinyllm.nn import Linear
    layer = Linear(3, 2)
    before = layer.state_dict()
    opt = optim.SGD(layer.parameters(), lr=1.0)
    assert opt.flat.shape == (8,)                                        # weight (2, 3) first, then bias (2,)
    assert all(np.shares_memory(p.data, opt.flat) for p in layer.parameters())
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[name])               # gathering changed no number
    # load_state_dict replaces the arrays: the next step gathers the new ones and updates them.
    layer.load_state_dict({"weight": np.ones((2, 3), np.float32), "bias": np.zeros(2, np.float32)})
    for p in layer.parameters():
        p.grad = Tensor(np.full(p.shape, 0.5, np.float32))
    opt.step()
    np.testing.assert_array_equal(layer.weight.numpy(), np.full((2, 3), 0.5, np.float32))
    np.testing.assert_array_equal(layer.bias.numpy(), np.full(2, -0.5, np.float32))
    assert all(np.shares_memory(p.data, opt.flat) for p in layer.parameters())


def test_optimizer_state_dict_round_trip():
    p1, p2 = with_grad([1.0, 2.0], [0.1, 0.2]), with_grad([1.0, 2.0], [0.1, 0.2])
    opt1 = optim.AdamW([p1], lr=0.1)
    opt1.step()
    opt2 = optim.AdamW([p2], lr=0.5)
    opt2.load_state_dict(opt1.state_dict())
    p2.data = p1.data.copy()
    opt1.step()
    opt2.step()
    np.testing.assert_array_equal(p1.numpy(), p2.numpy())
    with pytest.raises(ValueError, match="does not match"):
        optim.AdamW([p1, p2]).load_state_dict(opt1.state_dict())


def test_loading_a_state_saved_before_any_step():
    p = with_grad([1.0, 2.0], [0.1, 0.2])
    opt = optim.AdamW([p], lr=0.1)
    opt.load_state_dict({"steps": 0, "lr": 0.1, "state": {}})  # a checkpoint written at step 0
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.9, 1.9], rtol=1e-5)


def test_clip_grad_norm():
    a, b = with_grad([0.0], [3.0]), with_grad([0.0], [4.0])  # global norm 5
    norm = optim.clip_grad_norm_([a, b], max_norm=1.0)
    assert float(norm) == pytest.approx(5.0)
    np.testing.assert_allclose([a.grad.item(), b.grad.item()], [0.6, 0.8], rtol=1e-5)
    optim.clip_grad_norm_([a, b], max_norm=10.0)  # under the limit: unchanged
    np.testing.assert_allclose([a.grad.item(), b.grad.item()], [0.6, 0.8], rtol=1e-5)


def test_clip_grad_norm_keeps_shapes_and_never_writes_into_the_old_gradients():
    w = with_grad(np.zeros((2, 3)), np.full((2, 3), 2.0))   # Σ g² = 24
    b = with_grad(np.zeros(4), [1.0, 1.0, 1.0, 1.0])         # Σ g² = 4: global norm √28
    untouched = Parameter(np.zeros(2))                        # no gradient: left out, stays None
    old_w, old_b = w.grad.data, b.grad.data
    norm = optim.clip_grad_norm_([w, untouched, b], max_norm=1.0)
    assert float(norm) == pytest.approx(np.sqrt(28.0))
    assert w.grad.shape == (2, 3) and b.grad.shape == (4,) and untouched.grad is None
    np.testing.assert_allclose(w.grad.numpy(), np.full((2, 3), 2 / np.sqrt(28)), rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), np.full(4, 1 / np.sqrt(28)), rtol=1e-5)
    np.testing.assert_array_equal(old_w, 2.0)  # a gradient array someone else still holds is unchanged
    np.testing.assert_array_equal(old_b, 1.0)


def test_clip_grad_norm_of_huge_gradients_does_not_overflow():
    # Each square (1e20)² overflows float32; the norm does not: 1e20 · √2 · √(1 + 1).
    a, b = with_grad([0.0, 0.0], [1e20, -1e20]), with_grad([0.0], [1e20 * np.sqrt(2.0)])
    norm = optim.clip_grad_norm_([a, b], max_norm=1.0)
    assert float(norm) == pytest.approx(2e20, rel=1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [0.5, -0.5], rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [np.sqrt(2.0) / 2], rtol=1e-5)


def test_clip_grad_norm_reports_a_non_finite_norm_when_asked_and_leaves_the_gradients():
    a, b = with_grad([0.0], [np.nan]), with_grad([0.0, 0.0], [1.0, 2.0])
    with pytest.raises(RuntimeError, match="total norm is nan"):
        optim.clip_grad_norm_([a, b], max_norm=1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 2.0])         # as they were
    assert np.isnan(float(optim.clip_grad_norm_([a, b], max_norm=1.0)))  # by default: returned, as PyTorch does


def test_cosine_schedule():
    lr = lambda s: optim.cosine_lr(s, max_lr=1.0, min_lr=0.1, warmup_steps=10, decay_steps=110)  # noqa: E731
    assert lr(0) == pytest.approx(1 / 11) and lr(9) == pytest.approx(10 / 11)   # rising
    assert lr(10) == pytest.approx(1.0)                                            # peak
    assert lr(60) == pytest.approx(0.1 + 0.5 * 0.9)                                # halfway down the cosine
    assert lr(110) == pytest.approx(0.1) and lr(500) == pytest.approx(0.1)
    assert all(lr(s) >= lr(s + 1) for s in range(10, 120))


def test_empty_parameter_list_and_impossible_settings_are_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.AdamW([])
    p = [with_grad([1.0], [1.0])]
    with pytest.raises(ValueError, match="learning rate must be 0 or more, got -0.1"):
        optim.SGD(p, lr=-0.1)
    with pytest.raises(ValueError, match=r"betas must each be in \[0, 1\), got \(0.9, 1.0\)"):
        optim.AdamW(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps and weight_decay must be 0 or more, got 1e-08 and -0.1"):
        optim.AdamW(p, weight_decay=-0.1)
    mixed = [with_grad([1.0], [1.0]), Parameter(np.ones(2))]
    mixed[1].data = mixed[1].data.astype(np.float64)    # as Module.to(dtype=np.float64) would leave it
    with pytest.raises(ValueError, match="must share one dtype and device; got float64 on cpu beside float32"):
        optim.AdamW(mixed)
    state = optim.AdamW(p).state_dict()
    state["state"] = {"exp_avg": [np.zeros(3, np.float32)], "exp_avg_sq": [np.zeros(3, np.float32)]}
    with pytest.raises(ValueError, match=r"state exp_avg\[0\] has shape \(3,\), its parameter \(1,\)"):
        optim.AdamW(p).load_state_dict(state)


def test_a_model_cast_after_the_optimizer_was_made_still_trains_in_its_new_dtype():
    from tinyllm.nn import Linear
    layer = Linear(3, 2)
    opt = optim.AdamW(layer.parameters(), lr=0.1)
    for p in layer.parameters():
        p.grad = Tensor(np.ones(p.shape, np.float32))
    opt.step()
    layer.to(dtype=np.float64)
    before = layer.weight.numpy().copy()
    for p in layer.parameters():
        p.grad = Tensor(np.ones(p.shape), dtype=np.float64)
    opt.step()
    assert opt.flat.dtype == opt.state["exp_avg"].dtype == layer.weight.dtype == np.float64
    assert np.all(layer.weight.numpy() < before)  # it moved, against its gradient


@pytest.mark.parametrize("make", [lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=0.5),
                                  lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9)], ids=["AdamW", "SGD"])
def test_a_parameter_without_a_gradient_is_left_exactly_as_it_was(make):
    rng = np.random.default_rng(0)
    w, frozen = Parameter(rng.standard_normal((3, 4))), Parameter(rng.standard_normal((2, 4)))
    alone = Parameter(w.numpy().copy())
    together, by_itself = make([w, frozen]), make([alone])
    frozen.grad = Tensor(np.ones((2, 4)))
    together.step()                                   # one step with a gradient: momentum and moments fill
    state_before = {name: buf.copy() for name, buf in together.state.items()}
    before = frozen.numpy().copy()
    frozen.requires_grad_(False)
    for step in range(3):
        grad = rng.standard_normal((3, 4))
        w.grad, alone.grad, frozen.grad = Tensor(grad), Tensor(grad), None
        together.step()
        by_itself.step()
        assert np.array_equal(frozen.numpy(), before)  # bit for bit: no decay, no momentum
    part = together._slices[id(frozen)]
    for name, buf in together.state.items():
        assert np.array_equal(buf[part], state_before[name][part])
    if isinstance(together, optim.SGD):   # the others move as without the frozen one (AdamW's bias
        np.testing.assert_array_equal(w.numpy(), alone.numpy())   # correction counts all 4 steps, not 3)
    w.grad = frozen.grad = None
    together.step()                                   # nothing has a gradient: nothing moves
    assert np.array_equal(frozen.numpy(), before)
