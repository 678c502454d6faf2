"""The same weights in a PyTorch GPT give the same logits, loss and gradients.

Runs only where PyTorch is installed (CI installs the CPU build); skipped otherwise.
The PyTorch model (tests/torch_gpt.py) is written independently, in PyTorch's own
idiom, with parameter names matching tinyllm's so the state dict carries straight over.
"""
import numpy as np
import pytest

import tinyllm
from tinyllm import Tensor, functional as F
from tinyllm.model import GPT, GPTConfig

torch = pytest.importorskip("torch")
from torch_gpt import TorchGPT, load_tinyllm_state  # noqa: E402  (needs torch)


def test_same_logits_loss_and_gradients_as_pytorch():
    config = GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=4, n_embd=32)
    tinyllm.manual_seed(0)
    ours = GPT(config)
    theirs = TorchGPT(config)
    load_tinyllm_state(theirs, ours.state_dict())

    rng = np.random.default_rng(0)
    ids, targets = rng.integers(0, 65, (3, 16)), rng.integers(0, 65, (3, 16))
    logits, loss = ours(ids, targets)
    loss.backward()
    t_logits, t_loss = theirs(torch.from_numpy(ids), torch.from_numpy(targets))
    t_loss.backward()

    assert np.abs(logits.numpy() - t_logits.detach().numpy()).max() < 1e-4
    assert loss.item() == pytest.approx(t_loss.item(), abs=1e-5)
    for name, p in ours.named_parameters():
        expected = theirs.get_parameter(name).grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=1e-3, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("is_causal", [False, True])
def test_scaled_dot_product_attention_equals_pytorchs(is_causal):
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((2, 3, 6, 4)) for _ in range(4))  # T = S: PyTorch aligns causal as we do
    ours = [Tensor(a, dtype=np.float64, requires_grad=True) for a in (q, k, v)]
    F.scaled_dot_product_attention(*ours, is_causal=is_causal).backward(g)
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    y = torch.nn.functional.scaled_dot_product_attention(*theirs, is_causal=is_causal)
    y.backward(torch.tensor(g))
    np.testing.assert_allclose(F.scaled_dot_product_attention(*ours, is_causal=is_causal).numpy(),
                               y.detach().numpy(), atol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-12)
