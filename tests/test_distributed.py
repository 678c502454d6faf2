"""Data-parallel training on MPI: two ranks of batch b take the steps one process takes with 2b,
their weights stay equal, and what cannot work (another rank count, ranks that disagree, a rank
that dies) ends with a clear error. Skipped without mpi4py and mpiexec (pip install -e ".[dist]")."""
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinyllm.checkpoint import load_checkpoint

MPIEXEC = str(Path(sys.executable).parent / "mpiexec") if (Path(sys.executable).parent / "mpiexec").is_file() \
    else shutil.which("mpiexec")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
                                reason="needs mpi4py and mpiexec: pip install -e \".[dist]\"")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
STEPS = 8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ddp") / "corpus.txt"
    path.write_text("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n" * 300,
                    encoding="utf-8")
    return str(path)


def train_args(corpus: str, out: Path, batch_size: int, *more: str) -> list[str]:
    return ["-m", "tinyllm", "train", "--data", corpus, "--max-iters", str(STEPS), "--eval-interval", "4",
            "--eval-iters", "2", "--log-interval", "1", "--batch-size", str(batch_size), "--n-layer", "2",
            "--sample-tokens", "0", "--lr", "3e-3", "--warmup-iters", "2", "--out", str(out), *more]


def run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV)


def logged(stdout: str, what: str) -> list[float]:
    """Each log line's ``what`` ("loss", "grad norm")."""
    return [float(line.split(f"| {what} ")[1].split()[0]) for line in stdout.splitlines() if f"| {what} " in line]


def test_two_ranks_of_b_take_the_steps_one_process_takes_with_2b(corpus, tmp_path):
    one = run([sys.executable, *train_args(corpus, tmp_path / "one", 4)])
    two = run([MPIEXEC, "-n", "2", sys.executable, *train_args(corpus, tmp_path / "two", 2)])
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert "data parallel: 2 processes, 2 sequences each" in two.stdout
    assert two.stdout.count("| loss ") == STEPS                # rank 0 alone logs
    np.testing.assert_allclose(logged(two.stdout, "loss"), logged(one.stdout, "loss"), rtol=1e-5)
    # The gradient's norm is the mean gradient's (a sum over the ranks would be twice it; AdamW and
    # clipping would hide that in the weights); above 1, so clipping was at work.
    np.testing.assert_allclose(logged(two.stdout, "grad norm"), logged(one.stdout, "grad norm"), rtol=1e-4)
    assert min(logged(two.stdout, "grad norm")) > 1.0
    a, b = (load_checkpoint(tmp_path / name) for name in ("one", "two"))
    assert a["step"] == b["step"] == STEPS and b["meta"]["world_size"] == 2
    # Adam divides by √v: where a gradient is ~1e-8, float32's last bits can tip its step either way,
    # so the absolute tolerance is 1% of the learning rate.
    for name, weight in a["model"].state_dict().items():
        np.testing.assert_allclose(b["model"].state_dict()[name], weight, rtol=1e-4, atol=3e-5)


RANK_SCRIPT = """
import numpy as np
from tinyllm import optim
from tinyllm.checkpoint import weights_sha256
from tinyllm.data import TokenBatches
from tinyllm.distributed import RankBatches, world_from_environment
from tinyllm.model import GPT, GPTConfig
from tinyllm.train import train_step
world = world_from_environment()
model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.1))
batches = RankBatches(TokenBatches(np.arange(2000) % 11, block_size=8), world)
opt, rng = optim.AdamW(model.parameters(), lr=1e-2), np.random.default_rng(0)
for step in range(5):
    x, _ = batches.get_batch("train", 3, np.random.default_rng(step))
    rows = world.all_gather(x.tolist())
    assert rows[0] != rows[1], "the ranks drew the same rows"
    train_step(model, opt, batches, 3, rng, world=world)
    world.check_same_everywhere(f"the weights after step {step}", weights_sha256(model))
done = world.all_gather(f"rank {world.rank} ok")
if world.is_main:
    print(", ".join(done))
"""


