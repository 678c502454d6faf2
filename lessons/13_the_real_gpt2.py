# %% [markdown]
# # Lesson 13 — The real GPT-2: OpenAI's weights in the code you wrote
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–13.1 are solved
# (this lesson teaches 13.1); or in this checkout, where every exercise is solved.*
#
# **What you will build:** a weights file taken apart byte by byte; the map from
# GPT-2's published names and layouts onto tinyllm's `GPT`; and, when GPT-2's files
# are on your disk, the model OpenAI trained, predicting and writing in your code.
#
# Lesson 08 ended on "GPT-2 is this code plus these numbers", 124 million of them. OpenAI released
# the numbers in 2019. Today they live on the Hugging Face hub
# (huggingface.co/openai-community/gpt2) as four files: `config.json` (the shape),
# `model.safetensors` (the numbers), `vocab.json` and `merges.txt` (the tokenizer of
# lesson 05, which tinyllm already reads).

# %%
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from shared import FAST, GPT2_DIR, exercises_before
from tinyllm import Tensor, manual_seed
from tinyllm.model import GPT, GPTConfig
from tinyllm.pretrained import CONV1D_WEIGHTS, gpt2_state_dict, read_safetensors, write_safetensors

exercises_before(13)
work = Path(tempfile.mkdtemp(prefix="tinyllm-lesson13-"))

# %% [markdown]
# ## A weights file, byte by byte
# *safetensors* holds nothing but numbers and a table of contents. (A PyTorch `.bin`
# file is a Python pickle, which may run any code when it is loaded; that is why the
# hub moved to this format.) Its layout:
#
#     8 bytes    N, the length of the table (a little-endian unsigned integer)
#     N bytes    the table, in JSON: each array's dtype, shape and [begin, end) below
#     the rest   every array's raw bytes, back to back
#
# Write two small arrays and look at what landed on disk.

