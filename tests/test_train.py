"""Training end to end on pydoc, checkpoints, sampling filters, and clear errors on bad input."""
import math
import re

import numpy as np
import pytest

from tinyllm.checkpoint import load_checkpoint
from tinyllm.cli import main
from tinyllm.data import TokenBatches, load_corpus
from tinyllm.sample import next_token_probs
from tinyllm.tensor import no_grad
from tinyllm.train import TrainConfig, train


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(max_iters=120, eval_interval=60, eval_iters=10, sample_interval=120, sample_tokens=20,
                      log_interval=40, n_layer=2, out=str(out))
    lines = []
    history = train(cfg, log=lines.append)
    history["log"] = lines
    return out, history


def test_the_log_shows_progress_and_samples(trained_run):
    _, history = trained_run
    text = "\n".join(history["log"])
    assert "step    40 | loss" in text and "tokens/s" in text and "MFU" in text
    step_0, step_40 = (next(line for line in history["log"] if line.startswith(f"step {s:5d} | loss")) for s in (0, 40))
    assert re.search(r"\| MFU \d+%$", step_0) and re.search(r"\| \d[\dhms]* left$", step_40)  # the time left
    assert text.count("---- sample ----") == 1  # at step 120 (sample_interval), the last step
    assert "step   120 | eval" in text
    assert re.search(r"^trained 120 steps in \d[\dhms]*; checkpoint: ", history["log"][-1])


def test_durations_read_as_a_person_would_say_them():
    from tinyllm.train import _duration
    assert [_duration(s) for s in (3.2, 59.6, 185, 3599, 7500)] == ["3s", "1m00s", "3m05s", "59m59s", "2h05m"]


def test_validation_loss_falls_far_below_chance(trained_run):
    _, history = trained_run
    vocab = 103  # pydoc's distinct characters
    assert history["val"][0] == pytest.approx(math.log(vocab), abs=0.3)  # chance at step 0
    assert history["val"][-1] < 2.9, history["val"]                      # chance is 4.63


def test_checkpoint_and_plot_are_written_and_load(trained_run):
    out, _ = trained_run
    assert (out / "loss.png").stat().st_size > 1000
    ckpt = load_checkpoint(out)
    assert ckpt["step"] == 120 and ckpt["optimizer_state"]["steps"] == 120
    ids = np.array([ckpt["tokenizer"].encode("The for statement")])
    logits, _ = ckpt["model"](ids)
    assert logits.shape == (1, 17, ckpt["tokenizer"].vocab_size)


