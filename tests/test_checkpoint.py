"""Checkpoints keep the optimizer's state by parameter name, and refuse a state that does not fit."""

import numpy as np
import pytest

from tinyllm import optim
from tinyllm.checkpoint import load_checkpoint, load_optimizer_state, save_checkpoint
from tinyllm.model import GPT, GPTConfig
from tinyllm.tensor import Tensor
from tinyllm.tokenizer import CharTokenizer
from tinyllm.train import TrainConfig, train


def stepped_model_and_optimizer(steps: int = 3):
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=2, n_embd=8))
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        for p in model.parameters():
            p.grad = Tensor(rng.standard_normal(p.shape).astype(np.float32))
        opt.step()
    return model, opt


def moments_by_name(model, opt):
    names = {id(p): name for name, p in model.named_parameters()}
    return {names[id(p)]: m for p, m in zip(opt.params, opt.state_dict()["state"]["exp_avg"])}


def test_optimizer_state_goes_back_to_the_parameter_of_the_same_name(tmp_path):
    model, opt = stepped_model_and_optimizer()
    save_checkpoint(tmp_path, model, opt, CharTokenizer("abcde"), step=3)
    ckpt = load_checkpoint(tmp_path)
    # the same parameters, given to the optimizer in the opposite order: positions differ, names do not
    again = optim.AdamW(list(ckpt["model"].parameters())[::-1], lr=1e-2)
    load_optimizer_state(again, ckpt["model"], ckpt["optimizer_state"])
    assert again.steps == 3
    saved, loaded = moments_by_name(model, opt), moments_by_name(ckpt["model"], again)
    assert saved.keys() == loaded.keys()
    for name in saved:
        np.testing.assert_array_equal(loaded[name], saved[name], err_msg=name)


def test_a_state_that_does_not_fit_is_refused_by_name(tmp_path):
    model, opt = stepped_model_and_optimizer()
    save_checkpoint(tmp_path, model, opt, CharTokenizer("abcde"), step=3)
    ckpt = load_checkpoint(tmp_path)
    params = dict(ckpt["model"].named_parameters())
    only_the_last_norm = optim.AdamW([params["ln_f.weight"], params["ln_f.bias"]])
    with pytest.raises(ValueError, match=r"optimizer state 'exp_avg' does not fit: it has state for "
                                         r"h\.0\.attn\.c_attn\.bias, .*which this optimizer does not train"):
        load_optimizer_state(only_the_last_norm, ckpt["model"], ckpt["optimizer_state"])
    state = ckpt["optimizer_state"]
    state["state"]["exp_avg"]["ln_f.bias"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"'exp_avg' for ln_f\.bias has shape \(3,\), the parameter \(8,\)"):
        load_optimizer_state(optim.AdamW(ckpt["model"].parameters()), ckpt["model"], state)
    del state["state"]["exp_avg"]["ln_f.bias"]
    with pytest.raises(ValueError, match=r"'exp_avg' does not fit: it has no state for ln_f\.bias"):
        load_optimizer_state(optim.AdamW(ckpt["model"].parameters()), ckpt["model"], state)


def test_a_checkpoint_without_optimizer_state_resumes_with_a_fresh_optimizer_and_says_so(tmp_path):
    common = dict(out=str(tmp_path), max_iters=4, eval_interval=2, eval_iters=1, batch_size=2, n_layer=1,
                  sample_tokens=0, log_interval=1)
    train(TrainConfig(**common), log=lambda line: None)
    ckpt = load_checkpoint(tmp_path)
    meta = {k: ckpt["meta"][k] for k in ("train_config", "rng")}
    save_checkpoint(tmp_path, ckpt["model"], None, ckpt["tokenizer"], ckpt["step"], meta)  # weights only
    lines = []
    history = train(TrainConfig(**{**common, "max_iters": 6}, resume=True), log=lines.append)
    assert any("holds no optimizer state: AdamW starts afresh" in line for line in lines), lines
    assert history["step"] == [4, 5]


# --- a checkpoint from a stranger: refused before it costs time or memory -----------------------

def saved(tmp_path, **change_meta):
    """A small valid checkpoint's arrays and meta, with ``change_meta`` applied, written back."""
    import json
    model, opt = stepped_model_and_optimizer(steps=1)
    path = save_checkpoint(tmp_path / "ok", model, opt, CharTokenizer("abcde"), step=1)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    for key, value in change_meta.items():
        meta[key] = value(meta[key]) if callable(value) else value
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def write(path, arrays, savez=np.savez):
    with open(path, "wb") as f:
        savez(f, **arrays)
    return path


def test_a_config_that_contradicts_the_arrays_is_refused_before_any_model_is_built(tmp_path):
    import time
    arrays = saved(tmp_path, config=lambda c: {**c, "n_layer": 100_000})
    began = time.perf_counter()
    with pytest.raises(ValueError, match="its config does not fit its arrays: n_layer 100000 in its config, "
                                         "1 in its arrays"):
        load_checkpoint(write(tmp_path / "big.npz", arrays))
    assert time.perf_counter() - began < 1.0                     # no model of that size was made
    arrays = saved(tmp_path, config=lambda c: {**c, "vocab_size": 7})
    with pytest.raises(ValueError, match="vocab_size 7 in its config, 5 in its arrays"):
        load_checkpoint(write(tmp_path / "vocab.npz", arrays))


def test_compressed_oversized_and_object_members_are_refused(tmp_path):
    import zipfile
    arrays = saved(tmp_path)
    with pytest.raises(ValueError, match="member model/wte.weight is compressed"):
        load_checkpoint(write(tmp_path / "zipped.npz", arrays, np.savez_compressed))
    path = write(tmp_path / "longer.npz", arrays)
    with zipfile.ZipFile(path, "a") as archive:                 # a member with bytes beyond its shape
        header = np.lib.format.header_data_from_array_1_0(np.zeros(3, np.float32))
        with archive.open("model/extra.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(np.zeros(1000, np.float32).tobytes())
    with pytest.raises(ValueError, match=r"member model/extra holds 4000 bytes, and its header declares \(3,\)"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="holds Python objects"):
        load_checkpoint(write(tmp_path / "objects.npz", {**arrays, "model/x": np.array([{}], dtype=object)}))


def test_a_tokenizer_larger_than_the_vocabulary_and_an_oversized_meta_are_refused(tmp_path, monkeypatch):
    arrays = saved(tmp_path, tokenizer=CharTokenizer("abcdefgh").to_dict())
    with pytest.raises(ValueError, match="its tokenizer has 8 tokens, more than the model's vocabulary of 5"):
        load_checkpoint(write(tmp_path / "tok.npz", arrays))
    import tinyllm.checkpoint
    monkeypatch.setattr(tinyllm.checkpoint, "MAX_META_BYTES", 1000, raising=False)
    with pytest.raises(ValueError, match="member meta holds [0-9,]+ bytes, more than the 1,000 allowed"):
        load_checkpoint(write(tmp_path / "meta.npz", saved(tmp_path)))


def test_fuzzed_checkpoints_load_or_fail_with_one_clear_error(tmp_path):
    """Bytes changed and files cut short: each ends in a ValueError or a model, quickly."""
    from fuzzing import loads_or_refuses, mutated
    good = write(tmp_path / "good.npz", saved(tmp_path)).read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "fuzzed.npz"

    def load(i):
        path.write_bytes(mutated(good, rng))
        load_checkpoint(path)
    outcomes = loads_or_refuses(load, 300)
    assert outcomes["refused"] > 150, outcomes
