"""LoRA: a frozen Linear plus a trainable low-rank update, and folding it back into the weight."""

import numpy as np
import pytest

from tinyllm import optim
from tinyllm.gradcheck import gradcheck
from tinyllm.lora import LoRALinear, apply_lora, lora_settings, merge_lora
from tinyllm.model import GPT, GPTConfig
from tinyllm.nn import Linear
from tinyllm.tensor import Tensor


def small_gpt(seed: int = 0) -> GPT:
    from tinyllm.backend import manual_seed
    manual_seed(seed)
    return GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16))


def test_lora_linear_by_hand():
    base = Linear(3, 2)
    base.weight.data[:] = [[1, 0, 0], [0, 1, 0]]
    base.bias.data[:] = [0.5, -0.5]
    layer = LoRALinear(base, rank=1, alpha=2.0)               # scale alpha / r = 2
    layer.lora_A.data[:] = [[1, 1, 1]]                         # A x = x0 + x1 + x2
    layer.lora_B.data[:] = [[1], [-1]]                         # B (A x) = (s, -s)
    x = Tensor(np.array([[1.0, 2.0, 3.0]], np.float32))        # W x + b = (1.5, 1.5); s = 6
    np.testing.assert_allclose(layer(x).numpy(), [[1.5 + 2 * 6, 1.5 - 2 * 6]])


def test_lora_gradients_match_float64_finite_differences():
    layer = LoRALinear(Linear(5, 4), rank=2, alpha=3.0).to(dtype=np.float64)
    rng = np.random.default_rng(0)
    layer.lora_B.data = rng.standard_normal((4, 2))           # B ≠ 0, or A's gradient would be 0
    x = Tensor(rng.standard_normal((2, 3, 5)), dtype=np.float64, requires_grad=True)
    gradcheck(lambda x, A, B: layer(x), [x, layer.lora_A, layer.lora_B])
    layer(x).sum().backward()
    assert layer.base.weight.grad is None and layer.base.bias.grad is None   # frozen: no gradient at all


def test_apply_lora_changes_nothing_at_first_and_trains_only_the_adapters():
    model = small_gpt()
    ids = np.random.default_rng(1).integers(0, 11, (3, 8))
    before, _ = model(ids)
    apply_lora(model, rank=4, alpha=8, targets=("c_attn", "c_proj"))
    after, _ = model(ids)
    np.testing.assert_array_equal(after.numpy(), before.numpy())   # B = 0: exactly the same model
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(name.split(".")[-1] in ("lora_A", "lora_B") for name in trainable)
    # per block: c_attn 16 -> 48, attn.c_proj 16 -> 16, mlp.c_proj 64 -> 16; r·(n_in + n_out) each
    assert sum(p.data.size for name, p in model.named_parameters() if p.requires_grad) == \
        2 * 4 * ((16 + 48) + (16 + 16) + (64 + 16))
    assert lora_settings(model)["targets"] == ["h.0.attn.c_attn", "h.0.attn.c_proj", "h.0.mlp.c_proj",
                                               "h.1.attn.c_attn", "h.1.attn.c_proj", "h.1.mlp.c_proj"]


def test_merged_model_gives_the_trained_lora_models_logits_and_the_frozen_weights_never_moved():
    model = apply_lora(small_gpt(), rank=2, alpha=4)
    frozen = {name: p.numpy().copy() for name, p in model.named_parameters() if not p.requires_grad}
    opt = optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    rng = np.random.default_rng(2)
    for _ in range(5):
        ids = rng.integers(0, 11, (4, 8))
        opt.zero_grad()
        model(ids[:, :-1], ids[:, 1:])[1].backward()
        opt.step()
    for name, p in model.named_parameters():
        if name in frozen:
            np.testing.assert_array_equal(p.numpy(), frozen[name], err_msg=name)
    ids = rng.integers(0, 11, (2, 8))
    with_adapters, _ = model(ids)
    assert np.abs(with_adapters.numpy() - small_gpt()(ids)[0].numpy()).max() > 1e-4   # it did learn
    merge_lora(model)
    assert lora_settings(model) is None and sorted(model.state_dict()) == sorted(small_gpt().state_dict())
    np.testing.assert_allclose(model(ids)[0].numpy(), with_adapters.numpy(), rtol=1e-5, atol=1e-5)


def test_lora_settings_rebuild_the_same_adapters():
    model = apply_lora(small_gpt(), rank=3, alpha=5, targets=("h.1.mlp.c_fc",), dropout=0.1)
    settings = lora_settings(model)
    assert settings == {"rank": 3, "alpha": 5, "dropout": 0.1, "targets": ["h.1.mlp.c_fc"]}
    again = apply_lora(small_gpt(), **settings)
    assert sorted(again.state_dict()) == sorted(model.state_dict())


