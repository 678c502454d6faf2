"""The fused CUDA kernels' formulas, without a GPU: their C bodies compiled for the CPU.

functional.py sends GELU, softmax, LayerNorm, cross-entropy, dropout and attention, and optim.py sends
AdamW, through tinyllm/cuda_kernels.py on a GPU. Here that GPU path runs on NumPy arrays with each
kernel's C text compiled by the host's C++ compiler (tests/cuda_on_host.py), so
the gradchecks and a comparison with the NumPy path cover it on every CI run, and a
whole training step on a pretended GPU is checked for reads back to the host.
"""
import importlib.util
import re

import numpy as np
import pytest

from conftest import bytes_left_allocated
from cuda_on_host import COMPILER, calls, run_gpu_path_on_host
from test_ops_gradcheck import CASES, make_input
from tinyllm import Tensor, cuda_kernels, functional as F, optim
from tinyllm.amp import autocast
from tinyllm.backend import to_numpy
from tinyllm.functional import causal_mask
from tinyllm.gradcheck import gradcheck
from tinyllm.nn import Parameter

pytestmark = pytest.mark.skipif(COMPILER is None, reason="no C++ compiler to build the kernels for the host")

FUSED = [c for c in CASES
         if c[0].startswith(("softmax", "gelu", "layer_norm", "cross_entropy", "dropout", "attention"))]


@pytest.mark.parametrize("name,fn,specs", FUSED, ids=[c[0] for c in FUSED])
def test_gpu_path_passes_gradcheck(name, fn, specs, rng, monkeypatch):
    inputs = [make_input(s, rng) for s in specs]
    run_gpu_path_on_host(monkeypatch)
    assert gradcheck(fn, inputs).passed
    # The kernels really ran; a softmax along another axis than the last keeps the NumPy code.
    assert bool(calls) == (name != "softmax_axis0"), calls


def _output_and_grads(fn, arrays, dtype=np.float32):
    inputs = [Tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    out.backward(np.random.default_rng(1).standard_normal(out.shape).astype(dtype))
    return [out.data] + [t.grad.data for t in inputs]


T = 9
EXTREMES = [
    ("gelu_far_tails", F.gelu, [np.array([[-100.0, -30, -10, -1e-3, 0, 1e-3, 10, 30, 100]])]),
    ("softmax_big_scores", lambda a: F.softmax(a, mask=causal_mask(T, T)),
     [np.linspace(-300, 300, 2 * T * T).reshape(2, T, T)]),
    ("softmax_minus_inf_scores", F.softmax,  # every 4th score -inf, and no mask: those y are 0
     [np.where(np.arange(T) % 4 == 0, -np.inf, np.linspace(-5, 5, 2 * T * T).reshape(2, T, T))]),
    ("softmax_fully_masked_rows", lambda a: F.softmax(a, mask=np.arange(T)[:, None] < 3),  # rows 0-2: all 0
     [np.linspace(-5, 5, 2 * T * T).reshape(2, T, T)]),
    ("layer_norm_offset", lambda x, w, b: F.layer_norm(x, w, b),
     [np.arange(24.0).reshape(2, 12) + 100, np.full(12, 2.0), np.ones(12)]),
    ("cross_entropy_wide", lambda z: F.cross_entropy(z, np.arange(6) % 50),
     [30 * np.sin(np.arange(300.0)).reshape(6, 50)]),
    ("dropout_same_draws", lambda a: F.dropout(a, 0.3, generator=np.random.default_rng(0)),
     [np.arange(-20.0, 20.0).reshape(4, 10)]),
]


@pytest.mark.parametrize("name,fn,arrays", EXTREMES, ids=[c[0] for c in EXTREMES])
def test_gpu_path_agrees_with_numpy_path_in_float32(name, fn, arrays, monkeypatch):
    expected = _output_and_grads(fn, arrays)
    run_gpu_path_on_host(monkeypatch)
    got = _output_and_grads(fn, arrays)
    assert calls
    for g, e in zip(got, expected):
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


SIXTEEN_BITS = [np.float16, pytest.param("bfloat16", marks=pytest.mark.skipif(
    importlib.util.find_spec("ml_dtypes") is None, reason="needs ml_dtypes"))]


@pytest.mark.parametrize("dtype", SIXTEEN_BITS)
def test_on_the_gpu_path_the_kernels_read_and_write_16_bits_and_sum_in_float32(dtype, monkeypatch):
    """Attention's scores under amp.autocast are 16-bit. A float16 running sum stops growing at 2048
    (2048 + 1 rounds back to 2048), a bfloat16 one at 256: 16384 equal scores come out 1/16384 each
    only if the kernels sum in float32, and softmax's gradient of Σ y, exactly 0, likewise needs
    Σ g·y = 1 exactly. Dropout reads 16 bits and a float32 draw."""
    dtype = np.dtype(dtype)
    run_gpu_path_on_host(monkeypatch)
    scores = np.zeros((2, 16384), dtype)
    y = cuda_kernels.softmax(scores)
    dx = cuda_kernels.softmax_backward(y, np.ones_like(y))
    dropped = cuda_kernels.dropout(y, np.tile(np.float32([0.1, 0.9]), 8192), 0.5, 2.0)   # drop every other one
    assert calls == ["tinyllm_row_max_and_sum_exp", "tinyllm_softmax", "tinyllm_row_dot",
                     "tinyllm_softmax_backward", "tinyllm_dropout"]
    assert y.dtype == dx.dtype == dropped.dtype == dtype         # the (T, T) arrays stay 16-bit
    np.testing.assert_array_equal(y.astype(np.float32), 1 / 16384)
    np.testing.assert_array_equal(dx.astype(np.float32), 0)
    np.testing.assert_array_equal(dropped.astype(np.float32)[:, :4], [[0, 2 / 16384, 0, 2 / 16384]] * 2)


def test_attention_under_autocast_on_the_gpu_path_agrees_with_the_numpy_path(monkeypatch):
    """16-bit attention (amp.autocast), dropout included: the kernels, reading and writing float16 and
    summing in float32, against the NumPy path doing the same in float32 and rounding to float16.
    (Not bfloat16: ml_dtypes' products come back float32, so here its kernels would see float32;
    the test above hands them bfloat16 arrays.)"""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 2, 9, 8)) for _ in range(3)]

    def attention(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.5,
                                              generator=np.random.default_rng(3))
    with autocast("float16"):
        expected = _output_and_grads(attention, arrays)
        run_gpu_path_on_host(monkeypatch)
        got = _output_and_grads(attention, arrays)
    assert {"tinyllm_softmax", "tinyllm_dropout", "tinyllm_row_dot", "tinyllm_softmax_backward"} <= set(calls)
    for g, e in zip(got, expected):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, e, rtol=0, atol=2 ** -9 * np.abs(e).max())   # float16's rounding


