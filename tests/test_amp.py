"""Mixed precision: 16-bit products in F.linear under autocast, loss scaling, a float16 run beside
a float32 one. On the CPU, with NumPy's float16 (and bfloat16 from ml_dtypes when installed)."""
import importlib.util

import numpy as np
import pytest

from tinyllm import Tensor, functional as F
from tinyllm.amp import GradScaler, autocast, compute_dtype
from tinyllm.nn import Parameter

HAS_BFLOAT16 = importlib.util.find_spec("ml_dtypes") is not None
DTYPES = ["float16", pytest.param("bfloat16", marks=pytest.mark.skipif(not HAS_BFLOAT16, reason="needs ml_dtypes"))]


def linear_and_grads(x, w, b):
    inputs = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    out = F.linear(*inputs)
    (out * out).sum().backward()
    return [out.data] + [t.grad.data for t in inputs]


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_under_autocast_multiplies_in_16_bits_and_answers_in_float32(dtype):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((3, 5, 32), (16, 32), (16,)))
    w *= 0.2
    exact = linear_and_grads(x, w, b)
    with autocast(dtype):
        assert compute_dtype() == np.dtype(dtype) if dtype == "float16" else compute_dtype().name == "bfloat16"
        mixed = linear_and_grads(x, w, b)
    assert compute_dtype() is None                                  # back to float32 outside
    digits = {"float16": 2 ** -10, "bfloat16": 2 ** -7}[dtype]      # each format's rounding step
    for got, want in zip(mixed, exact):
        assert got.dtype == np.float32
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= 8 * digits * scale, (dtype, np.abs(got - want).max(), scale)
        assert np.abs(got - want).max() > 0                         # the products really were rounded


def attention_and_grads(q, k, v, dropout_p=0.0):
    inputs = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*inputs, is_causal=True, dropout_p=dropout_p,
                                         generator=np.random.default_rng(3))
    (out * out).sum().backward()
    return [out.data] + [t.grad.data for t in inputs]


@pytest.mark.parametrize("dropout_p", [0.0, 0.5], ids=["no dropout", "dropout"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_under_autocast_multiplies_and_keeps_its_weights_in_16_bits(dtype, dropout_p, monkeypatch):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 7, 8)).astype(np.float32) for _ in range(3))
    exact = attention_and_grads(q, k, v, dropout_p)     # dropout draws in float32 both times: the same mask
    seen = []   # what attention's weights and their softmax backward were computed in
    weights, softmax_backward = F.attention_weights, F._softmax_backward
    monkeypatch.setattr(F, "attention_weights", lambda q, k, c: seen.append(("weights", q.dtype, k.dtype))
                        or weights(q, k, c))
    monkeypatch.setattr(F, "_softmax_backward", lambda y, g, axis=-1: seen.append(("backward", y.dtype, g.dtype))
                        or softmax_backward(y, g, axis))
    with autocast(dtype):
        mixed = attention_and_grads(q, k, v, dropout_p)
    sixteen = compute_dtype_of(dtype)
    # NumPy's float16 products are float16 arrays, as a GPU's are; ml_dtypes hands bfloat16 products
    # back in float32, so on the CPU the weights are float32 arrays there (of bfloat16 products).
    kept = sixteen if dtype == "float16" else np.dtype(np.float32)
    assert seen[:2] == [("weights", sixteen, sixteen), ("backward", kept, kept)], seen
    digits = {"float16": 2 ** -10, "bfloat16": 2 ** -7}[dtype]
    for got, want in zip(mixed, exact):
        assert got.dtype == np.float32                              # the answer and the gradients: float32
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= 16 * digits * scale, (dtype, np.abs(got - want).max(), scale)
        assert np.abs(got - want).max() > 0                         # the products really were rounded


def compute_dtype_of(name):
    """The dtype ``autocast(name)`` multiplies in: NumPy's float16, or ml_dtypes' bfloat16."""
    with autocast(name):
        return compute_dtype()


def test_the_scaler_keeps_small_gradients_float16_would_lose():
    # A gradient of 1e-8 is below float16's smallest subnormal (6e-8): unscaled, the 16-bit product
    # gives 0; scaled by 2^16 it survives, and unscaling gives it back in float32.
    x = np.full((1, 4), 1e-4, np.float32)
    w = Parameter(np.full((1, 4), 0.5, np.float32))
    for scale, survives in ((1.0, False), (2.0 ** 16, True)):
        w.grad = None
        with autocast("float16"):
            out = F.linear(Tensor(x), w)
        (out * np.float32(1e-4 * scale)).sum().backward()           # d loss / d out = 1e-4: dW = 1e-8
        scaler = GradScaler(init_scale=scale)
        assert scaler.unscale_([w])
        np.testing.assert_allclose(w.grad.numpy(), 1e-8 if survives else 0.0, rtol=1e-2)


