"""The autograd engine: graph walking, accumulation, grad mode, dtypes, devices and errors."""
import gc
import weakref

import numpy as np
import pytest

from tinyllm import Tensor, no_grad
from tinyllm.gradcheck import gradcheck
from tinyllm.tensor import sum_to_shape


def test_chain_rule_by_hand():
    # f = (a·b + a)²  at a=2, b=3:  f = 8² = 64, df/da = 2(ab+a)(b+1) = 64, df/db = 2(ab+a)·a = 32
    a, b = Tensor(2.0, requires_grad=True), Tensor(3.0, requires_grad=True)
    f = (a * b + a) ** 2
    f.backward()
    assert f.item() == 64.0
    assert a.grad.item() == 64.0 and b.grad.item() == 32.0
    assert a.grad.shape == () and b.grad.shape == ()  # a gradient has its tensor's shape


def test_leaf_gradients_are_plain_arrays_of_the_leaf_shape():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    x.sum().backward()  # sum's backward hands back a broadcast view
    assert x.grad.shape == (2, 3) and x.grad.data.flags.c_contiguous and x.grad.data.strides != (0, 0)


def test_diamond_graph_sums_both_paths():
    # y = x·x + x uses x three times: dy/dx = 2x + 1
    x = Tensor([1.0, -2.0, 0.5], requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 1)


def test_gradients_accumulate_across_backward_calls():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_shared_gradient_array_is_not_corrupted():
    # a + b's backward gives both leaves one array; accumulating into one must not touch the other
    a, b = Tensor([1.0, 1.0], requires_grad=True), Tensor([1.0, 1.0], requires_grad=True)
    (a + b).sum().backward()
    (a * 5).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [6, 6])
    np.testing.assert_allclose(b.grad.numpy(), [1, 1])


def test_every_grad_is_an_array_of_its_own_safe_to_change_in_place():
    # a + b (and a - b, x * 1 ...) hands one array to both inputs; each .grad must still be its own
    a, b = Tensor([1.0, 1.0], requires_grad=True), Tensor([2.0, 2.0], requires_grad=True)
    c = a + b
    c.retain_grad()
    (c * 3).sum().backward()
    grads = [a.grad.data, b.grad.data, c.grad.data]
    assert not any(np.shares_memory(x, y) for i, x in enumerate(grads) for y in grads[i + 1:])
    a.grad.data *= 0.5                         # as loss scaling or an all-reduce would, in place
    np.testing.assert_allclose(a.grad.numpy(), [1.5, 1.5])
    np.testing.assert_allclose(b.grad.numpy(), [3.0, 3.0])
    np.testing.assert_allclose(c.grad.numpy(), [3.0, 3.0])


def test_only_leaves_keep_grad_unless_retained():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = (x * 2).retain_grad()
    k = h * 1.0
    (h * k).sum().backward()
    assert k.grad is None
    np.testing.assert_allclose(h.grad.numpy(), 2 * h.numpy())


def test_backward_twice_needs_retain_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)
    z = (x.exp() * 2).sum()
    z.backward()
    with pytest.raises(RuntimeError, match="second time"):
        z.backward()


def test_an_op_with_several_outputs_runs_its_backward_once_after_all_their_consumers():
    # split has three results. The last one reaches the loss through a long chain that the
    # walk finishes after the first one; its gradient must be in when split's backward runs.
    x = Tensor(np.random.default_rng(0).normal(size=(4, 3)), dtype=np.float64, requires_grad=True)

    def f(x):
        a, unused, c = x.split([1, 2, 1], axis=0)
        deep = (c * 2).tanh().exp() * 3
        return (a * c).sum() + (deep * a).sum()

    gradcheck(f, [x])
    x.grad = None
    f(x).backward()
    assert (x.grad.numpy()[1:3] == 0).all()  # the piece no gradient reached gets zeros


def test_split_outputs_retain_grad_and_refuse_a_second_backward():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    a, b = x.split(2)
    a.retain_grad()
    y = (a * a).sum() + b.sum() * 5
    y.backward(retain_graph=True)
    np.testing.assert_allclose(a.grad.numpy(), [2.0, 4.0])
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0, 10.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_no_grad_records_nothing_and_restores():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y._parents == ()
    assert (x * 2).requires_grad