def test_sample_command_continues_a_prompt(trained_run, capsys):
    out, _ = trained_run
    assert main(["sample", "--ckpt", str(out), "--prompt", "The ", "--max-new-tokens", "30", "--seed", "0"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("The ") and len(text) >= 4 + 30
    assert main(["sample", "--ckpt", str(out), "--prompt", "The ", "--max-new-tokens", "30", "--seed", "0",
                 "--num-samples", "3"]) == 0
    first, second, third = capsys.readouterr().out.split("\n" + "-" * 40 + "\n")
    assert first + "\n" == text and second.startswith("The ") and len({first, second, third}) == 3  # seeds 0, 1, 2


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path)
    (tmp_path / "ckpt.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"not a readable tinyllm checkpoint \(ValueError: not an .npz file"):
        load_checkpoint(tmp_path)


def test_a_checkpoint_whose_meta_was_changed_is_refused_by_name(tmp_path):
    import json
    from tinyllm.checkpoint import save_checkpoint
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.tokenizer import CharTokenizer
    good = save_checkpoint(tmp_path / "good.npz", GPT(GPTConfig.from_preset("baby", n_layer=1, vocab_size=3)),
                           None, CharTokenizer.train("abc"), step=7)
    arrays = dict(np.load(good))
    meta = json.loads(str(arrays["meta"]))

    def saved_with(**changes) -> str:
        path = tmp_path / f"{sorted(changes)[0]}.npz"
        np.savez(path, **{**arrays, "meta": np.array(json.dumps({**meta, **changes}))})
        return str(path)
    assert load_checkpoint(saved_with(step=8))["step"] == 8     # the rewrite itself keeps a checkpoint whole
    with pytest.raises(ValueError, match="format 'other', expected 'tinyllm-checkpoint"):
        load_checkpoint(saved_with(format="other"))
    with pytest.raises(ValueError, match="format.npz is not a readable tinyllm checkpoint"):
        load_checkpoint(saved_with(format="other"))
    with pytest.raises(ValueError, match=r"its config does not fit its arrays: block_size, n_embd \(64, 64\) in "
                                         r"its config, \(64, 128\) in its arrays"):
        load_checkpoint(saved_with(config={**meta["config"], "n_embd": 64}))


def test_the_learning_rate_decays_to_a_tenth_of_its_peak_unless_told():
    assert TrainConfig().min_lr == pytest.approx(1e-4)
    assert TrainConfig(lr=3e-5).min_lr == pytest.approx(3e-6)    # fine-tuning's smaller lr decays below it
    assert TrainConfig(lr=3e-5, min_lr=3e-5).min_lr == 3e-5        # constant after warmup


def test_a_run_that_ends_inside_its_warmup_says_so(trained_run, tmp_path):
    assert not any(line.startswith("note:") for line in trained_run[1]["log"])   # 120 steps, warmup 100
    lines = []
    train(TrainConfig(max_iters=3, warmup_iters=100, lr=2e-3, eval_iters=1, n_layer=1, batch_size=2,
                      out=str(tmp_path)), log=lines.append)
    assert ("note: the run ends inside its warmup (--warmup-iters 100, --max-iters 3): the learning rate "
            "climbs to 5.94e-05, never to --lr 0.002") in lines                 # 2e-3 · 3/101


def test_a_vocabulary_size_is_for_a_new_bpe_tokenizer_only():
    assert TrainConfig(tokenizer="bpe").vocab_size == 512
    assert TrainConfig(tokenizer="bpe", vocab_size=300).vocab_size == 300
    for tokenizer in ("char", "tok.json"):
        with pytest.raises(ValueError, match=f"vocab_size \\(--vocab-size\\) must be left out with --tokenizer "
                                             f"{tokenizer}: it sizes a new BPE tokenizer only, got 1000"):
            TrainConfig(tokenizer=tokenizer, vocab_size=1000)


def test_a_fresh_text_starts_at_the_document_boundary():
    from tinyllm.sample import document_start
    from tinyllm.tokenizer import ByteLevelBPE, CharTokenizer
    assert document_start(CharTokenizer("\nab")) == [0] and document_start(CharTokenizer("ab\n")) == [2]
    assert document_start(CharTokenizer("xyz")) == [0]                  # no new line: the first character
    bpe = ByteLevelBPE([], special_tokens={"<|endoftext|>": 256})
    assert document_start(bpe) == [256] and document_start(ByteLevelBPE([])) == [10]   # b"\n"


def test_top_k_top_p_and_temperature_on_hand_made_logits():
    logits = np.log(np.array([0.5, 0.25, 0.15, 0.1]))
    np.testing.assert_allclose(next_token_probs(logits), [0.5, 0.25, 0.15, 0.1])
    np.testing.assert_allclose(next_token_probs(logits, top_k=2), [2 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(next_token_probs(logits, top_p=0.5), [1, 0, 0, 0])     # 0.5 alone reaches p
    np.testing.assert_allclose(next_token_probs(logits, top_p=0.7), [2 / 3, 1 / 3, 0, 0])
    cold = next_token_probs(logits, temperature=0.5)                                   # p² renormalised
    np.testing.assert_allclose(cold, np.array([0.25, 0.0625, 0.0225, 0.01]) / 0.345)
    with pytest.raises(ValueError, match="temperature must be positive"):
        next_token_probs(logits, temperature=0)


@pytest.mark.parametrize("setting, value, rule", [
    ("batch_size", 0, "at least 1"), ("grad_accum", 0, "at least 1"), ("eval_iters", 0, "at least 1"),
    ("eval_interval", 0, "at least 1"), ("log_interval", 0, "at least 1"), ("sample_interval", 0, "at least 1"),
    ("block_size", 0, "at least 1"), ("n_layer", 0, "at least 1"),
    ("max_iters", -1, "0 or more"), ("grad_clip", -1.0, "0 or more"), ("lr", 0.0, "positive"),
    ("beta2", 1.0, "in \\[0, 1\\)"), ("min_lr", 0.002, "at most --lr \\(0.001\\), where the cosine decay starts")])
def test_settings_that_cannot_train_are_refused_by_name(setting, value, rule, tmp_path, capsys):
    flag = "--" + setting.replace("_", "-")
    with pytest.raises(ValueError, match=f"^{setting} \\({flag}\\) must be {rule}, got {value}$"):
        TrainConfig(**{setting: value})
    assert main(["train", flag, str(value), "--out", str(tmp_path)]) == 2  # refused before any work
    assert f"tinyllm: error: {setting} ({flag}) must be" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # NumPy's overflow warnings on the way to nan
@pytest.mark.parametrize("log_interval", [1, 100], ids=["seen-in-a-log-line", "seen-by-the-estimate"])
def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(log_interval, tmp_path, capsys):
    args = ["train", "--lr", "50", "--warmup-iters", "0", "--grad-clip", "0", "--n-layer", "1", "--batch-size", "2",
            "--max-iters", "40", "--eval-interval", "20", "--log-interval", str(log_interval), "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    step = int(re.search(r"training diverged at step (\d+): [a-z ]+ (nan|inf)\b", err).group(1))
    assert 0 < step < 40 and f"still holds step {20 if step > 20 else 0}; try a lower --lr (this run's: 50), " \
        "or clip gradients (--grad-clip 1)" in err
    if log_interval == 100:                             # no log line between: the step-20 estimate catches it
        assert "at step 20: train loss nan, val loss nan" in err
    ckpt = load_checkpoint(tmp_path)                   # whole, and with the weights it had before
    assert ckpt["step"] in (0, 20) and all(np.isfinite(p.numpy()).all() for p in ckpt["model"].parameters())


def test_grad_clip_0_trains_unclipped(tmp_path):
    common = dict(max_iters=6, eval_interval=100, eval_iters=1, sample_interval=100, log_interval=1, n_layer=1,
                  batch_size=2, lr=1e-2, warmup_iters=0)
    unclipped = train(TrainConfig(grad_clip=0, out=str(tmp_path / "a"), **common), log=lambda line: None)
    never_reached = train(TrainConfig(grad_clip=1e9, out=str(tmp_path / "b"), **common), log=lambda line: None)
    clipped = train(TrainConfig(grad_clip=0.1, out=str(tmp_path / "c"), **common), log=lambda line: None)
    assert unclipped["loss"][0] == clipped["loss"][0]                   # the same first batch and weights
    assert unclipped["loss"] == never_reached["loss"]                   # 0 means no clipping at all
    assert unclipped["loss"][-1] < unclipped["loss"][0] - 0.3           # and the model did learn
    assert clipped["loss"][1:] != unclipped["loss"][1:]


def test_sample_tokens_0_shows_no_sample(tmp_path):
    lines = []
    train(TrainConfig(max_iters=2, eval_interval=100, eval_iters=1, log_interval=1, n_layer=1, batch_size=2,
                      sample_tokens=0, out=str(tmp_path)), log=lines.append)
    assert lines[-1].startswith("trained 2 steps") and not any("---- sample ----" in line for line in lines)


def test_sampling_settings_are_checked_before_any_output(trained_run, capsys):
    out, _ = trained_run
    for flag, value, message in [("--temperature", "0", "temperature must be positive, got 0.0 (for greedy "
                                                         "decoding, the likeliest token every time, keep the "
                                                         "temperature and set top_k=1: --top-k 1)"),
                                 ("--top-k", "0", "top_k must be at least 1"),
                                 ("--num-samples", "0", "--num-samples must be at least 1"),
                                 ("--top-p", "0", "top_p must be in (0, 1]"),
                                 ("--top-p", "1.5", "top_p must be in (0, 1]"),
                                 ("--max-new-tokens", "-1", "max_new_tokens must be 0 or more, got -1")]:
        assert main(["sample", "--ckpt", str(out), "--prompt", "The", flag, value]) == 2
        printed = capsys.readouterr()
        assert printed.out == "" and message in printed.err
    assert main(["predict", "--ckpt", str(out), "--top-k", "0", "The"]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and "tokens to list must be at least 1, got 0" in printed.err


def test_data_errors_are_clear(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_corpus(str(empty))
    with pytest.raises(FileNotFoundError, match="no corpus file"):
        load_corpus(str(tmp_path / "missing.txt"))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt is not UTF-8 text: 'utf-8' codec can't decode byte 0xe9"):
        load_corpus(str(latin1))
    with pytest.raises(ValueError, match="fewer than one block"):
        TokenBatches(np.arange(50, dtype=np.uint16), block_size=64)


def test_batches_are_next_token_shifted():
    batches = TokenBatches(np.arange(1000, dtype=np.uint16), block_size=8)
    x, y = batches.get_batch("train", 4, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 8) and x.dtype == np.int64
    np.testing.assert_array_equal(y, x + 1)
    assert x.max() < 900  # train windows come from the first 90%
    with pytest.raises(ValueError, match="split must be one of \\['train', 'val'\\], got 'test'"):
        batches.get_batch("test", 4, np.random.default_rng(0))


def test_accumulated_micro_batches_give_the_gradient_of_the_whole_batch():
    import tinyllm
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.train import accumulate_gradients
    tinyllm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=16)).to(dtype=np.float64)
    batches = TokenBatches(np.random.default_rng(1).integers(0, 50, 500).astype(np.uint16), block_size=8)
    grads = {}
    for batch_size, grad_accum in [(6, 1), (3, 2), (1, 6)]:   # the same 6 sequences: one draw of 6 = 6 draws of 1
        model.zero_grad()
        accumulate_gradients(model, batches, batch_size, grad_accum, np.random.default_rng(2))
        grads[grad_accum] = [p.grad.numpy() for p in model.parameters()]
    for accumulated in (grads[2], grads[6]):
        for whole, part in zip(grads[1], accumulated):
            np.testing.assert_allclose(part, whole, rtol=1e-10, atol=1e-14)


def test_estimate_loss_measures_without_dropout_and_gives_back_the_mode():
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.train import estimate_loss
    model = GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.5))
    batches = TokenBatches(np.random.default_rng(1).integers(0, 50, 500).astype(np.uint16), block_size=8)
    first, again = (estimate_loss(model, batches, 4, 3, np.random.default_rng(2)) for _ in range(2))
    assert first == again and model.training           # the same batches, no dropout: the same losses
    with no_grad():
        x, y = batches.get_batch("val", 4, np.random.default_rng(5))
        assert model(x, y)[1].item() != model(x, y)[1].item()      # dropout at work again afterwards
    model.eval()
    estimate_loss(model, batches, 4, 1, np.random.default_rng(2))
    assert not model.training                           # a model in eval mode stays there


def test_a_training_step_is_zero_grad_backward_clip_step():
    import tinyllm
    from tinyllm import optim
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.train import train_step
    batches = TokenBatches(np.random.default_rng(1).integers(0, 50, 500).astype(np.uint16), block_size=8)
    models = []
    for _ in range(2):
        tinyllm.manual_seed(0)
        models.append(GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=2, n_embd=16)).to(dtype=np.float64))
    ours, by_hand = models
    opts = [optim.AdamW(m.parameters(), lr=1e-2) for m in models]
    for p in ours.parameters():                  # a stale gradient that the step must forget
        p.grad = tinyllm.Tensor(np.full(p.shape, 5.0), dtype=np.float64)
    loss, norm = train_step(ours, opts[0], batches, 4, np.random.default_rng(2), grad_clip=0.1)

    x, y = batches.get_batch("train", 4, np.random.default_rng(2))
    _, expected_loss = by_hand(x, y)
    expected_loss.backward()
    grads = np.concatenate([p.grad.numpy().ravel() for p in by_hand.parameters()])
    expected_norm = np.sqrt(grads @ grads)
    for p in by_hand.parameters():
        p.grad = tinyllm.Tensor(p.grad.numpy() * 0.1 / (expected_norm + 1e-6), dtype=np.float64)
    opts[1].step()
    assert loss.item() == pytest.approx(expected_loss.item(), rel=1e-12)
    assert float(norm) == pytest.approx(expected_norm, rel=1e-10) and expected_norm > 0.1   # clipping happened
    for p, q in zip(ours.parameters(), by_hand.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-9, atol=1e-12)


def test_generate_feeds_the_last_block_size_tokens_and_appends_each_draw():
    import tinyllm
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.sample import generate
    tinyllm.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)).to(dtype=np.float64)
    seen = []
    ids = generate(model, [1, 2, 3], max_new_tokens=12, top_k=1, on_token=seen.append, use_cache=False)
    expected = [1, 2, 3]
    for _ in range(12):   # greedy by hand: the likeliest token after (at most) the last 8
        logits, _ = model(np.array([expected[-8:]]))
        expected.append(int(logits.numpy()[0, -1].argmax()))
    assert ids == expected and seen == expected[3:]
    assert generate(model, [4], max_new_tokens=0) == [4]
    stop = expected[7]    # the 5th token drawn: generation ends with it, whatever max_new_tokens says
    first = expected.index(stop, 3)
    assert generate(model, [1, 2, 3], max_new_tokens=12, top_k=1, stop_token=stop,
                    use_cache=False) == expected[:first + 1]   # (the cache is exercise 10.3, after this one)


