"""The GPT built up stage by stage: each stage has exactly its parts, and the last is the GPT."""
import numpy as np
import pytest

import tinyllm
from tinyllm.model import GPT, GPTConfig
from tinyllm.stages import STAGES, StagedGPT

CONFIG = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)


def staged(stage):
    tinyllm.manual_seed(0)
    return StagedGPT(CONFIG, stage).to(dtype=np.float64)


def test_the_last_stage_computes_what_the_gpt_computes():
    tinyllm.manual_seed(0)
    gpt = GPT(CONFIG).to(dtype=np.float64)
    model = staged("blocks")
    model.load_state_dict({**gpt.state_dict(), "lm_head.weight": gpt.wte.weight.data})   # tied, as GPT-2
    ids, targets = np.array([[1, 2, 3, 4, 5]]), np.array([[2, 3, 4, 5, 6]])
    (logits, loss), (expected, expected_loss) = model(ids, targets), gpt(ids, targets)
    np.testing.assert_allclose(logits.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-12)


def test_each_stage_has_its_parts_and_no_later_ones():
    counts = [sum(1 for _ in staged(stage).parameters()) for stage in STAGES]
    assert counts == sorted(counts)                                   # every stage adds, none takes away
    bigram = staged("bigram")
    ids = np.array([[1, 2, 3, 4]])
    logits, _ = bigram(ids)
    np.testing.assert_allclose(logits.numpy()[0], bigram.lm_head(bigram.wte(ids[0])).numpy(), rtol=1e-12)
    changed = ids.copy()
    changed[0, 1] = 7                                                 # a bigram sees only its own token
    np.testing.assert_array_equal(bigram(changed)[0].numpy()[0, 2:], logits.numpy()[0, 2:])


def test_the_mlp_stage_stacks_attention_and_mlp_without_residuals_or_layernorm():
    model = staged("mlp")
    ids = np.array([[1, 2, 3, 4]])
    block = model.h[0]
    x = model.wte(ids) + model.wpe(np.arange(4))
    np.testing.assert_allclose(model(ids)[0].numpy(), model.lm_head(block.mlp(block.attn(x))).numpy(), rtol=1e-12)
    residual = staged("residual")
    block = residual.h[0]
    x = residual.wte(ids) + residual.wpe(np.arange(4))
    x = x + block.attn(x)
    np.testing.assert_allclose(residual(ids)[0].numpy(), residual.lm_head(x + block.mlp(x)).numpy(), rtol=1e-12)
    assert staged("one head").h[0].attn.n_head == 1 and staged("multi-head").h[0].attn.n_head == 2
    with pytest.raises(ValueError, match="unknown stage 'rnn'; the stages, in order: bigram, one head"):
        StagedGPT(CONFIG, "rnn")