def test_every_rank_holds_the_same_weights_after_every_step(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    result = run([MPIEXEC, "-n", "2", sys.executable, str(script)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "rank 0 ok, rank 1 ok"


THREADS_SCRIPT = """
from tinyllm.backend import cpu_threads
from tinyllm.distributed import world_from_environment
before = cpu_threads()
world = world_from_environment()
threads = world.all_gather((before, cpu_threads()))
if world.is_main:
    print(threads)
"""


@pytest.mark.skipif(__import__("tinyllm.backend").backend.cpu_threads() is None, reason="NumPy's BLAS is not OpenBLAS")
def test_ranks_started_by_hand_share_the_cores_unless_told_otherwise(tmp_path):
    """mpiexec -n 2 without OMP_NUM_THREADS: each rank's BLAS takes its share of the cores, not all
    of them (on 2 cores, a run 3.7 times faster: bench/RESULTS.md); a thread count given is kept."""
    script = tmp_path / "threads.py"
    script.write_text(THREADS_SCRIPT)
    unset = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                                 "MKL_NUM_THREADS")}
    share = max(1, min(len(os.sched_getaffinity(0)), os.cpu_count() // 2))
    for env, expected in ((unset, share), ({**unset, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}, 2)):
        result = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                                timeout=120, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert [after for before, after in eval(result.stdout)] == [expected, expected], result.stdout


def test_resuming_with_another_rank_count_is_refused_by_name(corpus, tmp_path):
    first = run([MPIEXEC, "-n", "2", sys.executable, *train_args(corpus, tmp_path / "run", 2)])
    assert first.returncode == 0, first.stderr[-2000:]
    more = ["--max-iters", str(STEPS + 4)]
    again = run([sys.executable, *train_args(corpus, tmp_path / "run", 2), "--resume", *more])
    assert again.returncode == 2
    assert "was written by a run of 2 process(es); resume it with as many (this run has 1)" in again.stderr
    resumed = run([sys.executable, *train_args(corpus, tmp_path / "run", 2), "--resume", *more, "--nproc", "2"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert load_checkpoint(tmp_path / "run")["step"] == STEPS + 4      # --nproc 2 started the two ranks
    assert resumed.stdout.count("| loss ") == 4                         # and rank 0 alone logged


def test_ranks_started_with_different_settings_are_refused(corpus, tmp_path):
    a = train_args(corpus, tmp_path / "run", 2, "--seed", "1")
    b = train_args(corpus, tmp_path / "run", 2, "--seed", "2")
    result = run([MPIEXEC, "-n", "1", sys.executable, *a, ":", "-n", "1", sys.executable, *b])
    assert result.returncode != 0
    assert "the ranks disagree on the training config: rank 1 differs from rank 0" in result.stderr


GPU_RANK_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import numpy as np
import pytest
from cuda_on_host import pretend_cupy, pretend_nccl, used_gpu
from tinyllm import optim
from tinyllm.checkpoint import weights_sha256
from tinyllm.data import TokenBatches
from tinyllm.distributed import MPIWorld, NCCLWorld, RankBatches, world_from_environment
from tinyllm.model import GPT, GPTConfig
from tinyllm.train import train_step

def gradients(world):
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)).to("cuda")
    batches = RankBatches(TokenBatches(np.arange(2000) % 11, block_size=8, device="cuda"), world)
    model(*batches.get_batch("train", 3, np.random.default_rng(0)))[1].backward()
    return model, [p.grad.data.view(np.ndarray).copy() for p in model.parameters()], batches

monkeypatch = pytest.MonkeyPatch()
host_reads = pretend_cupy(monkeypatch)
# Two GPUs, NCCL: rank r on GPU r; one all-reduce, in place, on the device; the mean of the ranks' gradients.
nccl_calls = pretend_nccl(monkeypatch, gpus=2)
world = world_from_environment("cuda")
assert isinstance(world, NCCLWorld) and used_gpu == [world.rank], used_gpu
model, mine, batches = gradients(world)
everyone = world.all_gather(mine)
host_reads.clear()
world.average_gradients(model.parameters())
assert host_reads == [], host_reads
assert nccl_calls == [(sum(g.size for g in mine), 7, 0, True)], nccl_calls
for p, *each in zip(model.parameters(), *everyone):
    np.testing.assert_allclose(p.grad.data.view(np.ndarray), np.mean(each, axis=0), rtol=1e-6, atol=1e-9)
opt = optim.AdamW(model.parameters(), lr=1e-2)
for step in range(3):
    train_step(model, opt, batches, 3, np.random.default_rng(step), world=world)
    world.check_same_everywhere(f"the weights after step {{step}}", weights_sha256(model))
assert len(nccl_calls) == 4

# One GPU: NCCL refuses two ranks by name; through the host, both share GPU 0.
pretend_nccl(monkeypatch, gpus=1)
try:
    world_from_environment("cuda")
    raise AssertionError("two ranks on one GPU were not refused")
except ValueError as e:
    assert "2 processes on this machine but 1 GPU(s): NCCL needs a GPU for each process" in str(e), e
world = world_from_environment("cuda", "mpi")
assert type(world) is MPIWorld and used_gpu == [0], used_gpu
model, mine, _ = gradients(world)
everyone = world.all_gather(mine)
host_reads.clear()
world.average_gradients(model.parameters())
assert host_reads == ["get"], host_reads            # one copy to the host, all gradients at once
for p, *each in zip(model.parameters(), *everyone):
    np.testing.assert_allclose(p.grad.data.view(np.ndarray), np.mean(each, axis=0), rtol=1e-6, atol=1e-9)
done = world.all_gather(f"rank {{world.rank}} ok")
if world.is_main:
    print(", ".join(done))
"""


def test_gradients_on_gpus_are_summed_by_nccl_on_the_device(tmp_path):
    """On pretended GPUs (tests/cuda_on_host.py): each rank takes its own GPU, NCCL is handed the
    flat gradient buffer in place, the host never reads it, and the ranks' weights stay equal; with
    more ranks than GPUs NCCL is refused by name, and the host path shares the GPU."""
    script = tmp_path / "gpu_ranks.py"
    script.write_text(GPU_RANK_SCRIPT.format(tests=str(Path(__file__).parent)))
    result = run([MPIEXEC, "-n", "2", sys.executable, str(script)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "rank 0 ok, rank 1 ok"


def test_nproc_with_more_processes_than_gpus_is_refused_before_any_starts(monkeypatch, capsys, corpus, tmp_path):
    from cuda_on_host import pretend_cupy
    import tinyllm.distributed
    from tinyllm.cli import main
    pretend_cupy(monkeypatch)                                    # a machine with one (pretended) GPU
    started = []
    monkeypatch.setattr(tinyllm.distributed, "launch", lambda nproc, argv: started.append(nproc) or 0)
    args = train_args(corpus, tmp_path / "run", 2, "--device", "cuda", "--nproc", "2")[2:]   # without -m tinyllm
    assert main(args) == 2 and started == []
    assert "2 processes on this machine but 1 GPU(s): NCCL needs a GPU for each process" in capsys.readouterr().err
    assert main(args + ["--all-reduce", "mpi"]) == 0 and started == [2]   # sharing the GPU through the host: started


def test_nccl_is_refused_off_the_gpu_and_unknown_ways_by_name():
    from tinyllm.distributed import world_from_environment
    with pytest.raises(ValueError, match="--all-reduce nccl sums gradients in GPU memory: use it with --device cuda"):
        world_from_environment("cpu", "nccl")
    with pytest.raises(ValueError, match="unknown --all-reduce 'gloo'; expected one of"):
        world_from_environment("cpu", "gloo")


FULL_DISK_SCRIPT = """
import sys
import tinyllm.train

def full_disk(*args, **kwargs):
    raise OSError(28, "No space left on device")
tinyllm.train.save_checkpoint = full_disk             # rank 0 alone writes checkpoints: it alone fails
from tinyllm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_rank_that_fails_alone_ends_the_job_instead_of_leaving_the_others_waiting(corpus, tmp_path):
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK_SCRIPT)
    began = time.time()
    result = run([MPIEXEC, "-n", "2", sys.executable, str(script), *train_args(corpus, tmp_path / "run", 2)[2:]],
                 timeout=120)                            # (before: rank 1 waited at its next all-reduce, forever)
    assert result.returncode != 0 and time.time() - began < 100
    assert "tinyllm: error: [Errno 28] No space left on device" in result.stderr
    assert "tinyllm: rank 0 of 2 stopped, so the job ends" in result.stderr


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the ranks' processes through /proc")
def test_a_rank_killed_mid_run_ends_the_job_and_the_checkpoint_survives(corpus, tmp_path):
    out = tmp_path / "killed"
    args = train_args(corpus, out, 2)
    args[args.index("--max-iters") + 1] = "100000"
    job = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, *args], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=ENV)
    deadline = time.time() + 120
    while not (out / "ckpt.npz").is_file() and time.time() < deadline:
        if job.poll() is not None:
            pytest.fail("the job ended before its first checkpoint:\n" + job.communicate()[0][-3000:])
        time.sleep(0.2)
    ranks = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _is_rank(p, str(out))]
    assert len(ranks) == 2, ranks
    os.kill(max(ranks), signal.SIGKILL)
    output, _ = job.communicate(timeout=120)
    assert job.returncode != 0
    assert "BAD TERMINATION" in output or "KILLED" in output.upper(), output[-2000:]
    assert load_checkpoint(out)["step"] % 4 == 0             # the last checkpoint, whole


def _is_rank(proc: Path, out: str) -> bool:
    try:
        words = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return Path(words[0].decode()).name.startswith("python") and out.encode() in words
