"""Instruction tuning: teach a pretrained model to answer a question in a template, and to stop.

A pretrained model continues text. Asked "Explain the with statement.", it may go on with
another question, or with anything that often follows such a line. Instruction tuning is
fine-tuning on examples of a question followed by its answer, laid out in one fixed
template, with the loss counted on the answer only: the model learns to answer, not to
write questions, and to end its answer with ``<|endoftext|>`` so that generation stops.

The examples: JSON Lines, one object per line, ``{"instruction": ..., "input": ..., "output": ...}``
("input" optional: text the instruction is about; "split" optional: "train" or "val", else the
last 10% of the lines are the validation split). The template (Alpaca's headers, with the
tokenizer's end-of-text as the stop):

    ### Instruction:
    {instruction}

    ### Input:                  <- only when "input" is not empty
    {input}

    ### Response:
    {output}<|endoftext|>

``InstructionBatches`` serves them to the training loop like ``TokenBatches`` serves windows,
a batch padded per sequence to its longest example. ``pydoc_instructions`` builds a dataset
from the Python reference that ships with CPython, needing no download.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from .backend import to_device, to_numpy
from .tensor import no_grad
from .tokenizer import END_OF_TEXT

IGNORE_INDEX = -100       # F.cross_entropy's default: a target that counts for nothing
FIELDS = ("instruction", "input", "output", "split")


def read_instructions(path: str | os.PathLike) -> list[dict]:
    """The examples of a JSONL file, each checked: one ``ValueError`` naming file:line and what is wrong."""
    examples = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number}: not JSON ({e.msg})") from None
        if not isinstance(example, dict):
            raise ValueError(f"{path}:{number}: a line must be a JSON object with {FIELDS}")
        missing = [k for k in ("instruction", "output") if not isinstance(example.get(k), str) or not example[k]]
        wrong = [k for k in example if k not in FIELDS or not isinstance(example[k], str)]
        if missing or wrong:
            what = f"missing or empty {missing}" if missing else f"unknown or not text: {wrong}"
            raise ValueError(f"{path}:{number}: {what}; a line holds 'instruction' and 'output' (text), "
                             "and optionally 'input'")
        if example.get("split", "train") not in ("train", "val"):
            raise ValueError(f"{path}:{number}: 'split' is {example['split']!r}; it must be 'train' or 'val'")
        examples.append(example)
    if not examples:
        raise ValueError(f"{path} holds no examples")
    return examples


def prompt_text(example: dict) -> str:
    """The template up to where the answer begins."""
    given = f"### Input:\n{example['input']}\n\n" if example.get("input") else ""
    return f"### Instruction:\n{example['instruction']}\n\n{given}### Response:\n"


def end_of_text(tokenizer) -> int:
    """The tokenizer's ``<|endoftext|>`` id: the token an answer ends with."""
    special = getattr(tokenizer, "special_tokens", {})
    if END_OF_TEXT not in special:
        raise ValueError(f"instruction tuning ends each answer with {END_OF_TEXT}, and this tokenizer has no such "
                         "token: use GPT-2's, or a BPE tokenizer trained on text that separates documents with it")
    return special[END_OF_TEXT]