def test_bad_lora_settings_are_refused_by_name():
    with pytest.raises(ValueError, match=r"LoRA targets \['q_proj'\] match no Linear layer of the model; its "
                                         r"Linear layers are lm_head, c_attn, c_proj, c_fc \(or a full name such "
                                         r"as h\.0\.attn\.c_attn\)"):
        apply_lora(small_gpt(), targets=("c_attn", "q_proj"))
    with pytest.raises(ValueError, match="LoRA rank must be between 1 and 16 for a 16 -> 48 layer, got 20"):
        apply_lora(small_gpt(), rank=20)
    with pytest.raises(ValueError, match="LoRA on lm_head: its weight is tied to another layer's"):
        apply_lora(small_gpt(), targets=("lm_head",))


@pytest.fixture(scope="module")
def base_and_lora_run(tmp_path_factory):
    """A small char model trained on pydoc (the base), then LoRA-tuned on other text through the CLI."""
    from tinyllm.cli import main
    from tinyllm.train import TrainConfig, train
    root = tmp_path_factory.mktemp("lora")
    train(TrainConfig(out=str(root / "base"), max_iters=30, eval_interval=30, eval_iters=2, n_layer=2,
                      sample_tokens=0, log_interval=30), log=lambda line: None)
    text = root / "fine.txt"
    text.write_text("def add(a, b):\n    return a + b\n" * 200)   # characters pydoc's vocabulary has
    assert main(["train", "--init-from", str(root / "base"), "--data", str(text), "--out", str(root / "lora"),
                 "--lora-rank", "2", "--lora-targets", "c_attn,c_proj", "--max-iters", "20", "--eval-interval",
                 "10", "--eval-iters", "2", "--sample-tokens", "0", "--log-interval", "10", "--lr", "1e-2"]) == 0
    return root


def test_a_lora_checkpoint_holds_only_the_adapters_and_loads_merged(base_and_lora_run):
    from tinyllm.checkpoint import checkpoint_path, load_checkpoint
    root = base_and_lora_run
    with np.load(checkpoint_path(root / "lora")) as f:
        weights = [k for k in f.files if k.startswith("model/")]
        moments = [k for k in f.files if k.startswith("optim/exp_avg/")]
    assert weights and all(k.endswith((".lora_A", ".lora_B")) for k in weights)
    assert sorted(k.split("/", 2)[2] for k in moments) == sorted(k.split("/", 1)[1] for k in weights)
    assert checkpoint_path(root / "lora").stat().st_size < checkpoint_path(root / "base").stat().st_size / 4
    merged = load_checkpoint(root / "lora")
    apart = load_checkpoint(root / "lora", keep_lora=True)
    assert lora_settings(merged["model"]) is None and lora_settings(apart["model"])["rank"] == 2
    base = load_checkpoint(root / "base")["model"]
    ids = np.array([merged["tokenizer"].encode("def add(a, b):")])
    np.testing.assert_allclose(merged["model"](ids)[0].numpy(), apart["model"](ids)[0].numpy(), rtol=1e-5, atol=1e-5)
    assert np.abs(merged["model"](ids)[0].numpy() - base(ids)[0].numpy()).max() > 1e-3   # the adapters did learn


def test_a_lora_run_samples_resumes_and_refuses_a_changed_base(base_and_lora_run, capsys):
    from tinyllm.checkpoint import load_checkpoint, save_checkpoint
    from tinyllm.cli import main
    root = base_and_lora_run
    assert main(["sample", "--ckpt", str(root / "lora"), "--prompt", "def ", "--max-new-tokens", "10"]) == 0
    assert main(["train", "--out", str(root / "lora"), "--resume", "--data", str(root / "fine.txt"),
                 "--max-iters", "24", "--eval-interval", "10", "--eval-iters", "2", "--sample-tokens", "0",
                 "--log-interval", "10"]) == 0
    assert "LoRA rank 2, alpha 16 on 6 layers: 5,632 parameters train (1.33%)" in capsys.readouterr().out
    assert main(["train", "--out", str(root / "lora"), "--resume", "--lora-rank", "4", "--max-iters", "30",
                 "--data", str(root / "fine.txt")]) == 2
    assert "with --lora-rank 4: it trains LoRA rank 2" in capsys.readouterr().err
    base = load_checkpoint(root / "base")
    base["model"].wte.weight.data[0, 0] += 1.0                                 # the base changes under it
    save_checkpoint(root / "base", base["model"], None, base["tokenizer"], base["step"])
    with pytest.raises(ValueError, match=r"LoRA adapters for the model at .*base, but that model's weights "
                                         r"have changed since"):
        load_checkpoint(root / "lora")


def test_lora_needs_a_model_to_adapt():
    from tinyllm.train import TrainConfig
    with pytest.raises(ValueError, match="--lora-rank adapts a trained model: give it one with --init-from"):
        TrainConfig(lora_rank=8)
