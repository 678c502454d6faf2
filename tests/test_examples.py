"""Every example runs end to end in its fast mode (TINYLLM_FAST=1), as a learner would run it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "TINYLLM_FAST": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def shakespeare_run(tmp_path_factory):
    """shakespeare_char.py on the shared corpus, or on a small stand-in when ../shared is absent."""
    work = tmp_path_factory.mktemp("examples")
    corpus = SHARED_DATA / "tinyshakespeare.txt"
    if not corpus.is_file():
        corpus = work / "verse.txt"
        corpus.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n\n" * 100)
    out = run_example("shakespeare_char.py", str(corpus), "--out", "ckpt", cwd=work)
    return work, out


def test_shakespeare_char(shakespeare_run):
    work, out = shakespeare_run
    assert "step    10 | eval" in out and "machine Shakespeare" in out
    assert (work / "ckpt" / "ckpt.npz").is_file() and (work / "ckpt" / "loss.png").is_file()


def test_next_token_and_dream_read_the_checkpoint(shakespeare_run):
    work, _ = shakespeare_run
    tables = run_example("next_token.py", "--ckpt", "ckpt", "--steps", "2", "First Ci", cwd=work)
    assert [line for line in tables.splitlines() if line.startswith("after")] == [
        "after 'First ':", "after 'First C':", "after 'First Ci':"]
    dreams = run_example("dream.py", "--ckpt", "ckpt", "--temperatures", "0.5", "1.0", cwd=work)
    assert dreams.count("==== temperature") == 2 and "bits per token" in dreams


def test_attention_draws_every_head_and_names_where_the_last_token_looks(shakespeare_run):
    work, _ = shakespeare_run
    out = run_example("attention.py", "--ckpt", "ckpt", "--out", "att.png", "First Citizen", cwd=work)
    assert "wrote att.png: 4 layers x 4 heads, 13 tokens" in out
    assert (work / "att.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line for line in out.splitlines() if line.startswith("  layer ")]
    assert len(rows) == 4 and all(row.count("%") == 4 for row in rows)  # one token and weight per head


def test_pydoc_bpe(tmp_path):
    out = run_example("pydoc_bpe.py", cwd=tmp_path)
    assert "the first merges:" in out and "continuing the prompt" in out
    assert (tmp_path / "out" / "pydoc_bpe" / "tokenizer.json").is_file()


def test_every_example_is_tested():
    tested = {"shakespeare_char.py", "next_token.py", "dream.py", "pydoc_bpe.py", "attention.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_the_readme_python_example_runs_and_does_what_it_says():
    import math
    import re
    readme = (EXAMPLES.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) == 1, "the README's Python example moved: update this test"
    names: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), names)
    assert names["logits"].shape == (12, 64, 65)                  # its comments' claims
    assert abs(names["loss"].item() - math.log(65)) < 0.15         # ln(65) ≈ 4.17 at init
    assert all(p.grad is not None for p in names["model"].parameters()) and names["opt"].steps == 1
