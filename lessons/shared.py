"""What the lessons share: fast mode, where figures go, and a small trained model.

Not a lesson: each lesson imports it (``from shared import ...``) so that its own
page is about its idea, not about set-up.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write PNG files; no window needed

FAST = os.environ.get("TINYLLM_FAST") == "1"  # CI's smoke test: tiny sizes, few steps
FIGURES = Path(os.environ.get("TINYLLM_FIGURES", Path(__file__).parent / "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)
# The README's "OpenAI's GPT-2" download (its four files), for lessons 05 and 13
GPT2_DIR = Path(os.environ.get("TINYLLM_GPT2", "gpt2"))


def exercises_before(lesson: int) -> None:
    """Say which exercises of lessons 1..``lesson`` are still blank in the tinyllm this lesson runs
    on (your copy from ``tinyllm exercises init``): the lesson stops at the first cell that needs one."""
    import tinyllm
    from tinyllm.exercises import find_exercises, lesson_of, status
    root = Path(tinyllm.__file__).resolve().parents[1]
    blank = [e.id for e in find_exercises(root) if lesson_of(e.id) <= lesson and status(e, root) == "todo"]
    if blank:
        print(f"note: {'exercise' if len(blank) == 1 else 'exercises'} {', '.join(blank)} "
              f"{'is' if len(blank) == 1 else 'are'} still blank in {root}; "
              f"this lesson stops at the first cell that needs one ('tinyllm exercises hint {blank[0]}')")


def save_figure(fig, name: str) -> Path:
    """Write ``fig`` as ``FIGURES/name`` and say where."""
    from tinyllm.plots import save_png
    path = FIGURES / name
    save_png(fig, path)
    print("saved", path)
    return path


def small_trained_model(steps: int | None = None):
    """A `baby` GPT (0.8M parameters) trained on pydoc, character level: (model, tokenizer).

    Trained once (about 25 s on 2 cores for the default 600 steps) and kept in the
    tinyllm cache, so the lessons that need a trained model share it. It lives on the
    CPU whatever TINYLLM_DEVICE says: the lessons read its arrays with NumPy and matplotlib.
    Trained again when tinyllm's code changes (your exercises, fixed), and when the last
    run was stopped before its final step (its checkpoint then holds a half-trained model).
    """
    from tinyllm.checkpoint import load_checkpoint
    steps = steps or (20 if FAST else 600)
    ckpt = load_checkpoint(trained_once(f"pydoc-baby-{steps}", max_iters=steps, eval_interval=steps, eval_iters=5,
                                        log_interval=max(1, steps // 4), warmup_iters=min(100, steps // 10)))
    return ckpt["model"].eval(), ckpt["tokenizer"]


def reference_model(steps: int | None = None) -> Path:
    """The checkpoint directory of a small GPT with a BPE tokenizer (1024 tokens) trained on the
    Python reference, ``<|endoftext|>`` between its topics (``instruct.reference_corpus``), with
    contexts of 256 tokens. Trained once and cached as ``small_trained_model`` is."""
    from tinyllm.data import cache_dir
    from tinyllm.instruct import reference_corpus
    corpus = cache_dir() / "lessons" / "python-reference.txt"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text(reference_corpus(), encoding="utf-8")
    steps = steps or (10 if FAST else 600)
    return trained_once(f"reference-bpe-{steps}", data=str(corpus), tokenizer="bpe", vocab_size=1024, n_layer=2,
                        block_size=256, batch_size=8, max_iters=steps, eval_interval=steps, eval_iters=5,
                        log_interval=max(1, steps // 4), warmup_iters=min(50, steps // 10))


def trained_once(name: str, **settings) -> Path:
    """The checkpoint directory of ``train(TrainConfig(**settings))``, trained once and cached
    under ``name`` and the code's version; trained again after a code change or a stopped run."""
    from tinyllm.checkpoint import checkpoint_path, load_checkpoint
    from tinyllm.data import cache_dir
    from tinyllm.train import TrainConfig, train
    out = cache_dir() / "lessons" / f"{name}-{code_version()}"
    done = checkpoint_path(out).is_file() and load_checkpoint(out, device="cpu")["step"] >= settings["max_iters"]
    if not done:
        print(f"training a small model for {settings['max_iters']} steps (once; it is cached in {out}) ...")
        train(TrainConfig(sample_tokens=0, out=str(out), device="cpu", **settings))
    return out


# Python's own source code: the new text lessons 14 and 19 fine-tune on (twenty modules), and
# the module held out to measure on code the model never trained on.
CODE_MODULES = ["string", "shlex", "fractions", "heapq", "bisect", "colorsys", "fnmatch", "glob", "calendar",
                "difflib", "statistics", "csv", "getopt", "gettext", "netrc", "pprint", "quopri", "sched",
                "tabnanny", "textwrap"]
HELD_OUT_MODULE = "random"


def source_code(module_name: str, tokenizer) -> str:
    """A standard-library module's source, keeping only the characters ``tokenizer`` knows."""
    import importlib
    import inspect
    return "".join(c for c in inspect.getsource(importlib.import_module(module_name)) if c in tokenizer.index)


def code_version() -> str:
    """A short hash of the tinyllm package's source code: which code a cached model was trained by."""
    import hashlib

    import tinyllm
    digest = hashlib.sha256()
    for path in sorted(Path(tinyllm.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