def encode_example(tokenizer, example: dict) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) of one example: the template's tokens and the next token at each
    position, ``IGNORE_INDEX`` wherever the next token is still the prompt."""
    prompt = tokenizer.encode(prompt_text(example))
    response = tokenizer.encode(example["output"]) + [end_of_text(tokenizer)]
    # BEGIN EXERCISE 21.1: the response mask: targets = ids shifted by one, the prompt's own targets ignored
    ids = np.array(prompt + response)
    inputs, targets = ids[:-1], ids[1:].copy()   # position i predicts token i + 1
    targets[:len(prompt) - 1] = IGNORE_INDEX     # tokens 1 .. P-1 are the prompt's: not scored
    return inputs, targets
    # END EXERCISE


class InstructionBatches:
    """Examples encoded once, split (as their "split" says, else the last ``val_fraction`` of
    them: validation), served as padded batches: ``get_batch(split, batch_size, rng) -> (x, y)``
    as ``TokenBatches``."""

    def __init__(self, examples: list[dict], tokenizer, block_size: int, val_fraction: float = 0.1,
                 device: str = "cpu"):
        if not any("split" in e for e in examples):
            n_val = max(1, round(len(examples) * val_fraction))
            examples = [{**e, "split": "val" if i >= len(examples) - n_val else "train"}
                        for i, e in enumerate(examples)]
        self.pad = end_of_text(tokenizer)                      # any id: its targets are ignored
        self.device = device
        self.splits, self.cut = {"train": [], "val": []}, 0    # cut: prompts too long to leave an answer
        for example in examples:
            inputs, targets = (a[:block_size] for a in encode_example(tokenizer, example))
            if (targets == IGNORE_INDEX).all():
                self.cut += 1
            else:
                self.splits[example.get("split", "train")].append((inputs, targets))
        self.mean_length = float(np.mean([len(x) for x, _ in self.splits["train"]] or [0]))  # tokens
        for name, pool in self.splits.items():
            if not pool:
                raise ValueError(f"no usable {name} examples ({len(examples)} in all, {self.cut} with a prompt "
                                 f"longer than the context of {block_size} tokens)")

    def pad_batch(self, chosen: list[tuple[np.ndarray, np.ndarray]]):
        """(x, y) of these examples, each padded to the longest (targets with ``IGNORE_INDEX``)."""
        T = max(len(x) for x, _ in chosen)
        x = np.full((len(chosen), T), self.pad, dtype=np.int64)
        y = np.full((len(chosen), T), IGNORE_INDEX, dtype=np.int64)
        for row, (inputs, targets) in enumerate(chosen):
            x[row, :len(inputs)], y[row, :len(targets)] = inputs, targets
        return to_device(x, self.device), to_device(y, self.device)

    def get_batch(self, split: str, batch_size: int, rng: np.random.Generator):
        """``batch_size`` examples of ``split`` drawn at random, padded to the longest."""
        if split not in self.splits:
            raise ValueError(f"split must be one of {sorted(self.splits)}, got {split!r}")
        pool = self.splits[split]
        return self.pad_batch([pool[i] for i in rng.integers(0, len(pool), batch_size)])


def response_loss(model, batches: InstructionBatches, split: str = "val", batch_size: int = 8) -> float:
    """Mean cross-entropy over every response token of ``split``, each example once (nats/token)."""
    total, count = 0.0, 0
    with no_grad(), model.evaluating():
        pool = batches.splits[split]
        for i in range(0, len(pool), batch_size):
            x, y = batches.pad_batch(pool[i:i + batch_size])
            n = int((to_numpy(y) != IGNORE_INDEX).sum())
            total += model(x, y)[1].item() * n
            count += n
    return total / count


# --- a dataset from the Python reference (pydoc_data), no download needed ----------------

def reference_topics() -> dict[str, str]:
    """The Python reference's topics, as ``pydoc`` shows them (``pydoc_data.topics``)."""
    from pydoc_data.topics import topics
    return dict(sorted(topics.items()))


def reference_corpus() -> str:
    """Every topic, separated by ``<|endoftext|>``: the text the base model pretrains on."""
    return END_OF_TEXT.join(reference_topics().values())


def pydoc_instructions(held_out_every: int = 8) -> list[dict]:
    """Questions about the reference's topics, answered in its own words, deterministically:

    - "Explain <title>."             -> the topic's first paragraph after its title
    - "Show the grammar of <title>." -> its first grammar block (lines with ``::=``)
    - "Give an example of <title>."  -> its first ``>>>`` example

    A topic with no such part gives no such question. Every ``held_out_every``-th topic
    (in name order) is held out: its questions are the "val" split, about topics no
    training question was about.
    """
    examples = []
    for i, (name, text) in enumerate(reference_topics().items()):
        lines = text.strip("\n").splitlines()
        title = lines[0].strip()
        title = title[0].lower() + title[1:] if title[1:2].islower() else title   # "The X" -> "the X"
        blocks = re.split(r"\n\s*\n", "\n".join(lines[2:]).strip("\n"))   # after the title and its underline
        prose = next((b for b in blocks if not b.startswith(" ")), None)
        grammar = next((b for b in blocks if "::=" in b), None)
        example = next((b for b in blocks if b.lstrip().startswith(">>>")), None)
        questions = [(f"Explain {title}.", prose), (f"Show the grammar of {title}.", grammar),
                     (f"Give an example of {title}.", example)]
        split = "val" if i % held_out_every == held_out_every - 1 else "train"
        examples += [{"instruction": q, "output": _dedent(a), "split": split} for q, a in questions if a]
    return examples


def _dedent(block: str) -> str:
    """A block without the indentation its lines share; a paragraph's lines joined into one."""
    lines = block.splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    lines = [line[indent:] for line in lines]
    return " ".join(line.strip() for line in lines) if indent == 0 else "\n".join(lines)


def write_instructions(examples: list[dict], path: str | os.PathLike) -> Path:
    """Write ``examples`` as JSON Lines (UTF-8, one object per line)."""
    from .files import write_atomically
    text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)
    return write_atomically(path, lambda f: f.write(text.encode("utf-8")))