def test_a_wrong_kernel_is_caught(rng, monkeypatch):
    """Positive control: GELU's backward kernel with 2u' off by 2x must fail the gradcheck."""
    wrong = cuda_kernels._Kernel(
        "ElementwiseKernel", "T x, T g, T c, T k", "T dx",
        "const T s = T(1) / (T(1) + exp(T(-2) * c * x * (T(1) + k * x * x)));"
        "dx = g * (s + x * s * (T(1) - s) * c * (T(1) + T(3) * k * x * x))",
        "tinyllm_gelu_backward_wrong")
    run_gpu_path_on_host(monkeypatch)
    monkeypatch.setattr(cuda_kernels, "_gelu_backward", wrong)
    x = make_input((3, 7), rng)
    with pytest.raises(AssertionError, match="gradcheck failed"):
        gradcheck(F.gelu, [x])
    assert "tinyllm_gelu_backward_wrong" in calls


def adamw_after_four_steps(device: str = "cpu", groups: bool = False) -> list[np.ndarray]:
    """A vector and a matrix (the flat layout puts matrices first) after four AdamW steps with
    weight decay, on ``device``: the parameters, then the moments m and v, as NumPy arrays.
    With ``groups``, two parameter groups decaying each by its own amount (the vector too)."""
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(4), rng.standard_normal((3, 4))]
    params = [Parameter(Tensor(a, dtype=np.float32, device=device).data) for a in start]
    given = [{"params": [params[0]], "weight_decay": 0.3}, {"params": [params[1]], "weight_decay": 0.1}]
    opt = optim.AdamW(given if groups else params, lr=0.1, betas=(0.9, 0.99), weight_decay=0.1)
    for g in rng.standard_normal((4, 16)):
        params[0].grad = Tensor(g[:4], device=device)
        params[1].grad = Tensor(g[4:].reshape(3, 4), device=device)
        opt.step()
    return [p.numpy() for p in params] + [to_numpy(opt.state["exp_avg"]), to_numpy(opt.state["exp_avg_sq"])]


