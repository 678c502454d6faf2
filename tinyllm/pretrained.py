"""OpenAI's GPT-2, with the weights OpenAI trained, running in tinyllm's GPT.

GPT-2 is published on the Hugging Face hub (huggingface.co/openai-community/gpt2, and
gpt2-medium, -large, -xl) as a directory of four files:

    config.json         the shape: n_layer, n_head, n_embd, n_positions, vocab_size, ...
    model.safetensors   every weight, as raw little-endian arrays behind a JSON index
    vocab.json          the BPE tokenizer: token -> id (OpenAI's encoder.json)
    merges.txt          its merges, in rank order (OpenAI's vocab.bpe)

tinyllm's ``GPT`` is GPT-2's architecture under GPT-2's own parameter names, so loading
is reading the arrays, dropping a prefix, and transposing four matrices per block:
OpenAI's code stored each linear layer as a "Conv1D" with weight (in, out) and computed
``x @ W``, where ``Linear`` (like PyTorch's) keeps (out, in) and computes ``x @ Wᵀ``.
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .files import write_atomically
from .model import GPT, GPTConfig, check_config_fits
from .nn import skip_init
from .tokenizer import END_OF_TEXT, ByteLevelBPE

# safetensors' dtype names -> NumPy's (little-endian, as the format stores them). BF16 has no
# NumPy type: its 16 bits are the high half of a float32, so it is read as uint16 and widened.
SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
                      "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}

# The layers OpenAI stored as Conv1D, weight (in, out); Linear wants (out, in).
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Not weights: each block's causal mask, saved as a buffer by older versions of transformers.
MASK_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array in a ``.safetensors`` file, by name.

    The format: 8 bytes holding N (little-endian uint64), then N bytes of JSON naming each
    array's dtype, shape and [begin, end) byte range in the data that follows.
    """
    path = Path(path)
    problem = f"{path} is not a readable safetensors file"
    size = path.stat().st_size
    if size < 8:
        raise ValueError(f"{problem}: {size} bytes, too short to hold a header")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > size - 8:
            raise ValueError(f"{problem}: its header claims {n} bytes, the file has {size - 8} after the length")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{problem}: its header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{problem}: its header is not a JSON object")
    header.pop("__metadata__", None)
    # The arrays are not read here. The file is mapped into memory and each array is a view of
    # its bytes, which the OS reads from disk when they are first used: for GPT-2 xl's 6 GB that
    # keeps memory to the model's own copy (made by load_state_dict) instead of two.
    body = np.memmap(path, np.uint8, mode="r", offset=8 + n) if size > 8 + n else np.zeros(0, np.uint8)
    arrays = {}
    for name, entry in header.items():
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            if not all(isinstance(v, int) and v >= 0 for v in (*shape, begin, end)):
                raise TypeError
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{problem}: the header entry of {name!r} is {entry!r}") from None
        if dtype not in SAFETENSORS_DTYPES:
            raise ValueError(f"{problem}: {name!r} has dtype {dtype}; readable: {', '.join(SAFETENSORS_DTYPES)}")
        np_dtype = np.dtype(SAFETENSORS_DTYPES[dtype])
        if not 0 <= begin <= end <= len(body) or end - begin != math.prod(shape) * np_dtype.itemsize:
            raise ValueError(f"{problem}: {name!r} ({dtype}, shape {list(shape)}) says bytes {begin}..{end} "
                             f"of {len(body)}")
        array = body[begin:end].view(np_dtype).reshape(shape)
        if dtype == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        arrays[name] = array
    return arrays


