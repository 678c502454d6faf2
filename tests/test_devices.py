"""CPU and GPU agree: every op's output and gradients match to float32 tolerance.

Runs only where CuPy finds a GPU (``TINYLLM_TEST_DEVICES=cpu,cuda``); skipped on CI.
"""
import importlib.util
import sys

import numpy as np
import pytest

import tinyllm
from tinyllm import Tensor
from tinyllm.model import GPT, GPTConfig
from conftest import DEVICES, cuda_unavailable_reason
from test_cuda_kernels import EXTREMES, adamw_after_four_steps, resume_on_the_other_device
from test_ops_gradcheck import CASES, make_input

_reason = cuda_unavailable_reason() if "cuda" in DEVICES else "cuda not in TINYLLM_TEST_DEVICES"
pytestmark = pytest.mark.skipif(_reason is not None, reason=str(_reason))


def run_on(device, fn, arrays):
    inputs = [Tensor(a, dtype=np.float32, device=device, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    out.backward(np.ones(out.shape, np.float32) if device == "cpu" else
                 Tensor(np.ones(out.shape, np.float32), device=device).data)
    return out.numpy(), [t.grad.numpy() if t.grad is not None else None for t in inputs]


@pytest.mark.parametrize("name,fn,specs", CASES, ids=[c[0] for c in CASES])
def test_op_agrees_across_devices(name, fn, specs, rng):
    arrays = [make_input(s, rng).numpy() for s in specs]
    out_cpu, grads_cpu = run_on("cpu", fn, arrays)
    out_gpu, grads_gpu = run_on("cuda", fn, arrays)
    np.testing.assert_allclose(out_gpu, out_cpu, rtol=1e-4, atol=1e-5)
    for g_cpu, g_gpu in zip(grads_cpu, grads_gpu):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,fn,arrays", EXTREMES, ids=[c[0] for c in EXTREMES])
def test_fused_kernels_agree_across_devices_at_extremes(name, fn, arrays):
    out_cpu, grads_cpu = run_on("cpu", fn, arrays)
    out_gpu, grads_gpu = run_on("cuda", fn, arrays)
    for gpu, cpu in zip([out_gpu] + grads_gpu, [out_cpu] + grads_cpu):
        assert np.isfinite(gpu).all()
        np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5)


def test_model_agrees_across_devices():
    tinyllm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=4, n_embd=32))
    ids = np.random.default_rng(0).integers(0, 65, (3, 16))
    logits_cpu, loss_cpu = model(ids, ids)
    loss_cpu.backward()
    grads_cpu = {n: p.grad.numpy() for n, p in model.named_parameters()}
    model.zero_grad()
    model.to("cuda")
    logits_gpu, loss_gpu = model(ids, ids)
    loss_gpu.backward()
    np.testing.assert_allclose(logits_gpu.numpy(), logits_cpu.numpy(), rtol=1e-4, atol=1e-5)
    for n, p in model.named_parameters():
        assert p.device == "cuda"
        np.testing.assert_allclose(p.grad.numpy(), grads_cpu[n], rtol=1e-3, atol=1e-5, err_msg=n)


def test_adamw_steps_agree_across_devices():
    for gpu, cpu in zip(adamw_after_four_steps("cuda"), adamw_after_four_steps("cpu")):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-6)


def test_batches_are_gathered_on_the_gpu_and_match_the_cpu():
    from tinyllm.backend import device_of
    from tinyllm.data import TokenBatches
    ids = np.arange(5000, dtype=np.uint16)
    cpu = TokenBatches(ids, 16).get_batch("train", 8, np.random.default_rng(1))
    gpu = TokenBatches(ids, 16, device="cuda").get_batch("train", 8, np.random.default_rng(1))
    assert device_of(gpu[0]) == "cuda"
    for a, b in zip(cpu, gpu):
        np.testing.assert_array_equal(a, b.get())


def test_tf32_changes_matmuls_only_a_little():
    import cupy
    from tinyllm.backend import set_tf32
    a = cupy.asarray(np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32))
    exact = (a.astype(cupy.float64) @ a.astype(cupy.float64)).get()
    try:
        set_tf32(True)
        tf32 = (a @ a).get()
    finally:
        set_tf32(False)
    fp32 = (a @ a).get()
    err32, err_tf32 = (np.abs(x - exact).max() / np.abs(exact).max() for x in (fp32, tf32))
    assert err32 < 1e-5 and 1e-5 < err_tf32 < 1e-2  # TF32 really is on, and still close


