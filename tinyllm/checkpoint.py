"""Checkpoints: one ``.npz`` file holding everything needed to sample or resume.

    model/<name>          each parameter (float32 arrays)
    optim/<state>/<name>  AdamW's moment buffers, by parameter name (so a resume matches
                          each buffer to its own parameter, and refuses one that fits none)
    meta                  JSON: step, model config, tokenizer, optimizer step count and lr,
                          training config and random generator states (for an exact resume)

No pickle anywhere (it is loaded with ``allow_pickle=False``), and the file is
written to a temporary name and renamed, so a crash never leaves half a checkpoint.

``load_checkpoint`` also reads OpenAI's GPT-2 as downloaded from Hugging Face (pretrained.py),
so everything that samples from a checkpoint can sample from GPT-2.

A quantized model (quantize.py) saves its integer weights and scales under their own
names, and ``meta["quantized"]`` says how to build it again (bits, group size, embedding).

A LoRA fine-tune (lora.py) saves only its adapters, ``model/...lora_A`` and ``lora_B``, and in
``meta["lora"]`` its settings and the base model it applies to: that checkpoint's path and the
sha256 of its weights. Loading reads the base again and refuses it if its weights changed.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .backend import default_device, to_numpy
from .files import npz_shapes, write_atomically
from .lora import apply_lora, lora_settings, merge_lora
from .model import GPT, GPTConfig, check_config_fits
from .nn import skip_init
from .optim import Optimizer
from .pretrained import find_gpt2_download, load_gpt2
from .quantize import quantization_of, quantize_model
from .tokenizer import TOKENIZER_TYPES, Tokenizer

FORMAT = "tinyllm-checkpoint-1"
MAX_META_BYTES = 64 * 2**20   # the JSON beside the arrays: settings, tokenizer, loss history
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
    ``extra``: more JSON-ready facts for ``meta`` (the training config, random generator states;
    for a model with LoRA adapters, ``{"lora": {"base": path, "base_sha256": weights_sha256(base)}}``)."""
    path = checkpoint_path(path)
    meta = {"format": FORMAT, "step": step, "config": model.config.to_dict(),
            "tokenizer": tokenizer.to_dict(), **(extra or {})}
    weights = model.state_dict()
    quantized = quantization_of(model)
    if quantized is not None:   # integer weights and their scales (quantize.py)
        meta["quantized"] = quantized
    lora = lora_settings(model)
    if lora is not None:   # the adapters only: the base's weights are in the base's own file
        if not {"base", "base_sha256"} <= set(meta.get("lora", {})):
            raise ValueError("a model with LoRA adapters is saved with the base it applies to: "
                             "extra={'lora': {'base': ..., 'base_sha256': ...}}")
        meta["lora"] = {**meta["lora"], **lora}
        weights = {name: a for name, a in weights.items() if name.rsplit(".", 1)[-1] in ("lora_A", "lora_B")}
    arrays = {f"model/{name}": to_numpy(a) for name, a in weights.items()}
    if optimizer is not None:
        state = optimizer.state_dict()
        meta["optimizer"] = {"steps": state["steps"], "lr": state["lr"]}
        names = _names_of(optimizer, model)
        for state_name, buffers in state["state"].items():
            arrays.update({f"optim/{state_name}/{name}": to_numpy(b) for name, b in zip(names, buffers)})
    arrays["meta"] = np.array(json.dumps(meta))
    return write_atomically(path, lambda f: np.savez(f, **arrays))


def weights_sha256(model) -> str:
    """A fingerprint of a model's weights: sha256 over every parameter's name, shape and bytes."""
    digest = hashlib.sha256()
    for name, a in sorted(model.state_dict().items()):
        a = to_numpy(a)
        digest.update(f"{name}{a.shape}{a.dtype}".encode())
        digest.update(np.ascontiguousarray(a).data)
    return digest.hexdigest()


