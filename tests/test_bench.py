"""The benchmark scripts run, at their smallest sizes, and print their tables.

This times nothing (bench/RESULTS.md holds the measurements): it keeps the scripts
from breaking between the sessions that run them for real.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_MPI = importlib.util.find_spec("mpi4py") is not None


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "corpus.txt"
    path.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 300,
                    encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("script, args, header", [
    ("ops.py", ["--rows", "64", "--width", "32", "--repeats", "1"], "ratio"),
    ("generate.py", ["--preset", "baby", "--tokens", "2"], "context"),
    ("train_step.py", ["--steps", "1", "--presets", "baby"] + ([] if HAS_TORCH else ["--no-torch"]), "tokens/s"),
    ("train_step.py", ["--steps", "1", "--presets", "baby", "--profile"], "backward"),
    ("lora.py", ["--preset", "baby", "--context", "64", "--steps", "1", "--quality-steps", "0"], "LoRA / full"),
    ("quantize.py", ["--tokenizers", "char", "--steps", "3", "--preset", "baby", "--context", "16", "--gpt2",
                     str(BENCH.parent / "tests" / "data" / "tiny_gpt2"), "--gpt2-tokens", "200"], "gpt2"),
    ("compress.py", ["--ckpt", str(BENCH.parent / "tests" / "data" / "tiny_gpt2"), "--max-bytes", "300"],
     "xz -9e"),
    pytest.param("ddp.py", ["--steps", "1", "--batch", "2"], "all-reduce",
                 marks=pytest.mark.skipif(not HAS_MPI, reason="needs mpi4py: pip install -e '.[dist]'")),
])
def test_a_bench_script_prints_its_table(script, args, header):
    result = run_bench(script, *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert header in result.stdout and "---" in result.stdout   # print_table's rule under the header


def test_the_bpe_bench_trains_and_encodes(small_corpus):
    result = run_bench("bpe.py", "--data", small_corpus, "--vocab-size", "280")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "tinyllm" in result.stdout and "train time ratio" in result.stdout


@pytest.mark.skipif(not HAS_TORCH, reason="bench/recipe.py runs nanoGPT's loop in PyTorch beside tinyllm")
def test_the_recipe_bench_runs_both_loops_in_lockstep(small_corpus):
    result = run_bench("recipe.py", "--steps", "10", "--segment", "10", "--data", small_corpus)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pytorch (nanoGPT loop)" in result.stdout and "tinyllm train" in result.stdout
    assert "median ratio over 1 round(s)" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed: the bench would run")
def test_the_gpu_bench_without_cupy_says_so_in_one_line():
    result = run_bench("gpu.py", "--steps", "1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("bench/gpu.py: device 'cuda' needs CuPy, which is not installed: "
                                     "pip install cupy-cuda12x (CUDA 12) or cupy-cuda13x (CUDA 13)")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed: the parts would run")
def test_the_gpu_session_script_runs_its_parts_and_sums_them_up(tmp_path):
    """bench/gpu_session.sh, the script for a lent GPU machine: here each part fails for want of
    CuPy, and the summary says so part by part; an unknown part is refused before any runs."""
    env = {**os.environ, "OUT": str(tmp_path)}
    result = subprocess.run(["bash", str(BENCH / "gpu_session.sh"), "ddp", "gpu"], capture_output=True, text=True,
                            timeout=120, env=env, cwd=BENCH.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = (tmp_path / "summary.txt").read_text().splitlines()
    assert [line.split()[:2] for line in summary] == [["ddp", "rc=1"], ["gpu", "rc=2"]], summary
    assert "needs CuPy" in summary[0] and "needs CuPy" in summary[1]
    unknown = subprocess.run(["bash", str(BENCH / "gpu_session.sh"), "everything"], capture_output=True, text=True,
                             timeout=120, env=env, cwd=BENCH.parent)
    assert unknown.returncode == 2 and "unknown part everything (devices, ddp, gpu, repro)" in unknown.stdout
