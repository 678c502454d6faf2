"""Weight quantization: integers and scales by hand, the error bound, packing, quantized models."""

import numpy as np
import pytest

from tinyllm.model import GPT, GPTConfig
from tinyllm.quantize import (QuantizedWeight, dequantize, pack_int4, quantization_of, quantize, quantize_model,
                              unpack_int4)


def small_gpt(seed: int = 0) -> GPT:
    from tinyllm.backend import manual_seed
    manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=64))


def test_quantize_by_hand():
    w = np.array([[1.0, -0.5, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
    q, scales = quantize(w, bits=8)                    # one scale per row: max|w| / 127
    np.testing.assert_allclose(scales, [[1 / 127], [0.0]])
    np.testing.assert_array_equal(q, [[127, -64, 32, 0], [0, 0, 0, 0]])   # -63.5 -> -64, 31.75 -> 32
    w[0, 1] = -0.3
    q4, scales4 = quantize(w, bits=4, group_size=2)    # groups (1, -0.3) and (0.25, 0): max|w| / 7
    np.testing.assert_allclose(scales4, [[1 / 7, 0.25 / 7], [0, 0]])
    np.testing.assert_array_equal(q4, [[7, -2, 7, 0], [0, 0, 0, 0]])     # -0.3 · 7 = -2.1 -> -2
    np.testing.assert_allclose(dequantize(q4, scales4), [[1, -2 / 7, 0.25, 0], [0, 0, 0, 0]], rtol=1e-6)


@pytest.mark.parametrize("bits, group_size", [(8, None), (8, 64), (4, 32), (4, 64), (4, 128)])
def test_the_error_is_at_most_half_a_step_per_element(bits, group_size):
    w = np.random.default_rng(0).standard_normal((48, 256)).astype(np.float32) * 0.02
    w[3, 5] = 0.5                                      # an outlier: its group's step is large, others' not
    q, scales = quantize(w, bits, group_size)
    assert q.dtype == np.int8 and np.abs(q).max() <= 2 ** (bits - 1) - 1
    step = np.repeat(scales, w.shape[1] // scales.shape[1], axis=1)       # each element's own group's scale
    assert np.all(np.abs(dequantize(q, scales) - w) <= step / 2 * (1 + 1e-5) + 1e-9)


def test_int4_packing_round_trips_and_halves_the_bytes():
    q = np.random.default_rng(1).integers(-8, 8, (5, 64)).astype(np.int8)
    packed = pack_int4(q)
    assert packed.dtype == np.uint8 and packed.shape == (5, 32)
    np.testing.assert_array_equal(unpack_int4(packed), q)
    np.testing.assert_array_equal(pack_int4(np.array([[-8, 7]], np.int8)), [[0x0 | 0xF << 4]])


def test_a_looked_up_row_is_that_row_of_the_whole_table():
    table = QuantizedWeight(np.random.default_rng(2).standard_normal((10, 64)).astype(np.float32), 4, 32)
    ids = np.array([[3, 0, 9], [3, 3, 1]])
    np.testing.assert_array_equal(table.rows(ids), table.dequantized()[ids])


@pytest.mark.parametrize("bits, group_size, embedding, tolerance", [(8, None, False, 0.02), (8, None, True, 0.02),
                                                                     (4, 32, True, 0.3)])
def test_a_quantized_model_computes_nearly_what_the_float_one_did(bits, group_size, embedding, tolerance):
    model = small_gpt()
    ids = np.random.default_rng(3).integers(0, 11, (2, 8))
    before = model(ids)[0].numpy()
    quantize_model(model, bits, group_size, embedding)
    assert quantization_of(model) == {"bits": bits, "group_size": group_size, "embedding": embedding}
    after = model(ids)[0].numpy()
    assert 0 < np.abs(after - before).max() < tolerance * np.abs(before).max()
    kinds = {type(p.data.dtype.type(0)).__name__ for p in model.parameters()}
    assert kinds == {"int8" if bits == 8 else "uint8", "float32"}   # integers; scales, biases and norms
    assert model.lm_head.weight is model.wte.weight   # the tied table stays one table, quantized or not


def test_impossible_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="quantization to 3 bits: tinyllm quantizes to 8 or 4 bits"):
        quantize_model(small_gpt(), bits=3)
    with pytest.raises(ValueError, match="group size 48 does not divide the width 64 of c_attn"):
        quantize_model(small_gpt(), bits=4, group_size=48)
    with pytest.raises(ValueError, match="group size 1: 4-bit weights are packed in pairs"):
        quantize(np.ones((2, 4), np.float32), bits=4, group_size=1)


def test_a_quantized_checkpoint_loads_samples_and_evaluates_but_does_not_train_or_export(tmp_path, capsys):
    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.cli import main
    from tinyllm.train import TrainConfig, train
    train(TrainConfig(out=str(tmp_path / "float"), max_iters=10, eval_interval=10, eval_iters=1, n_layer=1,
                      sample_tokens=0, log_interval=10), log=lambda line: None)
    assert main(["quantize", "--ckpt", str(tmp_path / "float"), "--bits", "4", "--group-size", "32",
                 "--embedding", "--out", str(tmp_path / "int4")]) == 0
    assert "4-bit weights in groups of 32" in capsys.readouterr().out
    original, quantized = load_checkpoint(tmp_path / "float"), load_checkpoint(tmp_path / "int4")
    assert quantization_of(quantized["model"]) == {"bits": 4, "group_size": 32, "embedding": True}
    again = quantize_model(original["model"], 4, 32, embedding=True)          # the file holds exactly this
    for (name, a), (name_b, b) in zip(again.state_dict().items(), quantized["model"].state_dict().items()):
        assert name == name_b and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert main(["sample", "--ckpt", str(tmp_path / "int4"), "--prompt", "The ", "--max-new-tokens", "8"]) == 0
    assert main(["eval", "--ckpt", str(tmp_path / "int4"), "--max-tokens", "2000"]) == 0
    assert "perplexity" in capsys.readouterr().out
    assert main(["train", "--init-from", str(tmp_path / "int4"), "--out", str(tmp_path / "tuned")]) == 2
    assert "holds a quantized model, which computes but does not train" in capsys.readouterr().err
    assert main(["export", "--ckpt", str(tmp_path / "int4"), "--out", str(tmp_path / "hf")]) == 2
    assert "this model is quantized (integer weights)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["quantize", "--ckpt", str(tmp_path / "float"), "--bits", "3", "--out", str(tmp_path / "x")])
    assert "argument --bits: invalid choice: 3 (choose from 8, 4)" in capsys.readouterr().err