@pytest.mark.parametrize("top_k,temperature", [(1, 1.0), (None, 0.9)], ids=["greedy", "seeded-sampling"])
def test_kv_cache_generation_equals_full_recompute(top_k, temperature):
    import tinyllm
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.sample import generate
    tinyllm.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)).to(dtype=np.float64)
    # 20 new tokens from 3: the context outgrows block_size 8, so the window slides too
    kwargs = dict(max_new_tokens=20, temperature=temperature, top_k=top_k, seed=5)
    cached = generate(model, [1, 2, 3], use_cache=True, **kwargs)
    full = generate(model, [1, 2, 3], use_cache=False, **kwargs)
    assert cached == full and len(cached) == 23


def test_a_prediction_needs_context():
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.sample import generate, top_next_tokens
    model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(ValueError, match="generate needs at least one token of context"):
        generate(model, [], max_new_tokens=3)
    with pytest.raises(ValueError, match="a prediction needs at least one token of context"):
        top_next_tokens(model, [])


def test_cached_logits_match_full_forward():
    import tinyllm
    from tinyllm.model import GPT, GPTConfig
    tinyllm.manual_seed(4)
    model = GPT(GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16))
    ids = np.array([[1, 5, 2, 7, 3, 3]])
    full, _ = model(ids)
    cache = model.new_cache()
    with no_grad():
        model(ids[:, :4], cache=cache)                 # prefill 4 positions
        step, _ = model(ids[:, 4:5], cache=cache)      # then one position at a time
        buffer = cache[0]["k"]
        last, _ = model(ids[:, 5:6], cache=cache)
        assert cache[0]["k"] is buffer and buffer.shape[2] == 8   # written in place: room for the whole context
        np.testing.assert_allclose(step.numpy()[0, 0], full.numpy()[0, 4], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(last.numpy()[0, 0], full.numpy()[0, 5], rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match="exceeds the model's block_size"):
            model(np.array([[1, 2, 3]]), cache=cache)  # 6 cached + 3 > 8
    with pytest.raises(ValueError, match="a KV cache serves generation, where no gradient flows"):
        model(ids[:, :1], cache=model.new_cache())


def test_kill_and_resume_continues_bit_for_bit(tmp_path):
    common = dict(max_iters=40, eval_interval=20, eval_iters=2, sample_interval=1000, log_interval=1,
                  n_layer=1, dropout=0.1, batch_size=4)
    straight = train(TrainConfig(out=str(tmp_path / "a"), **common), log=lambda line: None)

    def kill_at_step_25(line):
        if line.startswith("step    25"):
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):  # killed mid-run: the checkpoint of step 20 survives
        train(TrainConfig(out=str(tmp_path / "b"), **common), log=kill_at_step_25)
    resumed = train(TrainConfig(out=str(tmp_path / "b"), resume=True, **common), log=lambda line: None)
    assert resumed["step"] == list(range(40))        # the history goes on from the checkpoint's
    assert resumed["loss"] == straight["loss"]       # exact equality, float for float
    assert resumed["eval_step"] == straight["eval_step"] == [0, 20, 40] and resumed["val"] == straight["val"]