def test_the_scaler_skips_an_overflowing_step_halves_and_grows_again():
    scaler = GradScaler(init_scale=1024.0, growth_interval=3)
    p = Parameter(np.zeros(2, np.float32))
    p.grad = Tensor(np.array([np.inf, 1.0], np.float32))
    assert not scaler.unscale_([p])
    scaler.update(False)
    assert scaler.scale == 512.0 and scaler.skipped == 1 and not scaler.last_finite
    for _ in range(3):
        scaler.update(True)
    assert scaler.scale == 1024.0 and scaler.good_steps == 0


def test_a_step_whose_16_bit_products_overflow_is_skipped_quietly():
    """A loss scale too large overflows float16 in the backward: the step is skipped, the scale halved,
    the weights left alone, and no NumPy overflow warning shown (the scaler's check is the warning)."""
    import warnings

    from tinyllm import manual_seed, optim
    from tinyllm.data import TokenBatches
    from tinyllm.distributed import World
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.train import scaled_train_step
    manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16))
    before = {name: w.copy() for name, w in model.state_dict().items()}
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    scaler = GradScaler(init_scale=2.0 ** 40)
    with warnings.catch_warnings(), autocast("float16"):
        warnings.simplefilter("error")
        scaled_train_step(model, opt, TokenBatches(np.arange(400) % 20, block_size=8), 4,
                          np.random.default_rng(0), 1, 1.0, World(), scaler)
    assert scaler.skipped == 1 and scaler.scale == 2.0 ** 39
    assert all(np.array_equal(w, before[name]) for name, w in model.state_dict().items())


def test_an_unknown_dtype_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown dtype 'float8'; choose from float32, float16, bfloat16"):
        with autocast("float8"):
            pass
    from tinyllm.train import TrainConfig
    with pytest.raises(ValueError, match="unknown dtype 'half'"):
        TrainConfig(dtype="half")


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_mixed_precision_run_follows_the_float32_run(tmp_path, dtype):
    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.train import TrainConfig, train
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 100, encoding="utf-8")
    common = dict(data=str(corpus), max_iters=30, eval_interval=30, eval_iters=2, log_interval=1, sample_tokens=0,
                  n_layer=1, n_embd=32, n_head=2, block_size=16, batch_size=4, lr=3e-3, warmup_iters=5)
    lines = []
    full = train(TrainConfig(out=str(tmp_path / "f32"), **common), log=lambda line: None)
    mixed = train(TrainConfig(out=str(tmp_path / dtype), dtype=dtype, **common), log=lines.append)
    assert any(f"the Linear layers' and attention's products in {dtype}" in line for line in lines)
    assert any("| loss scale 65536" in line for line in lines) == (dtype == "float16")
    assert abs(mixed["loss"][-1] / full["loss"][-1] - 1) < 0.01         # the curves agree at the end
    assert abs(mixed["val"][-1] / full["val"][-1] - 1) < 0.01
    weights = load_checkpoint(tmp_path / dtype)["model"].state_dict()
    assert all(w.dtype == np.float32 for w in weights.values())        # the master weights stay float32


def test_a_format_the_device_cannot_compute_in_is_refused_before_the_run(monkeypatch, tmp_path):
    """A CuPy without bfloat16 (older than 14, or no ml_dtypes), or one that cannot build tinyllm's
    kernels for it, is named at the start, nothing written."""
    pytest.importorskip("ml_dtypes")
    from cuda_on_host import calls, pretend_cupy
    from tinyllm import cuda_kernels
    from tinyllm.amp import check_products_on, dtype_of
    from tinyllm.train import TrainConfig, train
    pretend_cupy(monkeypatch)
    check_products_on("cuda", "float16")                # the pretended GPU computes in both formats
    check_products_on("cuda", "bfloat16")
    assert calls.count("tinyllm_softmax") == 2          # its kernels were built and run for each

    def kernels_refuse(*args):
        raise type("CompileException", (Exception,), {})("no suitable conversion from bfloat16")
    with monkeypatch.context() as patch:
        patch.setattr(cuda_kernels, "softmax", kernels_refuse)
        with pytest.raises(RuntimeError, match=r"--dtype bfloat16: cuda cannot compute in bfloat16 here "
                                               r"\(CompileException: no suitable conversion"):
            check_products_on("cuda", "bfloat16")

    import cupy
    ones = cupy.ones

    def ones_without_bfloat16(shape, dtype=None):
        if dtype == dtype_of("bfloat16"):
            raise TypeError("Unsupported type <class 'numpy.dtype[bfloat16]'>")
        return ones(shape, dtype=dtype)
    monkeypatch.setattr(cupy, "ones", ones_without_bfloat16)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match=r"--dtype bfloat16: cuda cannot compute in bfloat16 here \(TypeError: "
                                           r"Unsupported type"):
        train(TrainConfig(device="cuda", dtype="bfloat16", out=str(out)), log=lambda line: None)
    assert not out.exists()