def write_safetensors(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` (from either device) as a ``.safetensors`` file, atomically."""
    names = {np.dtype(v).str: k for k, v in SAFETENSORS_DTYPES.items() if k != "BF16"}  # "<f4" -> "F32"
    arrays = {name: np.ascontiguousarray(to_numpy(a)) for name, a in arrays.items()}
    arrays = {name: a.astype(a.dtype.newbyteorder("<"), copy=False) for name, a in arrays.items()}
    header, offset = {}, 0
    for name, a in arrays.items():
        if a.dtype.str not in names:
            raise ValueError(f"write_safetensors: {name} is {a.dtype}, which safetensors cannot hold")
        header[name] = {"dtype": names[a.dtype.str], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header).encode()

    def write(f) -> None:
        f.write(len(text).to_bytes(8, "little") + text)
        for a in arrays.values():
            f.write(a.tobytes())
    return write_atomically(path, write)


def gpt2_config(config: dict) -> GPTConfig:
    """The ``GPTConfig`` of a Hugging Face GPT-2 ``config.json``, refusing what tinyllm's GPT is not."""
    differences = {  # setting: (its value here, GPT-2's, which tinyllm's GPT computes)
        "model_type": (config.get("model_type"), "gpt2"),
        "activation_function": (config.get("activation_function", "gelu_new"), "gelu_new"),
        "layer_norm_epsilon": (config.get("layer_norm_epsilon", 1e-5), 1e-5),
        "tie_word_embeddings": (config.get("tie_word_embeddings", True), True),
        "scale_attn_by_inverse_layer_idx": (config.get("scale_attn_by_inverse_layer_idx", False), False),
        "n_inner": (config.get("n_inner") or 4 * config.get("n_embd", 0), 4 * config.get("n_embd", 0)),
    }
    for setting, (value, expected) in differences.items():
        if value != expected:
            raise ValueError(f"config.json has {setting} = {value!r}; tinyllm's GPT is GPT-2's, with {expected!r}")
    try:
        return GPTConfig(vocab_size=config["vocab_size"], block_size=config["n_positions"],
                         n_layer=config["n_layer"], n_head=config["n_head"], n_embd=config["n_embd"])
    except KeyError as e:
        raise ValueError(f"config.json has no {e.args[0]!r}, which GPT-2's config always has") from None


def gpt2_state_dict(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Hugging Face's GPT-2 arrays under tinyllm's names and layouts (for ``GPT.load_state_dict``)."""
    # BEGIN EXERCISE 13.1: GPT-2's names and layouts -> tinyllm's: prefix, mask buffers, tied head, Conv1D
    # GPT2LMHeadModel keeps the Transformer under "transformer."; older files saved it bare.
    arrays = {name.removeprefix("transformer."): array for name, array in arrays.items()}
    lm_head = arrays.pop("lm_head.weight", None)   # tied to wte; some versions store the copy
    if lm_head is not None and not np.array_equal(lm_head, arrays.get("wte.weight")):
        raise ValueError("its lm_head.weight is not its wte.weight, and tinyllm's GPT ties the two")
    return {name: array.T if name.endswith(CONV1D_WEIGHTS) else array   # (in, out) -> (out, in)
            for name, array in arrays.items() if not MASK_BUFFER.fullmatch(name)}
    # END EXERCISE


def find_gpt2_download(path: str | os.PathLike) -> Path | None:
    """The directory of the Hugging Face GPT-2 at ``path`` (the directory or its model.safetensors), else None."""
    path = Path(path)
    directory = path.parent if path.suffix == ".safetensors" else path
    return directory if (directory / "model.safetensors").is_file() else None


def gpt2_tokenizer_files(directory: str | os.PathLike) -> tuple[Path, Path] | None:
    """GPT-2's two tokenizer files in ``directory``, for ``ByteLevelBPE.from_gpt2_files``: Hugging
    Face's vocab.json and merges.txt, or OpenAI's own names for them, encoder.json and vocab.bpe.
    None when neither pair is there."""
    directory = Path(directory)
    pairs = [("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")]
    return next(((directory / a, directory / b) for a, b in pairs
                 if (directory / a).is_file() and (directory / b).is_file()), None)


def load_gpt2(path: str | os.PathLike) -> tuple[GPT, ByteLevelBPE]:
    """GPT-2 from a Hugging Face download (the directory, or its model.safetensors; see the top
    of this file), on the CPU, in eval mode.

    The tokenizer is read from the files ``gpt2_tokenizer_files`` finds beside the weights.
    """
    path = find_gpt2_download(path) or Path(path)
    for name in ("model.safetensors", "config.json"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} has no {name}: a GPT-2 download holds config.json, "
                                    "model.safetensors, vocab.json and merges.txt")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path / 'config.json'} is not JSON ({e})") from None
    config = gpt2_config(config if isinstance(config, dict) else {})
    tokenizer_files = gpt2_tokenizer_files(path)
    if tokenizer_files is None:
        raise FileNotFoundError(f"{path} has no tokenizer: put GPT-2's vocab.json and merges.txt beside the weights")
    tokenizer = ByteLevelBPE.from_gpt2_files(*tokenizer_files)
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"{path}: the tokenizer has {tokenizer.vocab_size} tokens, "
                         f"config.json says {config.vocab_size}")
    try:
        state = gpt2_state_dict(read_safetensors(path / "model.safetensors"))   # mapped: nothing read yet
        check_config_fits(config, {name: array.shape for name, array in state.items()})   # before building it
        with skip_init():  # the weights come from the file
            model = GPT(config)
        model.load_state_dict(state)
    except (KeyError, ValueError) as e:
        raise ValueError(f"{path / 'model.safetensors'} does not hold the GPT-2 of its config.json ({e})") from None
    return model.eval(), tokenizer


def save_gpt2(model: GPT, tokenizer: ByteLevelBPE, directory: str | os.PathLike) -> Path:
    """Write ``model`` and ``tokenizer`` as a Hugging Face GPT-2 directory: the four files ``load_gpt2``
    reads, which ``transformers``' ``GPT2LMHeadModel.from_pretrained`` and ``GPT2Tokenizer`` read too."""
    if any(p.dtype.kind != "f" for p in model.parameters()):
        raise ValueError("this model is quantized (integer weights), and GPT-2's files hold float weights: "
                         "export the checkpoint it was quantized from")
    if not isinstance(tokenizer, ByteLevelBPE):
        raise ValueError(f"GPT-2's tokenizer is byte-level BPE, and this model's is a {type(tokenizer).__name__} "
                         "(train with --tokenizer bpe to export)")
    c = model.config
    if not c.bias:
        raise ValueError("GPT-2 has a bias in every Linear and LayerNorm, and this model was made without")
    if not c.causal:
        raise ValueError("GPT-2 is causal, and this model (causal=False) attends both ways: GPT-2's code would "
                         "run it with a causal mask it was not trained with")
    if tokenizer.vocab_size != c.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens and the model {c.vocab_size}")
    directory = Path(directory)
    end_of_text = tokenizer.special_tokens.get(END_OF_TEXT)
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": c.vocab_size,
              "n_positions": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head,
              "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "tie_word_embeddings": True,
              "attn_pdrop": c.dropout, "embd_pdrop": c.dropout, "resid_pdrop": c.dropout,
              "bos_token_id": end_of_text, "eos_token_id": end_of_text}
    tokenizer.save_gpt2_files(directory / "vocab.json", directory / "merges.txt")
    write_safetensors(directory / "model.safetensors",   # load_gpt2's mapping, the other way
                      {"transformer." + name: array.T if name.endswith(CONV1D_WEIGHTS) else array
                       for name, array in model.state_dict().items()})
    text = json.dumps(config, indent=2)
    write_atomically(directory / "config.json", lambda f: f.write(text.encode("utf-8")))
    return directory