def test_detach_cuts_the_graph():
    x = Tensor([3.0], requires_grad=True)
    y = x * x.detach()  # the detached factor is a constant: dy/dx = x
    y.sum().backward()
    assert x.grad.item() == 3.0


def test_backward_on_non_scalar_needs_grad():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"non-scalar tensor of shape \(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), tensor has \(2, 3\)"):
        y.backward(np.ones(3))
    y.backward(np.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad.numpy(), np.ones((2, 3)))


def test_a_backward_of_the_wrong_shape_is_caught_where_it_happens():
    from tinyllm.tensor import from_op
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = from_op(x.data.sum(axis=0), (x,), lambda g: (g,), "column_sum")   # forgot to broadcast g back to x
    with pytest.raises(RuntimeError, match=r"column_sum backward gave a gradient of shape \(3,\)"):
        y.sum().backward()


def test_backward_without_requires_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_dtype_policy():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(np.zeros(3)).dtype == np.float32             # float64 arrays become float32
    assert Tensor(np.zeros(3), dtype=np.float64).dtype == np.float64
    assert Tensor([1, 2]).dtype.kind == "i"                    # token ids stay integer
    assert (Tensor([1.0]) * 0.5).dtype == np.float32           # numbers do not upcast
    x64 = Tensor([1.0], dtype=np.float64, requires_grad=True)
    (x64 * 2.0).sum().backward()
    assert x64.grad.dtype == np.float64


def test_integer_and_float_tensors_meet_in_the_float_dtype():
    ints, floats = Tensor([1, 2, 3]), Tensor([0.5, 0.5, 0.5], requires_grad=True)
    for out in (ints + floats, floats + ints, floats * ints, ints - floats, floats / ints, ints / floats):
        assert out.dtype == np.float32, out.dtype                  # NumPy alone would give float64
    (ints * floats).sum().backward()
    np.testing.assert_allclose(floats.grad.numpy(), [1, 2, 3])


def test_max_backward_stays_in_the_input_dtype():
    a = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 1.0, 0.0]], np.float32), requires_grad=True)
    out = a.max(axis=1)
    (grad,) = out._backward(np.ones(2, np.float32))               # the op's own backward, before any cast
    assert grad.dtype == np.float32
    np.testing.assert_array_equal(grad, [[0, 0.5, 0.5], [1, 0, 0]])   # ties share the gradient


def test_integer_tensors_refuse_requires_grad():
    with pytest.raises(TypeError, match="floating-point"):
        Tensor([1, 2, 3], requires_grad=True)


@pytest.mark.parametrize("data", ["abc", [1 + 2j], [None, 1.0]])
def test_data_that_is_not_numbers_is_refused(data):
    with pytest.raises(TypeError, match="Tensor holds numbers"):
        Tensor(data)


def test_shape_errors_name_the_op_and_shapes():
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul: \(2, 3\) @ \(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4, 5\)"):
        a + b
    with pytest.raises(ValueError, match=r"batch dimensions"):
        Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones((5, 4, 2)))
    with pytest.raises(ValueError, match=r"reshape: cannot view \(2, 3\)"):
        a.reshape(4, 2)
    from tinyllm import concat, split
    for bad_axis in (lambda: a.transpose(0, 2), lambda: a.permute(0, 5), lambda: a.sum(axis=-3),
                     lambda: concat([a, a], axis=2), lambda: split(a, 1, axis=2)):
        with pytest.raises(ValueError, match=r"axis -?\d is out of range for a tensor with 2 dimensions"):
            bad_axis()
    with pytest.raises(ValueError, match=r"permute: \(1, 1\) is not an ordering of the 2 axes"):
        a.permute(1, 1)
    with pytest.raises(ValueError, match=r"matmul: \(3,\) @ \(3, 2\): both operands need 2 or more dimensions"):
        Tensor(np.ones(3)) @ Tensor(np.ones((3, 2)))
    with pytest.raises(IndexError, match=r"index into a tensor of shape \(2, 3\): index 5 is out of bounds"):
        a[5]
    with pytest.raises(ValueError, match=r"concat along axis 0: shapes \[\(2, 3\), \(4, 5\)\]"):
        concat([a, b], axis=0)
    with pytest.raises(ValueError, match=r"split: sizes \[1, 1\] do not add up to 3, the length of axis 1"):
        split(a, [1, 1], axis=1)