def test_a_failed_save_leaves_the_last_checkpoint_whole(tmp_path, monkeypatch):
    import tinyllm
    from tinyllm.checkpoint import save_checkpoint
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.tokenizer import CharTokenizer
    tinyllm.manual_seed(0)
    model, tok = GPT(GPTConfig(vocab_size=3, block_size=4, n_layer=1, n_head=1, n_embd=4)), CharTokenizer("abc")
    save_checkpoint(tmp_path, model, None, tok, step=7)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing
    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, model, None, tok, step=8)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path)["step"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary file left behind


def test_text_loss_predicts_every_token_once_in_windows_of_the_context():
    from tinyllm import manual_seed
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.metrics import text_loss
    manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, dropout=0.3))
    ids = np.random.default_rng(0).integers(0, 11, 30)   # 29 tokens to predict: windows of 8, 8, 8 and 5
    nats = []
    with no_grad():
        for start in range(0, 29, 8):
            x = ids[start:min(start + 8, 29)]
            logits = model.eval()(x[None])[0].numpy()[0].astype(np.float64)       # (len(x), 11), no dropout
            log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            nats += list(-log_probs[np.arange(len(x)), ids[start + 1:start + 1 + len(x)]])
    assert len(nats) == 29
    model.train()
    seen = []
    for tokens_per_batch in (2048, 8, 1):                                          # batching changes nothing
        assert text_loss(model, ids, tokens_per_batch, progress=lambda done, total: seen.append((done, total))) \
            == pytest.approx(np.mean(nats), abs=1e-5)
    assert model.training and seen[-1] == (29, 29)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        text_loss(model, ids[:1])


