"""GPT-2 from Hugging Face: safetensors, the name and layout mapping, and outputs equal to transformers'.

tests/data/tiny_gpt2/ is a GPT-2 that ``transformers`` built, trained for a moment on one sentence
and saved (2 layers, width 8), with the logits and the greedy continuation ``transformers`` computed from it
(``reference.npz``; tests/data/make_tiny_gpt2.py wrote it all).
"""
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from fuzzing import loads_or_refuses, mutated

from tinyllm.checkpoint import load_checkpoint
from tinyllm.cli import main
from tinyllm.model import GPT, GPTConfig
from tinyllm.pretrained import (CONV1D_WEIGHTS, gpt2_config, load_gpt2, read_safetensors, save_gpt2,
                                write_safetensors)
from tinyllm.sample import generate

TINY_GPT2 = Path(__file__).parent / "data" / "tiny_gpt2"
REFERENCE = dict(np.load(TINY_GPT2 / "reference.npz"))


def with_header(header, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


def copy_of_tiny_gpt2(tmp_path: Path) -> Path:
    directory = tmp_path / "gpt2"
    shutil.copytree(TINY_GPT2, directory)
    (directory / "reference.npz").unlink()
    return directory


def test_the_weights_transformers_saved_give_the_logits_transformers_computed():
    ckpt = load_checkpoint(TINY_GPT2)
    model, tok = ckpt["model"], ckpt["tokenizer"]
    assert ckpt["step"] == 0 and ckpt["optimizer_state"] is None and not model.training
    assert tok.encode(str(REFERENCE["text"])) == REFERENCE["ids"].tolist()   # vocab.json + merges.txt
    logits, _ = model(REFERENCE["ids"][None])
    np.testing.assert_allclose(logits.data[0], REFERENCE["logits"], rtol=0, atol=2e-5)
    assert all(p.data.flags.c_contiguous for p in model.parameters())      # transposed, then laid out as rows
    prompt = REFERENCE["greedy"][:4].tolist()
    for use_cache in (True, False):
        greedy = generate(model, prompt, len(REFERENCE["greedy"]) - 4, top_k=1, use_cache=use_cache)
        assert greedy == REFERENCE["greedy"].tolist()


def test_gpt2_runs_on_each_device(device):
    model = load_checkpoint(TINY_GPT2, device=device)["model"]
    assert model.device == device
    logits, _ = model(REFERENCE["ids"][None])
    np.testing.assert_allclose(logits.numpy()[0], REFERENCE["logits"], rtol=0, atol=1e-4)
    greedy = REFERENCE["greedy"].tolist()
    assert generate(model, greedy[:4], len(greedy) - 4, top_k=1) == greedy


def test_the_older_hub_layout_loads_the_same_model(tmp_path):
    # The hub's gpt2 files predate the "transformer." prefix, and hold each block's causal mask as a
    # buffer (attn.bias) beside the weights; some versions also store the tied lm_head.
    directory = copy_of_tiny_gpt2(tmp_path)
    arrays = {name.removeprefix("transformer."): a
              for name, a in read_safetensors(directory / "model.safetensors").items()}
    for i in range(2):
        arrays[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 16, 16), np.float32))
    arrays["lm_head.weight"] = arrays["wte.weight"]
    write_safetensors(directory / "model.safetensors", arrays)
    model, _ = load_gpt2(directory)
    original, _ = load_gpt2(TINY_GPT2)
    for (name, p), (_, q) in zip(model.named_parameters(), original.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)

    arrays["lm_head.weight"] = arrays["wte.weight"] + 1
    write_safetensors(directory / "model.safetensors", arrays)
    with pytest.raises(ValueError, match="lm_head.weight is not its wte.weight"):
        load_gpt2(directory)


