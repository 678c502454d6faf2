"""Every lesson runs end to end in its fast mode (TINYLLM_FAST=1), as a learner would run it,
and draws the figures lessons/README.md promises for it.

Each runs as a notebook runs it: in the lessons folder, all its cells in one namespace that
has no ``__file__``. (A lesson that runs so also runs as ``python lessons/NN_name.py``.)"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA

TINY_GPT2 = Path(__file__).resolve().parent / "data" / "tiny_gpt2"   # a whole GPT-2 folder, small enough to ship
LESSONS = sorted((Path(__file__).resolve().parents[1] / "lessons").glob("[0-9][0-9]_*.py"))
AS_A_NOTEBOOK = ("import sys; path = sys.argv[1]; "
                 "exec(compile(open(path, encoding='utf-8').read(), path, 'exec'), {'__name__': '__main__'})")


def run_lesson(lesson: Path, figures: Path, timeout: int = 300, **env) -> subprocess.CompletedProcess:
    """Run ``lesson`` in fast mode as a notebook would, its figures going to ``figures``; ``env``
    adds to the environment (PYTHONPATH, to run a learner's copy)."""
    env = {**os.environ, "TINYLLM_FAST": "1", "TINYLLM_FIGURES": str(figures), "MPLBACKEND": "Agg", **env}
    if (SHARED_DATA / "gpt2").is_dir():  # GPT-2's tokenizer files, for lesson 05
        env["TINYLLM_GPT2"] = str(SHARED_DATA / "gpt2")
    if lesson.name.startswith(("13", "20")):   # their cells for OpenAI's weights run on a tiny GPT-2 of its layout
        env["TINYLLM_GPT2"] = str(TINY_GPT2)
    return subprocess.run([sys.executable, "-c", AS_A_NOTEBOOK, str(lesson)], cwd=lesson.parent, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs(lesson, tmp_path):
    result = run_lesson(lesson, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    if lesson.name.startswith("05") and (SHARED_DATA / "gpt2").is_dir():
        assert "Hello world -> [15496, 995]" in result.stdout
    if lesson.name.startswith("13"):
        assert "after 'The cat sat on a' GPT-2 expects:" in result.stdout, result.stdout[-2000:]
    if lesson.name.startswith("20"):
        assert result.stdout.count("GPT-2, ") == 4, result.stdout[-2000:]
    row = next(line for line in (lesson.parent / "README.md").read_text().splitlines() if f"`{lesson.name}`" in line)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(re.findall(r"`(\d\d_\w+\.png)`", row))


def test_the_lessons_are_numbered_in_order_and_listed_in_the_readme():
    assert [p.name[:2] for p in LESSONS] == [f"{i:02d}" for i in range(1, len(LESSONS) + 1)]
    readme = (LESSONS[0].parent / "README.md").read_text()
    assert all(f"`{p.name}`" in readme for p in LESSONS)


def test_the_lessons_model_is_trained_again_after_a_stopped_run_or_a_code_change(tmp_path, monkeypatch, capsys):
    from tinyllm.checkpoint import load_checkpoint, save_checkpoint
    monkeypatch.setenv("TINYLLM_CACHE", str(tmp_path))
    monkeypatch.syspath_prepend(str(LESSONS[0].parent))
    import shared

    def trained() -> bool:   # did this call train a model, or take the cached one?
        shared.small_trained_model(steps=3)
        return "training a small model" in capsys.readouterr().out

    assert trained() and not trained()
    (out,) = (tmp_path / "lessons").iterdir()
    ckpt = load_checkpoint(out)
    save_checkpoint(out, ckpt["model"], None, ckpt["tokenizer"], step=0)   # what a run stopped early leaves
    assert trained() and not trained()
    monkeypatch.setattr(shared, "code_version", lambda: "other code")     # an exercise solved, or fixed
    assert trained()
