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