# %%
path = write_safetensors(work / "two.safetensors", {"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                                                     "b": np.array([0.5, -1.0], dtype=np.float32)})
raw = path.read_bytes()
n = int.from_bytes(raw[:8], "little")
print(f"{len(raw)} bytes = 8 + a {n}-byte table + {len(raw) - 8 - n} bytes of numbers (8 float32s)")
print("the table:", raw[8:8 + n].decode())
table = json.loads(raw[8:8 + n])
begin, end = table["b"]["data_offsets"]
print("b by hand:", np.frombuffer(raw[8 + n + begin:8 + n + end], dtype="<f4"),
      "| read_safetensors:", read_safetensors(path)["b"])

# %% [markdown]
# `read_safetensors` does what the last line did by hand, for every entry, and checks
# that each entry's bytes fit its shape. It does not even read the numbers: it maps the
# file into memory and hands out views, and the operating system reads each array from
# disk when it is first used.
#
# ## The names and one layout
# tinyllm's `GPT` was written with GPT-2's own parameter names, so most arrays go where
# their name says. Hugging Face's file puts `transformer.` in front of each name
# (its `GPT2LMHeadModel` keeps the Transformer in a `.transformer` attribute):

# %%
manual_seed(0)
config = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=8)
model = GPT(config)
for name, value in list(model.state_dict().items())[:6]:
    print(f"tinyllm {name:24} {str(value.shape):10}   GPT-2 file: transformer.{name}")

# %% [markdown]
# One difference is not in the names. OpenAI's code computed every linear layer of a
# block as `x @ W + b` with W of shape (in, out), a layer it called *Conv1D*. tinyllm's
# `Linear`, like PyTorch's, keeps W as (out, in) and computes `x @ Wᵀ + b`. Same
# numbers, transposed storage; so the file's `c_attn` weight is (8, 24) where
# tinyllm's is (24, 8). Both ways give the same output:

# %%
layer = model.h[0].attn.c_attn
conv1d_weight = layer.weight.data.T                       # how GPT-2's file stores it: (in, out)
x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
print("Linear's W:", layer.weight.shape, "  the file's:", conv1d_weight.shape)
print("x @ W (Conv1D) == x @ Wᵀ (Linear):",
      np.allclose(x @ conv1d_weight + layer.bias.data, layer(Tensor(x)).data, atol=1e-6))
print("the four per block stored (in, out):", ", ".join(CONV1D_WEIGHTS))

# %% [markdown]
# Two more details: the file may hold each block's causal mask (`h.0.attn.bias`, a
# buffer of ones and zeros, not a weight; tinyllm builds the mask itself), and it may
# hold `lm_head.weight`, which GPT-2 ties to `wte.weight` (lesson 08). Exercise 13.1,
# `gpt2_state_dict` in `tinyllm/pretrained.py`, handles all of it.
#
# ## A round trip
# Write this small model as GPT-2's file would hold it, then load it back through
# `gpt2_state_dict` into a fresh model: the two must compute the same logits.

# %%
as_gpt2 = {"transformer." + name: (value.T if name.endswith(CONV1D_WEIGHTS) else value)
           for name, value in model.state_dict().items()}
write_safetensors(work / "model.safetensors", as_gpt2)
manual_seed(1)
fresh = GPT(config)                                       # other random weights
fresh.load_state_dict(gpt2_state_dict(read_safetensors(work / "model.safetensors")))
ids = np.array([[3, 1, 4, 1, 5, 9, 2, 6]])
print("same logits after the round trip:", np.array_equal(model(ids)[0].data, fresh(ids)[0].data))
shutil.rmtree(work)                                       # the lesson's files are done with

# %% [markdown]
# ## The model OpenAI trained
# Put GPT-2's four files in a folder (the README's "OpenAI's GPT-2" has the commands)
# and set `TINYLLM_GPT2` to it, or name the folder `gpt2` beside where you run this
# lesson (`shared.GPT2_DIR` is that folder). `load_checkpoint` recognises such a
# folder, so every tinyllm command takes it as a checkpoint: `tinyllm sample --ckpt
# gpt2`, `tinyllm predict --ckpt gpt2 ...`.

# %%
if (GPT2_DIR / "model.safetensors").is_file():
    from tinyllm.checkpoint import load_checkpoint
    from tinyllm.sample import generate, next_token_table
    ckpt = load_checkpoint(GPT2_DIR, device="cpu")
    gpt2, tok = ckpt["model"], ckpt["tokenizer"]
    print(f"GPT-2 from {GPT2_DIR}: {gpt2.num_parameters():,} parameters")
    for prompt, k in (("The capital of France is", 5), ("The cat sat on a", 10)):
        print(f"after {prompt!r} GPT-2 expects:\n" + next_token_table(gpt2, tok, prompt, k))
    text = "Alan Turing theorized that computers would one day become"
    print(tok.decode(generate(gpt2, tok.encode(text), 10 if FAST else 60, temperature=0.8, top_k=40, seed=0)))
else:
    print(f"no GPT-2 in {GPT2_DIR.resolve()}: see the README's \"OpenAI's GPT-2\" to download its four files")

# %% [markdown]
# ## What you now know
# - A safetensors file is a JSON table of contents and raw bytes; reading one takes a page.
# - Loading a pretrained model is matching names and layouts: here a prefix, a tied head,
#   mask buffers that are not weights, and four matrices per block stored transposed.
# - The GPT you built in lessons 01–08 is GPT-2: with OpenAI's numbers in it, it writes
#   English. `tinyllm train --init-from gpt2` fine-tunes it on your own text, and
#   `tinyllm export` writes a model you trained as GPT-2's four files, for anyone's GPT-2 code.
#   Lesson 14 shows what fine-tuning does, on the small model you trained.
#
# **Exercise**: 13.1 `gpt2_state_dict` (`tinyllm/pretrained.py`).