KEPT = [  # (op, its input's shape, how many input-sized arrays the forward may leave alive, its result included)
    ("cross_entropy", lambda z: F.cross_entropy(z, np.arange(64) % 4096), (64, 4096), 0.1),  # a scalar result
    ("layer_norm", lambda x: F.layer_norm(x, Tensor(np.ones(1024)), Tensor(np.zeros(1024))), (256, 1024), 1.1),
]


@pytest.mark.parametrize("name,fn,shape,arrays", KEPT, ids=[c[0] for c in KEPT])
def test_on_the_gpu_path_the_forward_keeps_no_array_its_backward_can_remake(name, fn, shape, arrays, rng,
                                                                               monkeypatch):
    """On a GPU memory runs out before time does, and a pass is cheap: cross_entropy's backward
    makes softmax(z) again, LayerNorm's x̂, each from the input (which the graph holds anyway).
    Kept, each would be a second array as large as the input until the backward. The same
    gradients as the CPU's, which keeps them."""
    x = rng.standard_normal(shape)
    expected = _output_and_grads(fn, [x])
    run_gpu_path_on_host(monkeypatch)
    t = Tensor(x, requires_grad=True)
    out, kept = bytes_left_allocated(lambda: fn(t))
    assert kept < arrays * t.data.nbytes, kept / t.data.nbytes
    out.backward(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32))
    for got, want in zip([out.data, t.grad.data], expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("groups", [False, True], ids=["default decay", "two groups"])
def test_adamw_kernel_matches_the_numpy_update(groups, monkeypatch):
    expected = adamw_after_four_steps(groups=groups)
    run_gpu_path_on_host(monkeypatch)
    got = adamw_after_four_steps(groups=groups)
    assert calls == ["tinyllm_adamw"] * 4
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_training_step_on_the_gpu_path_never_waits_for_the_gpu(dtype, monkeypatch):
    """On a GPU the host only queues work; reading a value back makes it wait for the GPU to
    finish. A training step (batch, forward, backward, clip, AdamW, as train.py runs it) must
    read nothing back: logging's ``loss.item()`` is the one wait, and only when it logs. Under
    autocast too, attention's kernels then working on float16."""
    from cuda_on_host import pretend_cupy
    from tinyllm import manual_seed
    from tinyllm.data import TokenBatches
    from tinyllm.model import GPT, GPTConfig
    host_reads = pretend_cupy(monkeypatch)
    manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16, dropout=0.1)).to("cuda")
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    batches = TokenBatches(np.arange(3000) % 20, block_size=16, device="cuda")
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(3):
        x, y = batches.get_batch("train", 4, rng)
        opt.zero_grad()
        with autocast(dtype):
            _, loss = model(x, y)
            loss.backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss)
    assert host_reads == [], f"the step read {host_reads} back from the GPU"
    assert model.device == "cuda" and loss.device == "cuda"
    assert {"tinyllm_gelu", "tinyllm_softmax", "tinyllm_layer_norm", "tinyllm_dropout", "tinyllm_adamw"} <= set(calls)
    values = [step_loss.item() for step_loss in losses]  # logging: now the host waits, once per value read
    assert len(host_reads) == 3 and values[-1] < values[0]   # (the loss and its target check: one read)


def resume_on_the_other_device(tmp_path, first: str, then: str) -> None:
    """Train on ``first``, stop after the step-15 checkpoint, resume on ``then``: the losses must go
    on as in a run that never moved (weights, AdamW's moments and the step all cross over)."""
    from tinyllm.train import TrainConfig, train
    common = dict(max_iters=30, eval_interval=15, eval_iters=2, sample_interval=1000, log_interval=1,
                  n_layer=1, batch_size=4)  # dropout 0: CPU and GPU draw different masks
    straight = train(TrainConfig(out=str(tmp_path / "straight"), device=first, **common), log=lambda line: None)

    def stop_after_the_checkpoint(line):
        if line.startswith("step    16"):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(out=str(tmp_path / "moved"), device=first, **common), log=stop_after_the_checkpoint)
    moved = train(TrainConfig(out=str(tmp_path / "moved"), device=then, resume=True, **common),
                  log=lambda line: None)
    assert moved["step"] == list(range(30))            # the history goes on from the checkpoint's
    np.testing.assert_allclose(moved["loss"], straight["loss"], rtol=1e-3)


