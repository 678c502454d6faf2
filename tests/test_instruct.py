"""Instruction tuning: the template, the response mask, padded batches, the pydoc dataset, end to end."""

import pytest

from tinyllm.instruct import (IGNORE_INDEX, InstructionBatches, encode_example, prompt_text, pydoc_instructions,
                              read_instructions, reference_corpus, reference_topics, response_loss,
                              write_instructions)
from tinyllm.tokenizer import END_OF_TEXT, ByteLevelBPE, CharTokenizer


@pytest.fixture(scope="module")
def tok():
    return ByteLevelBPE.train("Explain the with statement. It wraps a block." * 20, 270, special_tokens=[END_OF_TEXT])


def test_the_response_mask_counts_only_response_tokens():
    tok = ByteLevelBPE([], special_tokens={END_OF_TEXT: 256})   # bytes only: no training needed (exercise 5)
    example = {"instruction": "Explain with.", "output": "It wraps a block."}
    prompt, response = tok.encode(prompt_text(example)), tok.encode("It wraps a block.")
    eot = tok.special_tokens[END_OF_TEXT]
    inputs, targets = encode_example(tok, example)
    assert inputs.tolist() == prompt + response            # the whole template but its last token (eot)
    assert targets[:len(prompt) - 1].tolist() == [IGNORE_INDEX] * (len(prompt) - 1)
    assert targets[len(prompt) - 1:].tolist() == response + [eot]   # the answer, then the stop, are scored
    assert (targets != IGNORE_INDEX).sum() == len(response) + 1


def test_the_template_shows_the_input_only_when_there_is_one():
    assert prompt_text({"instruction": "Add.", "output": "3"}) == "### Instruction:\nAdd.\n\n### Response:\n"
    assert prompt_text({"instruction": "Add.", "input": "1 + 2", "output": "3"}) == \
        "### Instruction:\nAdd.\n\n### Input:\n1 + 2\n\n### Response:\n"


def test_a_batch_is_padded_to_its_longest_example_and_the_last_tenth_is_validation(tok):
    examples = [{"instruction": "Explain with." * (1 + i % 3), "output": "It wraps." * (1 + i % 2)} for i in range(20)]
    batches = InstructionBatches(examples, tok, block_size=64)
    assert [len(v) for v in batches.splits.values()] == [18, 2]
    chosen = batches.splits["train"][:3]
    x, y = batches.pad_batch(chosen)
    assert x.shape == y.shape == (3, max(len(i) for i, _ in chosen))
    for row, (inputs, targets) in enumerate(chosen):
        assert x[row, :len(inputs)].tolist() == inputs.tolist() and y[row, :len(targets)].tolist() == targets.tolist()
        assert (y[row, len(targets):] == IGNORE_INDEX).all()      # padding is never scored


def test_a_bad_line_is_named_with_its_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    cases = [('{"instruction": "Hi."}', r"bad.jsonl:2: missing or empty \['output'\]"),
             ('{"instruction": "Hi.", "output": "Hello.", "answer": "x"}',
              r"bad.jsonl:2: unknown or not text: \['answer'\]"),
             ("not json", "bad.jsonl:2: not JSON"),
             ('{"instruction": "Hi.", "output": "Hello.", "split": "test"}', "bad.jsonl:2: 'split' is 'test'")]
    for line, message in cases:
        path.write_text('{"instruction": "Hi.", "output": "Hello."}\n' + line + "\n")
        with pytest.raises(ValueError, match=message):
            read_instructions(path)


def test_the_pydoc_dataset_is_deterministic_and_holds_out_whole_topics(tmp_path):
    examples = pydoc_instructions()
    assert examples == pydoc_instructions() and len(examples) > 100
    def topic(example: dict) -> str:   # "Show the grammar of X." -> "X."
        return example["instruction"].split(" ", 1)[1].replace("the grammar of ", "").replace("an example of ", "")
    held_out = {topic(e) for e in examples if e["split"] == "val"}
    assert held_out and not held_out & {topic(e) for e in examples if e["split"] == "train"}
    assert read_instructions(write_instructions(examples, tmp_path / "pydoc.jsonl")) == examples   # round trip
    assert reference_corpus().count(END_OF_TEXT) == len(reference_topics()) - 1   # one text per topic


def test_instruction_tuning_end_to_end(tmp_path, capsys, monkeypatch):
    import io
    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.cli import main
    from tinyllm.train import TrainConfig, train
    corpus = tmp_path / "reference.txt"
    corpus.write_text(reference_corpus(), encoding="utf-8")
    train(TrainConfig(data=str(corpus), tokenizer="bpe", vocab_size=300, out=str(tmp_path / "base"), n_layer=1,
                      max_iters=10, eval_interval=10, eval_iters=1, sample_tokens=0), log=lambda line: None)
    write_instructions(pydoc_instructions(), tmp_path / "pydoc.jsonl")
    base = load_checkpoint(tmp_path / "base")
    batches = InstructionBatches(read_instructions(tmp_path / "pydoc.jsonl"), base["tokenizer"], 64)
    before = response_loss(base["model"], batches, "train")
    assert main(["train", "--init-from", str(tmp_path / "base"), "--instructions", str(tmp_path / "pydoc.jsonl"),
                 "--out", str(tmp_path / "tuned"), "--max-iters", "30", "--eval-interval", "30", "--eval-iters", "2",
                 "--sample-tokens", "0", "--batch-size", "8", "--lr", "3e-3", "--warmup-iters", "5"]) == 0
    assert "16 validation examples, the loss on the answers only" in capsys.readouterr().out
    after = response_loss(load_checkpoint(tmp_path / "tuned")["model"], batches, "train")
    assert after < before - 0.3, (before, after)
    monkeypatch.setattr("sys.stdin", io.StringIO("Explain the \"with\" statement.\n\nExplain lambdas.\n"))
    assert main(["chat", "--ckpt", str(tmp_path / "tuned"), "--max-new-tokens", "5", "--seed", "0"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2 and err.count("[no end of text within 5 tokens") <= 2


def test_instruction_tuning_needs_an_end_of_text_token(tmp_path):
    char_model_tokenizer = CharTokenizer("abc")
    with pytest.raises(ValueError, match="ends each answer with <|endoftext|>, and this tokenizer has no such token"):
        InstructionBatches([{"instruction": "a", "output": "b"}] * 2, char_model_tokenizer, 8)