def load_checkpoint(path, device: str | None = None, keep_lora: bool = False) -> dict:
    """Read a checkpoint: returns ``model`` (a GPT on ``device``), ``tokenizer``, ``step``,
    ``meta`` and ``optimizer_state`` (for ``load_optimizer_state``, or None).

    ``device`` defaults to ``TINYLLM_DEVICE`` when set, else "cpu"; a checkpoint loads on
    either device, whichever it was written on. ``path`` may also be a GPT-2 download (see
    ``CHECKPOINT_HELP``): its model at step 0, with no optimizer state. A LoRA checkpoint
    comes back merged into a plain GPT, or with its adapters apart if ``keep_lora``
    (to train on)."""
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
        shapes = npz_shapes(path, max_bytes={"meta": MAX_META_BYTES})   # every member checked, none read yet
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format') if isinstance(meta, dict) else None!r}, "
                                 f"expected {FORMAT!r}")
            config = GPTConfig(**meta["config"])
            if "lora" not in meta:
                check_config_fits(config, {k[len("model/"):]: v for k, v in shapes.items() if k.startswith("model/")})
            tok_data = meta["tokenizer"]
            tokenizer = TOKENIZER_TYPES[tok_data["type"]].from_dict(tok_data)
            if tokenizer.vocab_size > config.vocab_size:
                raise ValueError(f"its tokenizer has {tokenizer.vocab_size} tokens, more than the model's "
                                 f"vocabulary of {config.vocab_size}")
            arrays = {k: f[k] for k in f.files if k != "meta"}
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path} is not a readable tinyllm checkpoint ({type(e).__name__}: {e})") from None
    weights = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    if "lora" in meta:
        model = _lora_model(path, meta["lora"], config, device)
    else:
        with skip_init():  # the weights come from the file
            model = GPT(config)
            if "quantized" in meta:   # the same integer and scale arrays, to be filled from the file
                quantize_model(model, **meta["quantized"])
    try:
        model.load_state_dict(weights, strict="lora" not in meta)
        if "lora" in meta:
            adapters = {name for name, p in model.named_parameters() if p.requires_grad}
            if set(weights) != adapters:
                raise KeyError(f"the adapters differ: {sorted(set(weights) ^ adapters)}")
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path} does not fit its own model config ({e})") from None
    model.to(device)
    if not keep_lora:
        merge_lora(model)
    optimizer_state = None
    if "optimizer" in meta:
        optimizer_state = {**meta["optimizer"], "state": {}}
        for key in (k for k in arrays if k.startswith("optim/")):
            _, state_name, name = key.split("/", 2)
            optimizer_state["state"].setdefault(state_name, {})[name] = arrays[key]
    return {"model": model, "tokenizer": tokenizer, "step": meta["step"], "meta": meta,
            "optimizer_state": optimizer_state}


def _lora_model(path: Path, lora: dict, config: GPTConfig, device: str) -> GPT:
    """The base model a LoRA checkpoint applies to, checked to be the one it was trained on,
    cut to the checkpoint's context, with fresh adapters where the checkpoint's go."""
    try:
        base = load_checkpoint(lora["base"], device=device)["model"]
    except (FileNotFoundError, ValueError) as e:
        raise ValueError(f"{path} holds LoRA adapters for the model at {lora['base']}, which cannot be "
                         f"read ({e})") from None
    if weights_sha256(base) != lora["base_sha256"]:
        raise ValueError(f"{path} holds LoRA adapters for the model at {lora['base']}, but that model's "
                         "weights have changed since (their sha256 differs): the adapters fit only the "
                         "weights they were trained on")
    if config.block_size < base.config.block_size:
        base.crop_block_size(config.block_size)
    base.set_dropout(config.dropout)
    return apply_lora(base, lora["rank"], lora["alpha"], lora["targets"], lora["dropout"])


def _names_of(optimizer: Optimizer, model) -> list[str]:
    """The model's name for each of the optimizer's parameters, in the optimizer's order."""
    name_of = {id(p): name for name, p in model.named_parameters()}
    missing = [i for i, p in enumerate(optimizer.params) if id(p) not in name_of]
    if missing:
        raise ValueError(f"the optimizer holds {len(missing)} parameters that are not the model's")
    return [name_of[id(p)] for p in optimizer.params]


def load_optimizer_state(optimizer: Optimizer, model, state: dict) -> None:
    """Give ``optimizer`` the state ``load_checkpoint`` read (``ckpt["optimizer_state"]``), each
    buffer to the parameter of the same name. A state that does not fit is refused by name:
    a buffer for a parameter this optimizer does not train, one missing, a shape that differs."""
    names = _names_of(optimizer, model)
    for state_name, by_name in state["state"].items():
        unknown = sorted(set(by_name) - set(names))
        missing = [name for name in names if name not in by_name]
        if unknown or missing:
            what = (f"state for {', '.join(unknown[:4])}{' …' * (len(unknown) > 4)}, which this optimizer "
                    "does not train" if unknown else
                    f"no state for {', '.join(missing[:4])}{' …' * (len(missing) > 4)}")
            raise ValueError(f"the checkpoint's optimizer state {state_name!r} does not fit: it has {what}")
        for name, p in zip(names, optimizer.params):
            if tuple(by_name[name].shape) != p.shape:
                raise ValueError(f"the checkpoint's optimizer state {state_name!r} for {name} has shape "
                                 f"{tuple(by_name[name].shape)}, the parameter {p.shape}")
    optimizer.load_state_dict({"steps": state["steps"], "lr": state["lr"], "state": {
        state_name: [by_name[name] for name in names] for state_name, by_name in state["state"].items()}})