@pytest.mark.parametrize("first,then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_run_resumes_on_the_other_device_of_a_pretended_gpu(tmp_path, first, then, monkeypatch):
    """As tests/test_devices.py does on a GPU machine, with the pretended GPU of cuda_on_host."""
    from cuda_on_host import pretend_cupy
    pretend_cupy(monkeypatch)
    resume_on_the_other_device(tmp_path, first, then)
    assert "tinyllm_adamw" in calls  # the "cuda" half really ran the GPU path


def test_a_run_with_dropout_resumes_bit_for_bit_on_a_pretended_gpu(tmp_path, monkeypatch):
    """The GPU's dropout generator cannot be saved; it is reseeded at each checkpoint instead."""
    from cuda_on_host import pretend_cupy
    from tinyllm.train import TrainConfig, train
    pretend_cupy(monkeypatch)
    common = dict(max_iters=12, eval_interval=6, eval_iters=1, sample_interval=1000, log_interval=1, n_layer=1,
                  batch_size=2, dropout=0.2, device="cuda")
    straight = train(TrainConfig(out=str(tmp_path / "straight"), **common), log=lambda line: None)

    def stop_after_the_checkpoint(line):
        if line.startswith("step     8"):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(out=str(tmp_path / "resumed"), **common), log=stop_after_the_checkpoint)
    resumed = train(TrainConfig(out=str(tmp_path / "resumed"), resume=True, **common), log=lambda line: None)
    assert resumed["loss"] == straight["loss"]       # float for float: the same masks were drawn
    assert "tinyllm_dropout" in calls               # the masks were drawn on the "GPU"


def test_a_float16_run_on_a_pretended_gpu_follows_the_cpu_float16_run(tmp_path, monkeypatch):
    """`tinyllm train --device cuda --dtype float16`: loss scaling, 16-bit products, attention's kernels on
    float16, the scaler's one read a step; the same losses as the CPU's float16 run, to float16's rounding."""
    from cuda_on_host import pretend_cupy
    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.train import TrainConfig, train
    common = dict(max_iters=12, eval_interval=12, eval_iters=1, sample_interval=1000, log_interval=1, n_layer=2,
                  n_embd=32, n_head=2, block_size=32, batch_size=4, dtype="float16")
    cpu = train(TrainConfig(out=str(tmp_path / "cpu"), **common), log=lambda line: None)
    pretend_cupy(monkeypatch)
    gpu = train(TrainConfig(out=str(tmp_path / "gpu"), device="cuda", **common), log=lambda line: None)
    assert {"tinyllm_softmax", "tinyllm_row_dot", "tinyllm_softmax_backward", "tinyllm_adamw"} <= set(calls)
    np.testing.assert_allclose(gpu["loss"], cpu["loss"], rtol=1e-3)
    assert gpu["loss"][-1] < gpu["loss"][0]
    # The weights within a third of one AdamW step (lr 1e-3) of each other; seen here: 1e-4. (Attention's
    # softmax backward with Σ g·y of the wrong sign moved them 1e-3 apart, while the losses hardly moved.)
    on_cpu, on_gpu = (load_checkpoint(tmp_path / run)["model"].state_dict() for run in ("cpu", "gpu"))
    assert max(float(np.abs(on_cpu[name] - np.asarray(on_gpu[name])).max()) for name in on_cpu) < 3e-4


def test_the_readme_cuda_commands_on_a_pretended_gpu(tmp_path, monkeypatch, capsys):
    """tinyllm train / sample / predict --device cuda, as the README shows them; predict's
    probabilities on "cuda" match the same checkpoint's on the CPU."""
    from cuda_on_host import pretend_cupy
    from tinyllm.cli import main
    pretend_cupy(monkeypatch)
    out = str(tmp_path / "run")
    assert main(["train", "--device", "cuda", "--max-iters", "20", "--eval-interval", "20", "--eval-iters", "2",
                 "--n-layer", "1", "--batch-size", "4", "--out", out]) == 0
    assert "256 tokens per step on cuda" in capsys.readouterr().out
    calls.clear()
    assert main(["sample", "--device", "cuda", "--ckpt", out, "--prompt", "The", "--max-new-tokens", "30"]) == 0
    assert len(capsys.readouterr().out) == len("The") + 30 + 1  # 30 characters streamed, then a newline
    assert calls.count("tinyllm_layer_norm") >= 30  # every token's forward ran on "cuda"
    tables = {}
    for device in ("cuda", "cpu"):
        calls.clear()
        assert main(["predict", "--device", device, "--ckpt", out, "The for"]) == 0
        assert bool(calls) == (device == "cuda")
        rows = capsys.readouterr().out.splitlines()[1:]  # "  'e'  45.3%  ####": the last number before a %
        tables[device] = [float(re.findall(r"([\d.]+)%", row)[-1]) for row in rows]
    np.testing.assert_allclose(tables["cuda"], tables["cpu"], atol=0.1)  # percentages, printed to 0.1