def test_read_safetensors_reads_a_file_built_by_hand(tmp_path):
    header = {"__metadata__": {"format": "pt"},
              "a": {"dtype": "F32", "shape": [2, 1], "data_offsets": [0, 8]},
              "b": {"dtype": "BF16", "shape": [2], "data_offsets": [8, 12]},
              "c": {"dtype": "F16", "shape": [], "data_offsets": [12, 14]}}
    body = (np.array([1.5, -2.0], "<f4").tobytes()
            + bytes([0x80, 0x3F, 0x00, 0xBF])        # bfloat16 1.0 and -0.5: the high halves of the float32s
            + np.array(0.25, "<f2").tobytes())
    path = tmp_path / "hand.safetensors"
    path.write_bytes(with_header(header, body))
    arrays = read_safetensors(path)
    assert sorted(arrays) == ["a", "b", "c"]
    np.testing.assert_array_equal(arrays["a"], [[1.5], [-2.0]])
    assert arrays["b"].dtype == np.float32 and arrays["b"].tolist() == [1.0, -0.5]
    assert arrays["c"].shape == () and arrays["c"] == 0.25


def test_write_safetensors_writes_the_format(tmp_path):
    a, b = np.arange(6, dtype=np.float32).reshape(3, 2), np.array([7, -1], dtype=np.int64)
    path = write_safetensors(tmp_path / "w.safetensors", {"a": a, "b": b.astype(">i8")})  # big-endian in
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert json.loads(raw[8:8 + n]) == {"a": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]},
                                        "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}}
    assert raw[8 + n:] == a.astype("<f4").tobytes() + b.astype("<i8").tobytes()   # little-endian out
    back = read_safetensors(path)
    np.testing.assert_array_equal(back["a"], a)
    np.testing.assert_array_equal(back["b"], b)
    with pytest.raises(ValueError, match="c is complex64, which safetensors cannot hold"):
        write_safetensors(tmp_path / "c.safetensors", {"c": np.zeros(2, np.complex64)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]   # nothing half-written


@pytest.mark.parametrize("contents, problem", [
    (b"\x05\x00", "too short"),
    ((1000).to_bytes(8, "little") + b"{}", "claims 1000 bytes"),
    ((3).to_bytes(8, "little") + b"{x}", "not JSON"),
    ((2).to_bytes(8, "little") + b"[]", "not a JSON object"),
    (with_header({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, b"\0"), "dtype F8_E4M3"),
    (with_header({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8), "bytes 0..16 of 8"),
    (with_header({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8), "shape \\[3\\]"),
    (with_header({"w": [0, 8]}, b"\0" * 8), "header entry of 'w'"),
    (with_header({"w": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}}, b"\0" * 8), "entry of 'w'"),
    (with_header({"w": {"dtype": "F32", "shape": [-1, -2], "data_offsets": [0, 8]}}, b"\0" * 8), "entry of 'w'"),
])
def test_a_broken_safetensors_file_is_named_with_its_problem(tmp_path, contents, problem):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(contents)
    with pytest.raises(ValueError, match=f"broken.safetensors is not a readable safetensors file.*{problem}"):
        read_safetensors(path)


def test_what_tinyllm_cannot_run_is_refused_by_name(tmp_path):
    config = json.loads((TINY_GPT2 / "config.json").read_text())
    assert gpt2_config(config) == GPTConfig(vocab_size=261, block_size=16, n_layer=2, n_head=2, n_embd=8)
    for setting, value in [("activation_function", "relu"), ("layer_norm_epsilon", 1e-6),
                           ("tie_word_embeddings", False), ("n_inner", 12), ("model_type", "gpt_neox")]:
        with pytest.raises(ValueError, match=f"config.json has {setting} = "):
            gpt2_config({**config, setting: value})
    with pytest.raises(ValueError, match="no 'n_head'"):
        gpt2_config({k: v for k, v in config.items() if k != "n_head"})

    directory = copy_of_tiny_gpt2(tmp_path)
    (directory / "merges.txt").unlink()
    with pytest.raises(FileNotFoundError, match="has no tokenizer: put GPT-2's vocab.json and merges.txt"):
        load_checkpoint(directory)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json is not JSON"):
        load_checkpoint(directory)
    (directory / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_checkpoint(directory)

    directory = copy_of_tiny_gpt2(tmp_path / "wider")
    (directory / "config.json").write_text(json.dumps({**config, "n_embd": 16}))
    with pytest.raises(ValueError, match=r"not hold the GPT-2 of its config.json \(its config does not fit its "
                                         r"arrays: block_size, n_embd \(16, 16\) in its config, \(16, 8\)"):
        load_checkpoint(directory)


@pytest.mark.skipif(not (SHARED_DATA / "gpt2" / "encoder.json").exists(), reason="GPT-2 files not in ../shared")
def test_openai_file_names_with_the_real_gpt2_vocabulary(tmp_path):
    # A GPT-2-shaped model (the full 50257 tokens, tiny otherwise) written in the hub's layout, with
    # OpenAI's own names for the tokenizer files: every parameter comes back where it was.
    for name in ("encoder.json", "vocab.bpe"):
        shutil.copy(SHARED_DATA / "gpt2" / name, tmp_path / name)
    config = GPTConfig(vocab_size=50257, block_size=8, n_layer=1, n_head=2, n_embd=4)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 50257, "n_positions": 8,
                                                      "n_layer": 1, "n_head": 2, "n_embd": 4}))
    model = GPT(config)
    write_safetensors(tmp_path / "model.safetensors", {
        name: np.ascontiguousarray(a.T) if name.endswith(CONV1D_WEIGHTS) else a
        for name, a in model.state_dict().items()})
    loaded, tok = load_gpt2(tmp_path / "model.safetensors")   # the weights file names its directory too
    for (name, p), (_, q) in zip(model.named_parameters(), loaded.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert tok.encode("Hello world") == [15496, 995]


def test_tinyllm_sample_and_predict_run_gpt2_from_its_directory(capsys):
    tok = load_checkpoint(TINY_GPT2)["tokenizer"]
    greedy = REFERENCE["greedy"].tolist()
    prompt = tok.decode(greedy[:4])
    assert main(["sample", "--ckpt", str(TINY_GPT2), "--prompt", prompt, "--top-k", "1",
                 "--max-new-tokens", str(len(greedy) - 4)]) == 0
    assert capsys.readouterr().out == tok.decode(greedy) + "\n"
    assert main(["predict", prompt, "--ckpt", str(TINY_GPT2), "--top-k", "3"]) == 0
    assert repr(tok.decode([greedy[4]])) in capsys.readouterr().out.splitlines()[1]   # the likeliest, first


def test_endoftext_in_a_corpus_or_a_prompt_is_gpt2s_one_special_token(capsys):
    from tinyllm.data import encode_corpus
    tok = load_checkpoint(TINY_GPT2)["tokenizer"]
    eot = tok.special_tokens["<|endoftext|>"]
    ids = encode_corpus("the hat<|endoftext|>the tin", tok)      # documents joined as GPT-2's training data
    assert ids.tolist() == tok.encode("the hat") + [eot] + tok.encode("the tin")
    with pytest.raises(ValueError, match="contains the special token"):
        tok.encode("the hat<|endoftext|>")                      # the API's default still refuses, as tiktoken's
    assert main(["predict", "--ckpt", str(TINY_GPT2), "<|endoftext|>", "--top-k", "2"]) == 0   # start of a text
    after_eot = capsys.readouterr().out
    assert after_eot.startswith("after '<|endoftext|>' the model expects:")
    assert main(["predict", "--ckpt", str(TINY_GPT2), "", "--top-k", "2"]) == 0               # the same, asked plainly
    fresh = capsys.readouterr().out
    assert fresh.startswith("at the start of a fresh text") and fresh.splitlines()[1:] == after_eot.splitlines()[1:]
    assert main(["sample", "--ckpt", str(TINY_GPT2), "--prompt", "<|endoftext|>", "--max-new-tokens", "5",
                 "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("<|endoftext|>")
    from tinyllm.sample import generate
    fresh = generate(load_checkpoint(TINY_GPT2)["model"], [eot], 6, top_k=1)[1:]
    assert main(["sample", "--ckpt", str(TINY_GPT2), "--max-new-tokens", "6", "--top-k", "1"]) == 0
    assert capsys.readouterr().out == tok.decode(fresh) + "\n"    # no prompt: a fresh text, after <|endoftext|>


def test_crop_block_size_keeps_the_first_positions():
    model, _ = load_gpt2(TINY_GPT2)
    ids = REFERENCE["ids"][None, :8]
    before = model(ids)[0].data
    model.crop_block_size(8)
    assert model.config.block_size == 8 and model.wpe.weight.shape == (8, 8)
    np.testing.assert_array_equal(model(ids)[0].data, before)
    with pytest.raises(ValueError, match="exceeds the model's block_size 8"):
        model(REFERENCE["ids"][None, :9])
    with pytest.raises(ValueError, match="cropping keeps 1 to 8 positions"):
        model.crop_block_size(9)
    model.set_dropout(0.25)
    assert model.config.dropout == 0.25 and model.h[1].mlp.dropout.p == model.h[0].attn.attn_dropout.p == 0.25


def test_train_init_from_fine_tunes_gpt2_and_resumes(tmp_path):
    from tinyllm.train import TrainConfig, train
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the thin tin in the hat. " * 300, encoding="utf-8")
    settings = dict(data=str(corpus), init_from=str(TINY_GPT2), block_size=8, batch_size=8, max_iters=40,
                    lr=1e-2, warmup_iters=0, eval_interval=40, eval_iters=4, log_interval=20, sample_interval=40,
                    sample_tokens=4, out=str(tmp_path / "out"), device="cpu")
    lines = []
    history = train(TrainConfig(**settings), log=lines.append)
    assert any("fine-tuning the model of" in line for line in lines)
    assert history["val"][-1] < history["val"][0] - 1.0       # it learned the corpus from GPT-2's start
    ckpt = load_checkpoint(tmp_path / "out")
    start, gpt2_tokenizer = load_gpt2(TINY_GPT2)
    assert ckpt["model"].config == GPTConfig(vocab_size=261, block_size=8, n_layer=2, n_head=2, n_embd=8)
    assert ckpt["tokenizer"].to_dict() == gpt2_tokenizer.to_dict()
    assert not np.array_equal(ckpt["model"].h[0].attn.c_attn.weight.data, start.h[0].attn.c_attn.weight.data)

    resumed = train(TrainConfig(**{**settings, "max_iters": 60, "resume": True}), log=lines.append)
    assert resumed["eval_step"] == [0, 40, 60] and load_checkpoint(tmp_path / "out")["step"] == 60
    without = {k: v for k, v in settings.items() if k != "init_from"}   # the checkpoint remembers it
    assert train(TrainConfig(**{**without, "max_iters": 70, "resume": True}),
                 log=lines.append)["eval_step"] == [0, 40, 60, 70]
    with pytest.raises(ValueError, match="n_layer .--n-layer. must be left out with --init-from"):
        TrainConfig(init_from=str(TINY_GPT2), n_layer=4)
    with pytest.raises(ValueError, match="--block-size 32 is longer than the context of .*model .16 tokens."):
        train(TrainConfig(**{**settings, "block_size": 32, "out": str(tmp_path / "longer")}))


def test_export_writes_the_files_transformers_wrote(tmp_path, capsys):
    # tinyllm export of the tiny GPT-2 gives back what transformers saved: the same arrays under the
    # same names, the same tokenizer files, the same shape in config.json.
    assert main(["export", "--ckpt", str(TINY_GPT2), "--out", str(tmp_path / "again")]) == 0
    assert "wrote" in capsys.readouterr().out
    ours, theirs = read_safetensors(tmp_path / "again" / "model.safetensors"), \
        read_safetensors(TINY_GPT2 / "model.safetensors")
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        assert ours[name].dtype == theirs[name].dtype and np.array_equal(ours[name], theirs[name]), name
    again = tmp_path / "again"
    assert json.loads((again / "vocab.json").read_text()) == json.loads((TINY_GPT2 / "vocab.json").read_text())
    assert (again / "merges.txt").read_text() == (TINY_GPT2 / "merges.txt").read_text()
    config, original = (json.loads((d / "config.json").read_text()) for d in (tmp_path / "again", TINY_GPT2))
    for key in ("model_type", "vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "activation_function",
                "layer_norm_epsilon", "tie_word_embeddings", "eos_token_id"):
        assert config[key] == original[key], key


def test_a_model_trained_with_tinyllm_exports_and_loads_back(tmp_path):
    from tinyllm.tokenizer import ByteLevelBPE
    tok = ByteLevelBPE.train("the cat sat on the mat, the dog sat on the log. " * 30, 280,
                             special_tokens=["<|endoftext|>"])
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=8))
    ckpt = load_checkpoint(save_gpt2(model, tok, tmp_path / "mine"))
    for (name, p), (_, q) in zip(model.named_parameters(), ckpt["model"].named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    text = "the dog sat on the cat<|endoftext|>"
    assert ckpt["tokenizer"].encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")
    assert ckpt["tokenizer"].special_tokens == tok.special_tokens


def test_what_gpt2_files_cannot_hold_is_refused(tmp_path):
    from tinyllm.tokenizer import GPT2_PATTERN, ByteLevelBPE, CharTokenizer
    config = GPTConfig(vocab_size=259, block_size=8, n_layer=1, n_head=1, n_embd=4)
    a, b, c = (ord(ch) for ch in "abc")
    same_text_twice = [(a, b, 256), (256, c, 257), (b, c, 258)]   # 257 = ab·c and, below, 259 = a·bc
    cases = [
        (GPT(replace(config, vocab_size=65)), CharTokenizer.train("x" * 65), "this model's is a CharTokenizer"),
        (GPT(replace(config, bias=False)), ByteLevelBPE(same_text_twice), "made without"),
        (GPT(config), ByteLevelBPE(same_text_twice[:2]), "the tokenizer has 258 tokens and the model 259"),
        (GPT(config), ByteLevelBPE(same_text_twice, pattern=r"\w+|\W"), "pattern, and this one is not GPT-2's"),
        (GPT(config), ByteLevelBPE(same_text_twice[:2], special_tokens={"[SEP]": 258}), "'\\[SEP\\]' is not"),
        (GPT(replace(config, vocab_size=260)), ByteLevelBPE(same_text_twice + [(a, 258, 259)], pattern=GPT2_PATTERN),
         "stand for the same text"),
    ]
    for model, tokenizer, problem in cases:
        with pytest.raises(ValueError, match=problem):
            save_gpt2(model, tokenizer, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())   # nothing half-written

    (tmp_path / "vocab.json").write_text('{"a": 0}')
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(ValueError, match="are not a GPT-2 tokenizer's files .KeyError"):
        ByteLevelBPE.from_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")


@pytest.mark.parametrize("setting, claim", [("n_embd", 4_000_000), ("n_positions", 10**9), ("n_layer", 10**7)])
def test_a_config_its_weights_contradict_is_refused_before_any_model_is_built(tmp_path, setting, claim):
    """A config.json claiming a model far larger than its weights must not be allocated first."""
    import time
    directory = copy_of_tiny_gpt2(tmp_path)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, setting: claim}))
    began = time.perf_counter()
    with pytest.raises(ValueError, match=f"its config does not fit its arrays: .*{claim}"):
        load_gpt2(directory)
    assert time.perf_counter() - began < 2.0


def test_fuzzed_safetensors_files_and_gpt2_directories_load_or_fail_with_one_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    good = (TINY_GPT2 / "model.safetensors").read_bytes()
    path = tmp_path / "fuzzed.safetensors"

    def read_every_array(i):
        path.write_bytes(mutated(good, rng))
        return [np.asarray(a).sum() for a in read_safetensors(path).values()]
    outcomes = loads_or_refuses(read_every_array, 300)
    assert outcomes["refused"] > 100, outcomes
    directory = copy_of_tiny_gpt2(tmp_path)
    files = ["config.json", "vocab.json", "merges.txt", "model.safetensors"]
    originals = {name: (TINY_GPT2 / name).read_bytes() for name in files}

    def load_with_one_file_damaged(i):
        for name in files:
            (directory / name).write_bytes(mutated(originals[name], rng) if i % 4 == files.index(name)
                                           else originals[name])
        return load_gpt2(directory)
    outcomes = loads_or_refuses(load_with_one_file_damaged, 100)
    assert outcomes["refused"] > 50, outcomes