@pytest.mark.parametrize("first,then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_run_resumes_on_the_other_device(tmp_path, first, then):
    """A checkpoint written on one device (weights, AdamW's moments, the step) resumes on the other,
    and the losses go on as in a run that never moved."""
    resume_on_the_other_device(tmp_path, first, then)


def test_session_16_gpu_paths_on_a_real_gpu():
    """What tests/test_cuda_kernels.py checks on a pretended GPU, once on CuPy itself: the float64
    sum of squares in clip_grad_norm_, ids and targets out of range reported where read, a
    compression round trip, and F.linear under autocast."""
    from tinyllm import functional as F, optim
    from tinyllm.amp import autocast
    from tinyllm.backend import to_device
    from tinyllm.compress import compress, decompress
    from tinyllm.nn import Parameter
    from tinyllm.tokenizer import CharTokenizer
    p = Parameter(to_device(np.zeros(3, np.float32), "cuda"))
    p.grad = Tensor(np.array([1e20, -1e20, 1e20 * np.sqrt(2.0)], np.float32), device="cuda")
    assert float(optim.clip_grad_norm_([p], 1.0)) == pytest.approx(2e20, rel=1e-6)

    tinyllm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16)).to("cuda")
    ids, targets = to_device(np.array([[1, 2, 3, 25]]), "cuda"), to_device(np.array([[2, 3, 4, 5]]), "cuda")
    with pytest.raises(ValueError, match="index out of range for axis 0"):
        model(ids, targets)[1].item()
    with pytest.raises(ValueError, match="a target id is outside"):
        model(to_device(np.array([[1, 2, 3, 4]]), "cuda"), to_device(np.array([[2, 3, 4, 20]]), "cuda"))[1].item()

    tok = CharTokenizer("abcdefghijklmnopqrst")
    data = ("the cat sat — on a mat".encode() + b"\xff\xfe") * 20     # outside the vocabulary, invalid UTF-8
    assert decompress(model, tok, compress(model, tok, data, 3)) == data

    x = Tensor(np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32), device="cuda")
    w = Tensor(np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32) * 0.1, device="cuda")
    exact = F.linear(x, w).numpy()
    with autocast("float16"):
        mixed = F.linear(x, w)
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(mixed.numpy(), exact, atol=1e-2)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_attention_on_a_real_gpu(dtype):
    """Attention under autocast on CuPy: 16-bit products and (T, T) arrays, kernels that read and write
    16 bits and sum in float32 (their CuPy types), against the CPU's same arithmetic."""
    from tinyllm import functional as F
    from tinyllm.amp import autocast, check_products_on
    try:
        check_products_on("cuda", dtype)
    except RuntimeError as e:
        pytest.skip(str(e))

    def attention(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    arrays = [np.random.default_rng(i).standard_normal((2, 3, 33, 16)) for i in range(3)]
    with autocast(dtype):
        (gpu, gpu_grads), (cpu, cpu_grads) = (run_on(device, attention, arrays) for device in ("cuda", "cpu"))
    digits = {"float16": 2 ** -10, "bfloat16": 2 ** -7}[dtype]
    for got, want in zip([gpu, *gpu_grads], [cpu, *cpu_grads]):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=0, atol=8 * digits * np.abs(want).max())

    from tinyllm import cuda_kernels
    from tinyllm.amp import dtype_of
    from tinyllm.backend import to_numpy, xp_for
    scores = xp_for("cuda").zeros((2, 16384), dtype=dtype_of(dtype))
    y = cuda_kernels.softmax(scores)            # summed in 16 bits it would stop at 2048 or 256: 2x or 64x too big
    dx = cuda_kernels.softmax_backward(y, xp_for("cuda").ones_like(y))
    assert y.dtype == dx.dtype == scores.dtype
    assert np.all(to_numpy(y).astype(np.float32) == 1 / 16384) and np.all(to_numpy(dx).astype(np.float32) == 0)


@pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="needs mpi4py: pip install -e \".[dist]\"")
def test_nccl_and_two_ranks_on_a_real_gpu(tmp_path):
    """What tests/test_distributed.py checks on pretended GPUs, on CuPy and NCCL themselves: NCCL's
    communicator (of one rank here) sums a buffer in place; on one GPU two ranks are refused NCCL
    by name, and through the host they take the steps one process takes with twice the batch."""
    import cupy
    from test_distributed import MPIEXEC, logged, run, train_args
    from tinyllm.distributed import NCCLWorld
    world = NCCLWorld()                                      # mpi4py alone: a world of one rank
    flat = cupy.arange(10, dtype=cupy.float32)
    assert world.sum_flat(flat) is flat
    np.testing.assert_array_equal(flat.get(), np.arange(10))
    if MPIEXEC is None:
        pytest.skip("NCCL's communicator checked; the runs of two ranks need mpiexec (the mpich wheel)")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 300, encoding="utf-8")
    on_gpu = ["--device", "cuda"]
    if cupy.cuda.runtime.getDeviceCount() == 1:
        refused = run([MPIEXEC, "-n", "2", sys.executable, *train_args(str(corpus), tmp_path / "nccl", 2, *on_gpu)])
        assert refused.returncode != 0 and "2 processes on this machine but 1 GPU(s)" in refused.stderr
    one = run([sys.executable, *train_args(str(corpus), tmp_path / "one", 4, *on_gpu)])
    two = run([MPIEXEC, "-n", "2", sys.executable, *train_args(str(corpus), tmp_path / "two", 2, *on_gpu,
                                                              "--all-reduce", "mpi")])
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    np.testing.assert_allclose(logged(two.stdout, "loss"), logged(one.stdout, "loss"), rtol=1e-4)
