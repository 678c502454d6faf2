"""CPU and GPU agree: every op's output and gradients match to float32 tolerance.

Runs only where CuPy finds a GPU (``TINYLLM_TEST_DEVICES=cpu,cuda``); skipped on CI.
"""
import numpy as np
import pytest

import tinyllm
from tinyllm import Tensor
from tinyllm.model import GPT, GPTConfig
from conftest import DEVICES, cuda_unavailable_reason
from test_ops_gradcheck import CASES, make_input

_reason = cuda_unavailable_reason() if "cuda" in DEVICES else "cuda not in TINYLLM_TEST_DEVICES"
pytestmark = pytest.mark.skipif(_reason is not None, reason=str(_reason))

DEVICE_CASES = [c for c in CASES if c[0] != "dropout"]  # its NumPy generator makes CPU masks only


def run_on(device, fn, arrays):
    inputs = [Tensor(a, dtype=np.float32, device=device, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    out.backward(np.ones(out.shape, np.float32) if device == "cpu" else
                 Tensor(np.ones(out.shape, np.float32), device=device).data)
    return out.numpy(), [t.grad.numpy() if t.grad is not None else None for t in inputs]


@pytest.mark.parametrize("name,fn,specs", DEVICE_CASES, ids=[c[0] for c in DEVICE_CASES])
def test_op_agrees_across_devices(name, fn, specs, rng):
    arrays = [make_input(s, rng).numpy() for s in specs]
    out_cpu, grads_cpu = run_on("cpu", fn, arrays)
    out_gpu, grads_gpu = run_on("cuda", fn, arrays)
    np.testing.assert_allclose(out_gpu, out_cpu, rtol=1e-4, atol=1e-5)
    for g_cpu, g_gpu in zip(grads_cpu, grads_gpu):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-4, atol=1e-5)


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
