"""Causal and bidirectional models, and BERT's masked-language-model objective."""
import numpy as np
import pytest

import tinyllm
from tinyllm.checkpoint import load_checkpoint, save_checkpoint
from tinyllm.data import mask_tokens
from tinyllm.model import GPT, GPTConfig
from tinyllm.sample import generate, top_next_tokens
from tinyllm.tokenizer import CharTokenizer


def tiny_model(causal: bool, vocab_size: int = 11):
    tinyllm.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=8, n_layer=2, n_head=2, n_embd=8, causal=causal))


@pytest.mark.parametrize("causal", [True, False])
def test_a_later_token_changes_an_earlier_output_only_without_the_causal_mask(causal):
    model = tiny_model(causal)
    ids = np.random.default_rng(0).integers(0, 11, (2, 8))
    base, _ = model(ids)
    changed = ids.copy()
    changed[:, 5] = (changed[:, 5] + 1) % 11                       # a token late in the text
    logits, _ = model(changed)
    earlier_moved = not np.allclose(logits.numpy()[:, :5], base.numpy()[:, :5])
    assert earlier_moved == (not causal)
    assert not np.allclose(logits.numpy()[:, 5:], base.numpy()[:, 5:])


def test_a_bidirectional_model_refuses_to_write_left_to_right():
    model = tiny_model(causal=False)
    for call in (lambda: generate(model, [1, 2], 3), lambda: top_next_tokens(model, [1, 2]),
                 lambda: model(np.array([[1, 2]]), cache=model.new_cache())):
        with pytest.raises(ValueError, match="causal=False"):
            call()


def test_a_bidirectional_model_is_not_exported_as_a_gpt2(tmp_path):
    from tinyllm.pretrained import save_gpt2
    from tinyllm.tokenizer import ByteLevelBPE
    model = tiny_model(causal=False, vocab_size=256)
    with pytest.raises(ValueError, match=r"GPT-2 is causal, and this model \(causal=False\)"):
        save_gpt2(model, ByteLevelBPE([]), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_causal_switch_survives_a_checkpoint(tmp_path):
    model = tiny_model(causal=False)
    save_checkpoint(tmp_path, model, None, CharTokenizer.train("abcdefghijk"), step=0)
    loaded = load_checkpoint(tmp_path)["model"]
    assert loaded.config.causal is False
    ids = np.array([[1, 2, 3, 4]])
    np.testing.assert_array_equal(loaded(ids)[0].numpy(), model(ids)[0].numpy())


def test_mask_tokens_chooses_masks_swaps_and_keeps_in_berts_proportions():
    ids = np.random.default_rng(0).integers(0, 50, (200, 500))
    inputs, targets = mask_tokens(ids, mask_id=50, vocab_size=50, rng=np.random.default_rng(1))
    chosen = targets != -100
    np.testing.assert_array_equal(targets[chosen], ids[chosen])      # the originals are the targets
    np.testing.assert_array_equal(inputs[~chosen], ids[~chosen])     # the rest is left alone
    assert chosen.mean() == pytest.approx(0.15, abs=0.005)
    masked, kept = inputs[chosen] == 50, inputs[chosen] == ids[chosen]
    assert masked.mean() == pytest.approx(0.8, abs=0.01)
    assert kept.mean() == pytest.approx(0.1 + 0.1 / 50, abs=0.01)   # kept, or swapped for itself by chance
    assert inputs.max() <= 50 and inputs[chosen][~masked].max() < 50       # a random token is a real one
    again = mask_tokens(ids, mask_id=50, vocab_size=50, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(again[0], inputs)                 # one seed, one corruption
    with pytest.raises(ValueError, match=r"masking rate must be in \(0, 1\], got 0"):
        mask_tokens(ids, 50, 50, np.random.default_rng(1), rate=0)


def test_the_masked_lm_loss_counts_the_chosen_positions_only():
    model = tiny_model(causal=False, vocab_size=12).to(dtype=np.float64)   # id 11 is the mask
    ids = np.random.default_rng(2).integers(0, 11, (3, 8))
    inputs, targets = mask_tokens(ids, mask_id=11, vocab_size=11, rng=np.random.default_rng(3), rate=0.3)
    logits, loss = model(inputs, targets)
    z = logits.numpy()
    log_probs = z - z.max(-1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
    rows, cols = np.nonzero(targets != -100)
    assert len(rows) > 0
    assert loss.item() == pytest.approx(-log_probs[rows, cols, targets[rows, cols]].mean(), rel=1e-12)
