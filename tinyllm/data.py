"""Text in, batches of token ids out.

    corpus (a name, a file or a URL) -> text -> tokenizer -> one long array of ids
    -> 90% train / 10% validation -> random (B, T+1) windows -> inputs x and targets y

The target at position t is simply the token at t + 1: a GPT learns to predict
the next token everywhere in the window at once.

Two things are kept in a cache directory ($TINYLLM_CACHE, else ~/.cache/tinyllm)
so they happen once: downloaded corpora, and each corpus encoded by each tokenizer.
"""
from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from .backend import device_of, to_device, to_numpy
from .files import write_atomically
from .tokenizer import END_OF_TEXT, ByteLevelBPE, CharTokenizer, Tokenizer, load_tokenizer

DATA_HELP = "'pydoc' (ships with Python), a UTF-8 text file, or an http(s) URL (downloaded once)"  # load_corpus's names


def cache_dir() -> Path:
    """Where downloads and encoded corpora are kept: ``$TINYLLM_CACHE``, else ``~/.cache/tinyllm``."""
    return Path(os.environ.get("TINYLLM_CACHE") or Path.home() / ".cache" / "tinyllm")


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, sha256: str | None = None, log=print) -> Path:
    """Fetch ``url`` once into the cache and return the local path.

    The file is streamed to a temporary name with a progress line, checked against
    the server's Content-Length and, when given, ``sha256``, and only then renamed
    into place: a failed or interrupted download leaves nothing behind.
    """
    if url.startswith("http://") and not sha256 and os.environ.get("TINYLLM_ALLOW_HTTP") != "1":
        raise ValueError(f"{url}: plain http can be changed on its way here; give the file's sha256 "
                         "(--data-sha256), or use https (or set TINYLLM_ALLOW_HTTP=1 to take it anyway)")
    cap = float(os.environ.get("TINYLLM_MAX_DOWNLOAD_MB", 1024)) * 1e6   # a corpus, not a disk's worth
    name = Path(urllib.request.url2pathname(url.split("?")[0])).name or "download"
    path = cache_dir() / "downloads" / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}-{name}"
    if path.is_file():
        if sha256 and _sha256_of_file(path) != sha256.lower():
            raise ValueError(f"the cached copy of {url} at {path} does not have sha256 {sha256}; "
                             f"delete it to download again")
        return path

    def fetch(f) -> None:
        digest, size = hashlib.sha256(), 0
        with urllib.request.urlopen(url, timeout=30) as response:
            total = int(response.headers.get("Content-Length") or 0)
            for chunk in iter(lambda: response.read(1 << 16), b""):
                size += len(chunk)
                if max(size, total) > cap:
                    raise ValueError(f"{url} is larger than {cap / 1e6:g} MB, the most tinyllm downloads "
                                     "(set TINYLLM_MAX_DOWNLOAD_MB to allow more)")
                f.write(chunk)
                digest.update(chunk)
                done = f" of {total / 1e6:.2f} MB ({size / total:.0%})" if total else " MB"
                print(f"\rdownloading {url}: {size / 1e6:.2f}{done}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if total and size != total:
            raise ValueError(f"download of {url} stopped after {size:,} of {total:,} bytes")
        if sha256 and digest.hexdigest() != sha256.lower():
            raise ValueError(f"{url} has sha256 {digest.hexdigest()}, expected {sha256}")
        log(f"downloaded {url}: {size:,} bytes, sha256 {digest.hexdigest()}")

    try:
        return write_atomically(path, fetch)
    except (urllib.error.URLError, TimeoutError) as e:
        raise RuntimeError(f"could not download {url}: {getattr(e, 'reason', e)}") from None


def load_corpus(name_or_path: str, sha256: str | None = None) -> str:
    """``"pydoc"``: the English reference text inside every CPython (``pydoc_data.topics``);
    an ``http(s)://`` URL: downloaded once into the cache (plain http only with ``sha256``, or
    TINYLLM_ALLOW_HTTP=1; at most TINYLLM_MAX_DOWNLOAD_MB, 1024 by default); anything else: a
    UTF-8 text file. A file or download is checked against ``sha256`` when it is given."""
    if name_or_path == "pydoc":
        try:
            from pydoc_data.topics import topics
        except ImportError:  # a few Linux distributions ship it apart (Alpine: python3-pydoc)
            raise FileNotFoundError("this Python has no pydoc_data, the reference manual's text: install your "
                                    "distribution's pydoc package, or train on a text file (--data FILE)") from None
        text = "\n\n".join(topics[key] for key in sorted(topics))
    else:
        is_url = name_or_path.startswith(("http://", "https://"))
        path = download(name_or_path, sha256) if is_url else Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(f"no corpus file at {path} (use a text file, a URL or 'pydoc')")
        if sha256 and not is_url and _sha256_of_file(path) != sha256.lower():
            raise ValueError(f"{path} does not have sha256 {sha256} (--data-sha256)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text: {e}") from None
    if not text:
        raise ValueError(f"the corpus {name_or_path!r} is empty")
    return text


BPE_VOCAB_SIZE = 512  # a new BPE tokenizer's vocabulary unless told: 256 bytes + 256 merges


def make_tokenizer(kind: str, text: str, vocab_size: int = BPE_VOCAB_SIZE, verbose: bool = False) -> Tokenizer:
    """``"char"``: one id per character of ``text``; ``"bpe"``: byte-level BPE trained on
    ``text`` to ``vocab_size`` (with ``<|endoftext|>`` as a special token when the text
    separates documents with it); anything else: a saved tokenizer file."""
    if kind == "char":
        return CharTokenizer.train(text)
    if kind == "bpe":
        special = [END_OF_TEXT] if END_OF_TEXT in text else []
        return ByteLevelBPE.train(text, vocab_size, special_tokens=special, verbose=verbose)
    return load_tokenizer(kind)


def encode_corpus(text: str, tokenizer: Tokenizer, dtype=None, cache: bool = False) -> np.ndarray:
    """All of ``text`` as one array of ids: uint16 when every id fits (half the memory), else uint32.
    A special token's string in the text (GPT-2's ``<|endoftext|>``) becomes its one id.

    With ``cache`` the array is saved as ``.npy`` under ``cache_dir()/tokens``, keyed by a
    hash of the text and the tokenizer, and read back instead of encoding again next time.
    """
    dtype = np.dtype(dtype or (np.uint16 if tokenizer.vocab_size <= 2 ** 16 else np.uint32))
    if tokenizer.vocab_size - 1 > np.iinfo(dtype).max:
        raise ValueError(f"a vocabulary of {tokenizer.vocab_size:,} tokens does not fit {dtype.name} "
                         f"(largest id {np.iinfo(dtype).max:,}): use uint32")
    if not cache:   # an END_OF_TEXT in a corpus separates documents, as in GPT-2's training data
        return np.array(tokenizer.encode(text, allowed_special="all"), dtype=dtype)
    key = hashlib.sha256(tokenizer.fingerprint() + b"\0" + text.encode())
    path = cache_dir() / "tokens" / f"{key.hexdigest()[:24]}-{dtype.name}.npy"
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # not there yet, or damaged: encode (again)
        ids = encode_corpus(text, tokenizer, dtype)
        write_atomically(path, lambda f: np.save(f, ids))
        return ids


def train_val_split(ids: np.ndarray, val_fraction: float = 0.1) -> dict[str, np.ndarray]:
    """The first 90% of a corpus's tokens to train on, the last 10% held out for validation."""
    n_val = int(len(ids) * val_fraction)
    return {"train": ids[: len(ids) - n_val], "val": ids[len(ids) - n_val:]}


class TokenBatches:
    """Random windows of a token array, split 90/10 into train and validation.

    On a GPU (``device="cuda"``) the token array lives on the device, so a batch is
    gathered there: only the B start positions cross from the host.
    """

    def __init__(self, ids: np.ndarray, block_size: int, val_fraction: float = 0.1, device: str = "cpu"):
        self.splits = train_val_split(ids, val_fraction)
        self.block_size = block_size
        for name, part in self.splits.items():
            if len(part) < block_size + 1:
                raise ValueError(f"the {name} split has {len(part)} tokens, fewer than one block of "
                                 f"{block_size} + 1: use a longer corpus or a smaller --block-size")
        self.splits = {name: to_device(part, device) for name, part in self.splits.items()}
        self.offsets = to_device(np.arange(block_size + 1), device)

    def get_batch(self, split: str, batch_size: int, rng: np.random.Generator):
        """(x, y), each (batch_size, block_size) int64 on the batches' device; y is x shifted left by one.

        ``rng`` is a NumPy generator on every device, so a seed picks the same windows anywhere."""
        if split not in self.splits:
            raise ValueError(f"split must be one of {sorted(self.splits)}, got {split!r}")
        data = self.splits[split]
        # BEGIN EXERCISE 9.4: a batch: B random windows of T+1 tokens; x is each window but its last, y all but its first
        starts = to_device(rng.integers(0, len(data) - self.block_size, batch_size), device_of(data))
        windows = data[starts[:, None] + self.offsets].astype("int64")  # (B, 1) + (T+1,) -> (B, T+1) positions
        return windows[:, :-1], windows[:, 1:]
        # END EXERCISE


MASK_RATE = 0.15   # BERT's share of the positions a masked language model learns to fill in


def mask_tokens(ids, mask_id: int, vocab_size: int, rng: np.random.Generator, rate: float = MASK_RATE,
                ignore_index: int = -100):
    """BERT's masked-language-model corruption of a batch of ids: ``(inputs, targets)``, same shape.

    Each position is chosen with probability ``rate``. A chosen position becomes ``mask_id``
    80% of the time, a random token of ``0..vocab_size-1`` 10%, and stays itself 10% (so the
    model cannot learn that only a mask marks where to predict). ``targets`` holds the
    original id at the chosen positions and ``ignore_index`` everywhere else, so the
    cross-entropy counts the chosen positions only. ``rng`` is a NumPy generator on every device.
    """
    if not 0 < rate <= 1:
        raise ValueError(f"the masking rate must be in (0, 1], got {rate}")
    device = device_of(ids)
    ids = to_numpy(ids)                         # the draws are the host's (the same on every device)
    # BEGIN EXERCISE 16.1: masking: choose positions with probability rate; 80% mask, 10% random, 10% kept
    chosen = rng.random(ids.shape) < rate
    action = rng.random(ids.shape)              # for a chosen position: < 0.8 mask, < 0.9 random, else kept
    inputs = ids.copy()
    inputs[chosen & (action < 0.8)] = mask_id
    swapped = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swapped] = rng.integers(0, vocab_size, int(swapped.sum()))
    targets = np.where(chosen, ids, ignore_index)
    # END EXERCISE
    return to_device(inputs, device), to_device(targets, device)
