"""Checkpoints: one ``.npz`` file holding everything needed to sample or resume.

    model/<name>          each parameter (float32 arrays)
    optim/<state>/<i>     AdamW's moment buffers
    meta                  JSON: step, model config, tokenizer, optimizer step count and lr,
                          training config and random generator states (for an exact resume)

No pickle anywhere (it is loaded with ``allow_pickle=False``), and the file is
written to a temporary name and renamed, so a crash never leaves half a checkpoint.

``load_checkpoint`` also reads OpenAI's GPT-2 as downloaded from Hugging Face (pretrained.py),
so everything that samples from a checkpoint can sample from GPT-2.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .backend import default_device, to_numpy
from .files import write_atomically
from .model import GPT, GPTConfig
from .nn import skip_init
from .optim import Optimizer
from .pretrained import find_gpt2_download, load_gpt2
from .tokenizer import TOKENIZER_TYPES, Tokenizer

FORMAT = "tinyllm-checkpoint-1"
CHECKPOINT_HELP = ("a checkpoint: its .npz file or the directory holding ckpt.npz (tinyllm train writes them), "
                   "or a directory holding GPT-2 from Hugging Face (config.json, model.safetensors, "
                   "vocab.json, merges.txt)")


def checkpoint_path(path: str | os.PathLike) -> Path:
    """A directory means the ``ckpt.npz`` inside it."""
    path = Path(path)
    return path / "ckpt.npz" if path.suffix != ".npz" else path


def save_checkpoint(path, model: GPT, optimizer: Optimizer | None, tokenizer: Tokenizer, step: int,
                    extra: dict | None = None) -> Path:
    """Write everything to ``path`` (a ``.npz`` file, or a directory for its ``ckpt.npz``) atomically.
    ``extra``: more JSON-ready facts for ``meta`` (the training config, random generator states)."""
    path = checkpoint_path(path)
    arrays = {f"model/{name}": to_numpy(a) for name, a in model.state_dict().items()}
    meta = {"format": FORMAT, "step": step, "config": model.config.to_dict(),
            "tokenizer": tokenizer.to_dict(), **(extra or {})}
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {"steps": state["steps"], "lr": state["lr"]}
        for name, buffers in state["state"].items():
            arrays.update({f"optim/{name}/{i}": to_numpy(b) for i, b in enumerate(buffers) if b is not None})
    arrays["meta"] = np.array(json.dumps(meta))
    return write_atomically(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path, device: str | None = None) -> dict:
    """Read a checkpoint: returns ``model`` (a GPT on ``device``), ``tokenizer``, ``step``,
    ``meta`` and ``optimizer_state`` (for ``Optimizer.load_state_dict``, or None).

    ``device`` defaults to ``TINYLLM_DEVICE`` when set, else "cpu"; a checkpoint loads on
    either device, whichever it was written on. ``path`` may also be a GPT-2 download (see
    ``CHECKPOINT_HELP``): its model at step 0, with no optimizer state."""
    device = device or default_device()
    if not checkpoint_path(path).is_file():
        gpt2 = find_gpt2_download(path)
        if gpt2 is None:
            raise FileNotFoundError(f"no checkpoint at {checkpoint_path(path)} ('tinyllm train --out DIR' "
                                    "writes DIR/ckpt.npz)")
        model, tokenizer = load_gpt2(gpt2)
        return {"model": model.to(device), "tokenizer": tokenizer, "step": 0, "optimizer_state": None,
                "meta": {"format": "huggingface-gpt2", "config": model.config.to_dict()}}
    path = checkpoint_path(path)
    try:
        if not zipfile.is_zipfile(path):   # (np.load would guess at a pickle, and suggest allowing one)
            raise ValueError("not an .npz file, which is a zip archive")
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
        meta = json.loads(str(arrays.pop("meta")))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
        config = GPTConfig(**meta["config"])
        tok_data = meta["tokenizer"]
        tokenizer = TOKENIZER_TYPES[tok_data["type"]].from_dict(tok_data)
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is not a readable tinyllm checkpoint ({type(e).__name__}: {e})") from None
    with skip_init():  # the weights come from the file
        model = GPT(config)
    try:
        model.load_state_dict({k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")})
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path} does not fit its own model config ({e})") from None
    model.to(device)
    optimizer_state = None
    if "optimizer" in meta:
        names = sorted({k.split("/")[1] for k in arrays if k.startswith("optim/")})
        n = len(list(model.parameters()))
        optimizer_state = {**meta["optimizer"], "state": {
            name: [arrays.get(f"optim/{name}/{i}") for i in range(n)] for name in names}}
    return {"model": model, "tokenizer": tokenizer, "step": meta["step"], "meta": meta,
            "optimizer_state": optimizer_state}