def test_sum_to_shape_undoes_broadcasting():
    g = np.ones((2, 4, 3))
    np.testing.assert_array_equal(sum_to_shape(g, (4, 3)), np.full((4, 3), 2.0))
    np.testing.assert_array_equal(sum_to_shape(g, (2, 1, 3)), np.full((2, 1, 3), 4.0))
    np.testing.assert_array_equal(sum_to_shape(g, ()), 24.0)


def test_reflected_operators_and_numpy_on_the_left():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = 1.0 - x + np.array([1.0, 1.0]) * x / 2.0 + 2.0 ** x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -1 + 0.5 + np.log(2) * 2.0 ** np.array([1.0, 2.0]), rtol=1e-6)


def test_item_numpy_and_repr():
    t = Tensor([[1.5]])
    assert t.item() == 1.5 and isinstance(t.numpy(), np.ndarray)
    assert "requires_grad=True" in repr(Tensor([1.0], requires_grad=True))
    with pytest.raises(ValueError, match="one element"):
        Tensor([1.0, 2.0]).item()


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        Tensor([1.0], device="tpu")


def test_to_same_device_is_identity(device):
    t = Tensor([1.0, 2.0], device=device)
    assert t.to(device) is t and t.device == device


def test_mixing_devices_says_which_lives_where(device):
    if device == "cpu":
        pytest.skip("needs a second device")
    with pytest.raises(RuntimeError, match=r"different devices .*on cpu.*on cuda|on cuda.*on cpu"):
        Tensor([1.0]) + Tensor([1.0], device="cuda")


def test_cuda_without_cupy_is_one_clear_error(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy."):
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_cupy)
    with pytest.raises(RuntimeError, match="needs CuPy"):
        Tensor([1.0], device="cuda")


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.item() == 1.0


@pytest.mark.parametrize("target_shape,index", [
    ((7, 3), np.array([[1, 5, 1], [6, -1, 0]])),   # 2-D ids, a repeat, and -1 meaning row 6 (also present)
    ((5,), np.array([4, 4, 4, 0])),                 # a 1-D target
    ((4, 2), (np.array([0, 3, 0]), np.array([1, 1, 1]))),  # element pairs: the general path
])
def test_scatter_add_sums_every_repeat_like_np_add_at(target_shape, index):
    from tinyllm.backend import scatter_add
    rng = np.random.default_rng(0)
    values = rng.standard_normal(np.zeros(target_shape)[index].shape)
    expected, got = np.zeros(target_shape), np.zeros(target_shape)
    np.add.at(expected, index, values)
    scatter_add(got, index, values)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_row_and_column_sums_are_the_sums_numpy_gives(rng):
    from tinyllm.backend import column_sums, row_sums
    for shape in [(5,), (4, 3), (2, 3, 7), (0, 4)]:
        a = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(row_sums(a), a.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(column_sums(a), a.reshape(-1, shape[-1]).sum(axis=0), rtol=1e-5, atol=1e-6)
        assert row_sums(a).dtype == column_sums(a).dtype == np.float32


def test_after_backward_the_outputs_of_split_are_freed_without_the_garbage_collector():
    """Several outputs of one op each hold their tuple, a reference cycle. Left in place after
    the backward, it would keep their arrays (attention's q, k and v, in a GPT) until Python's
    cyclic garbage collector happened to run: on a GPU, memory the next step could not reuse."""
    x = Tensor(np.ones((4, 3)), requires_grad=True)
    a, b = (x * 2).split(2, axis=0)
    (a * b).sum().backward()
    kept = weakref.ref(a)
    gc.disable()
    try:
        del a, b
        assert kept() is None
    finally:
        gc.enable()
