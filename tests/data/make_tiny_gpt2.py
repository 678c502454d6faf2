"""Writes tests/data/tiny_gpt2/: a GPT-2 made and saved by Hugging Face ``transformers``, and its outputs.

The directory has the layout of a GPT-2 download from the Hugging Face hub (config.json,
model.safetensors, vocab.json, merges.txt), shrunk to 2 layers of width 8 and 261 tokens
(256 bytes, 4 merges, <|endoftext|>), its weights random and then trained for a moment on
one sentence (so that its greedy continuation is that sentence). ``reference.npz`` holds what
``transformers`` computes with it: the ids of a text, the logits for them, and a greedy
continuation. tests/test_pretrained.py checks tinyllm against these numbers.

Needs ``pip install torch transformers``; CI never runs it (the files it wrote are committed).
    python tests/data/make_tiny_gpt2.py
"""
import json
from pathlib import Path

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

from tinyllm.tokenizer.bpe import bytes_to_unicode   # its ids are checked against transformers' tokenizer

OUT = Path(__file__).parent / "tiny_gpt2"
TEXT = "the tin in the thin hat"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n")]
    chars = bytes_to_unicode()
    # GPT-2's ids: first the bytes that stand for themselves, then the others, each in byte order
    order = sorted(range(256), key=lambda b: chars[b] != chr(b))
    vocab = {chars[b]: i for i, b in enumerate(order)}
    for left, right in merges:
        vocab[left + right] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (OUT / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (OUT / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(vocab), n_positions=16, n_embd=8, n_layer=2, n_head=2,
                        bos_token_id=len(vocab) - 1, eos_token_id=len(vocab) - 1)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # the default init leaves LayerNorms at 1 and 0, biases at 0: make every number count
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    # A little training on TEXT, so that the greedy continuation is text rather than one token repeated.
    ids = GPT2Tokenizer(str(OUT / "vocab.json"), str(OUT / "merges.txt"))(TEXT)["input_ids"]
    stream = torch.tensor((ids + [220]) * 8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(300):
        starts = torch.randint(0, len(stream) - 17, (16,))
        windows = torch.stack([stream[s:s + 17] for s in starts])
        loss = model(windows[:, :16], labels=windows[:, :16]).loss   # transformers shifts the labels itself
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(OUT)
    (OUT / "generation_config.json").unlink(missing_ok=True)

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].numpy()
        greedy = model.generate(torch.tensor([ids[:4]]), max_new_tokens=10, do_sample=False,
                                pad_token_id=config.eos_token_id)[0].tolist()
    np.savez(OUT / "reference.npz", text=np.array(TEXT), ids=np.array(ids), logits=logits,
             greedy=np.array(greedy))
    print(f"wrote {OUT}: ids {ids}, greedy {greedy}")


if __name__ == "__main__":
    main()