def test_gpt2_files_on_a_pretended_gpu(tmp_path, monkeypatch, capsys):
    """GPT-2's files load onto "cuda" with transformers' logits; eval and fine-tuning run there."""
    from cuda_on_host import pretend_cupy
    from test_pretrained import REFERENCE, TINY_GPT2
    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.cli import main
    pretend_cupy(monkeypatch)
    model = load_checkpoint(TINY_GPT2, device="cuda")["model"]
    logits, _ = model(REFERENCE["ids"][None])
    assert logits.device == "cuda" and "tinyllm_layer_norm" in calls
    np.testing.assert_allclose(to_numpy(logits.data)[0], REFERENCE["logits"], rtol=0, atol=1e-4)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the thin tin in the hat. " * 100, encoding="utf-8")
    assert main(["eval", "--device", "cuda", "--ckpt", str(TINY_GPT2), "--data", str(corpus)]) == 0
    assert main(["train", "--device", "cuda", "--init-from", str(TINY_GPT2), "--data", str(corpus),
                 "--block-size", "8", "--batch-size", "4", "--max-iters", "10", "--eval-interval", "10",
                 "--eval-iters", "2", "--out", str(tmp_path / "tuned")]) == 0
    out = capsys.readouterr().out
    assert "on cuda" in out and "tinyllm_adamw" in calls
    assert load_checkpoint(tmp_path / "tuned")["model"].config.block_size == 8


def test_an_out_of_range_target_on_a_pretended_gpu_is_reported_where_the_loss_is_read(monkeypatch):
    """On the CPU cross_entropy refuses such a target at once; on a GPU that would wait for the
    device at every step, so the check runs there and its answer is read with the loss."""
    from cuda_on_host import pretend_cupy
    host_reads = pretend_cupy(monkeypatch)
    from tinyllm.backend import to_device
    logits = Tensor(to_device(np.zeros((2, 3, 5), np.float32), "cuda"), requires_grad=True)
    good, bad = (to_device(np.array(t), "cuda") for t in ([[0, 1, 4], [2, -100, 3]], [[0, 1, 5], [2, 3, 4]]))
    assert np.isclose(F.cross_entropy(logits, good, ignore_index=-100).item(), np.log(5))
    reads = len(host_reads)
    loss = F.cross_entropy(logits, bad)
    assert len(host_reads) == reads                      # nothing read back yet: the GPU was not made to wait
    loss.backward()
    with pytest.raises(ValueError, match=r"a target id is outside 0\.\.4"):
        loss.item()
    with pytest.raises(ValueError, match=r"a target id is outside 0\.\.4"):
        F.cross_entropy(Tensor(np.zeros((1, 5), np.float32)), np.array([5]))   # on the CPU: at once


def test_token_ids_out_of_range_on_a_pretended_gpu_are_reported_with_the_logits_and_the_loss(monkeypatch):
    """CuPy reads some other row for an id past the table, without an error; the ids are checked
    on the device instead, and the answer read with what was computed from them."""
    from cuda_on_host import pretend_cupy
    host_reads = pretend_cupy(monkeypatch)
    from tinyllm.backend import to_device
    from tinyllm.model import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16)).to("cuda")
    ids = to_device(np.array([[1, 2, 3, 25]]), "cuda")                # 25: past the 20-row table
    targets = to_device(np.array([[2, 3, 4, 5]]), "cuda")
    logits, loss = model(ids, targets)
    assert host_reads == []                                            # nothing waited for the GPU yet
    loss.backward()                                                    # (the gradients exist; they are not trusted)
    for read in (loss.item, logits.numpy):
        with pytest.raises(ValueError, match=r"index out of range for axis 0 of a tensor of shape \(20, 16\)"):
            read()
    good, _ = model(to_device(np.array([[1, 2, 3, 4]]), "cuda"))
    assert good.numpy().shape == (1, 4, 20)


def test_clip_grad_norm_on_the_gpu_path_sums_squares_without_overflow(monkeypatch):
    run_gpu_path_on_host(monkeypatch)
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(1))
    a.grad, b.grad = Tensor(np.array([1e20, -1e20], np.float32)), Tensor(np.array([1e20 * np.sqrt(2.0)], np.float32))
    norm = optim.clip_grad_norm_([a, b], max_norm=1.0)
    assert "tinyllm_sum_of_squares" in calls
    assert float(norm) == pytest.approx(2e20, rel=1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [0.5, -0.5], rtol=1e-5)