def test_eval_scores_the_validation_split_as_training_estimated_it(trained_run, capsys):
    out, history = trained_run
    assert main(["eval", "--ckpt", str(out), "--split", "val"]) == 0
    head, numbers = capsys.readouterr().out.splitlines()
    n_val = len(load_corpus("pydoc")) // 10       # char-level: a token per character
    assert head.endswith(f"on pydoc (val): {n_val - 1:,} tokens predicted, {n_val - 1:,} characters")
    loss, perplexity, bits = (float(v) for v in re.findall(r"[\d.]+(?= nats| \||$| bits)", numbers)[:3])
    assert loss == pytest.approx(history["val"][-1], abs=0.15)   # all of val vs. training's 10 random batches
    assert perplexity == pytest.approx(math.exp(loss), rel=1e-3) and bits == pytest.approx(loss / math.log(2), abs=2e-3)
    assert main(["eval", "--ckpt", str(out), "--max-tokens", "1"]) == 2
    assert "--max-tokens must be at least 2" in capsys.readouterr().err


def test_predict_lists_the_likeliest_next_tokens(trained_run, capsys):
    from tinyllm.sample import top_next_tokens
    out, _ = trained_run
    ckpt = load_checkpoint(out)
    top = top_next_tokens(ckpt["model"], ckpt["tokenizer"].encode("The for statemen"), k=5)
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert main(["predict", "--ckpt", str(out), "--top-k", "5", "The for statemen"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "after 'The for statemen' the model expects:" and len(lines) == 6
    assert repr(ckpt["tokenizer"].decode([top[0][0]])) in lines[1] and f"{probs[0]:.1%}" in lines[1]


def test_resuming_another_architecture_or_a_finished_run_is_refused(trained_run, capsys):
    out, _ = trained_run
    assert main(["train", "--out", str(out), "--resume", "--n-layer", "3", "--max-iters", "130"]) == 2
    err = capsys.readouterr().err
    assert "holds another architecture (n_layer 2 in the checkpoint but 3 asked for)" in err
    before = (out / "ckpt.npz").read_bytes()
    assert main(["train", "--out", str(out), "--resume", "--n-layer", "2", "--max-iters", "120"]) == 2
    assert "is at step 120 already: to train on, give --max-iters above 120" in capsys.readouterr().err
    assert (out / "ckpt.npz").read_bytes() == before  # nothing was written


def test_unknown_prompt_character_and_missing_cupy_are_one_line(trained_run, capsys):
    out, _ = trained_run
    assert main(["sample", "--ckpt", str(out), "--prompt", "snow ☃"]) == 2
    assert "'☃' (U+2603) is not in this tokenizer's vocabulary" in capsys.readouterr().err
    snowy = out / "snowy.txt"
    snowy.write_text("Let it snow ☃. " * 200, encoding="utf-8")
    assert main(["train", "--init-from", str(out), "--data", str(snowy), "--out", str(out / "snowy")]) == 2
    assert f"--init-from keeps the tokenizer of {out}, which cannot encode {snowy}: remove those characters" \
        in capsys.readouterr().err
    assert main(["train", "--tf32", "--out", str(out / "tf32")]) == 2
    assert "--tf32 is a GPU setting: use it with --device cuda" in capsys.readouterr().err
    try:
        import cupy  # noqa: F401
    except ImportError:
        assert main(["sample", "--ckpt", str(out), "--device", "cuda"]) == 2
        assert "CuPy" in capsys.readouterr().err


def test_tinyllm_device_is_the_default_device(trained_run, monkeypatch, capsys):
    from conftest import cuda_unavailable_reason
    from tinyllm.cli import build_parser
    out, _ = trained_run
    monkeypatch.setenv("TINYLLM_DEVICE", "cuda")  # only a name until a model is put on it
    assert TrainConfig().device == "cuda"
    parser = build_parser()
    assert [parser.parse_args(a).device for a in (["train"], ["sample"], ["predict", "x"])] == ["cuda"] * 3
    assert parser.parse_args(["sample", "--device", "cpu"]).device == "cpu"
    assert load_checkpoint(out, device="cpu")["model"].device == "cpu"
    if cuda_unavailable_reason():
        with pytest.raises(RuntimeError, match="CuPy"):  # the checkpoint was asked onto the GPU
            load_checkpoint(out)
    else:
        assert load_checkpoint(out)["model"].device == "cuda"
    monkeypatch.setenv("TINYLLM_DEVICE", "tpu")
    assert main(["sample", "--ckpt", str(out)]) == 2
    assert "unknown device 'tpu' (named by the environment variable TINYLLM_DEVICE)" in capsys.readouterr().err
    monkeypatch.setenv("TINYLLM_DEVICE", "")  # set but empty counts as unset
    assert TrainConfig().device == "cpu" and load_checkpoint(out)["model"].device == "cpu"


def test_ctrl_c_during_training_leaves_a_loadable_checkpoint(tmp_path):
    import signal
    import subprocess
    import sys
    cmd = [sys.executable, "-u", "-m", "tinyllm.cli", "train", "--max-iters", "100000", "--eval-interval", "3",
           "--eval-iters", "1", "--log-interval", "1", "--sample-interval", "100000", "--n-layer", "1",
           "--batch-size", "2", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    evals = 0
    for line in proc.stdout:  # interrupt after a few checkpoints, somewhere in the middle of the work
        evals += "| eval:" in line
        if evals == 3:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; the last checkpoint" in err
    assert load_checkpoint(tmp_path)["step"] in (3, 6, 9)  # the one being written may be lost, never the one before
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
