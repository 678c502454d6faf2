"""Data parallel training: N processes, each on its share of every batch, their gradients averaged.

    mpiexec -n 2 tinyllm train ...        # or: tinyllm train --nproc 2 ...

Every process (a *rank*, 0 to N-1) holds the whole model. Each step, the batch of N·B
sequences is drawn the same way on every rank (the same random stream), and rank r takes
rows r·B to (r+1)·B: disjoint shares, and together exactly the batch one process would
draw with N·B. Each rank runs forward and backward on its share; then one *all-reduce*
sums the gradients across the ranks, and each divides by N. The mean of the ranks' mean
gradients is the gradient of the mean loss over all N·B sequences, so every rank takes
the very step one process would take with the whole batch, and the weights stay equal
everywhere. Rank 0 logs and writes checkpoints; evaluation is shared the same way. A rank
that fails ends the job (cli.py): the others would wait at their next all-reduce forever.

Each process's BLAS gets its share of the machine's cores (``--nproc`` sets OMP_NUM_THREADS; under
a hand-started mpiexec the rank sets its BLAS's threads itself, unless OMP_NUM_THREADS is set), so
that N processes do not each start a thread per core.

The processes are started, and their small messages carried, by MPI (mpi4py;
``pip install -e ".[dist]"`` brings it and an MPI library, no system MPI needed). The gradients
travel one of two ways (``--all-reduce``):

- ``mpi``: through the host. The CPU's way; on GPUs it copies each step's gradients to the host
  and back, but lets several processes share one GPU (for testing on a machine with one).
- ``nccl``: NVIDIA's collective library, through CuPy, from GPU memory to GPU memory (over
  NVLink where the GPUs have it). One GPU per process, chosen by the process's rank on its
  machine. The default with ``--device cuda``.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from .backend import THREAD_VARIABLES, array_module, device_of, set_cpu_threads, to_device, to_numpy, xp_for

# The variables each MPI launcher sets to tell a process how many ranks the job has.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")   # MPICH and Intel MPI; Open MPI
ALL_REDUCES = ("mpi", "nccl")


class World:
    """A single process: rank 0 of 1, where every collective operation has nothing to do."""
    rank, size = 0, 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs and writes."""
        return self.rank == 0

    def all_reduce_sum(self, array: np.ndarray) -> None:
        """Replace ``array`` (on the host) by the sum of every rank's, in place."""

    def all_gather(self, value) -> list:
        """Every rank's ``value`` (small, picklable), in rank order."""
        return [value]

    def mean(self, value: float) -> float:
        """The mean of a number over the ranks."""
        total = np.array([value], np.float64)
        self.all_reduce_sum(total)
        return float(total[0]) / self.size

    def sum_flat(self, flat):
        """The sum of every rank's ``flat`` (a 1-D array on any device), in ``flat``'s place when it can:
        here, through the host."""
        host = to_numpy(flat)                   # on a GPU, a copy to the host; on the CPU, flat itself
        self.all_reduce_sum(host)
        return to_device(host, device_of(flat))

    def average_gradients(self, params) -> None:
        """Every gradient replaced by its mean over the ranks: one all-reduce over one flat buffer.
        Each .grad becomes a view of that buffer (no .grad is changed in place: see tensor.py)."""
        if self.size == 1:
            return
        params = [p for p in params if p.grad is not None]
        xp = array_module(params[0].grad.data)
        flat = xp.concatenate([p.grad.data.reshape(-1) for p in params])  # a new array, on their device
        flat = self.sum_flat(flat)
        flat /= self.size
        start = 0
        for p in params:
            p.grad.data = flat[start:start + p.grad.size].reshape(p.grad.shape)
            start += p.grad.size

    def check_same_everywhere(self, what: str, value: str) -> None:
        """Refuse to go on, on every rank, when ``value`` is not the same on all of them."""
        digests = self.all_gather(hashlib.sha256(value.encode("utf-8")).hexdigest())
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        if differ:
            ranks = f"ranks {', '.join(map(str, differ))} differ" if len(differ) > 1 else f"rank {differ[0]} differs"
            raise ValueError(f"the ranks disagree on {what}: {ranks} from rank 0 (start every rank with the "
                             "same command, files and code)")


SINGLE_PROCESS = World()


class MPIWorld(World):
    """The ranks of an MPI job (``mpiexec -n N``), through mpi4py."""

    def __init__(self):
        from mpi4py import MPI
        self.MPI, self.comm = MPI, MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        here = self.comm.Split_type(MPI.COMM_TYPE_SHARED)         # the ranks on this machine
        self.local_rank, self.local_size = here.Get_rank(), here.Get_size()
        here.Free()
        if not any(os.environ.get(name) for name in THREAD_VARIABLES):
            # Started by hand (mpiexec -n N): each rank's BLAS would take every core, N times over.
            set_cpu_threads(cores_per_rank(self.local_size))

    def all_reduce_sum(self, array: np.ndarray) -> None:
        self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)

    def all_gather(self, value) -> list:
        return self.comm.allgather(value)

    def use_a_gpu(self, one_each: bool) -> None:
        """Make this rank's GPU the current one (``gpu_for`` its rank among this machine's)."""
        xp_for("cuda").cuda.Device(gpu_for(self.local_rank, self.local_size, one_each)).use()


class NCCLWorld(MPIWorld):
    """The ranks of an MPI job on GPUs, one each, whose gradients NCCL sums on the GPUs.
    MPI still starts the ranks and carries the small messages (losses, checks)."""

    def __init__(self):
        super().__init__()
        self.use_a_gpu(one_each=True)
        self.cupy = xp_for("cuda")
        self.nccl = importlib.import_module("cupy.cuda.nccl")
        if not getattr(self.nccl, "available", True):
            raise RuntimeError("--all-reduce nccl: CuPy finds no NCCL library (install it where CuPy looks: "
                               "CuPy's installation guide, \"Additional CUDA Libraries\"), or use --all-reduce mpi")
        # NCCL's ranks find each other through an id made on one rank and sent to the others.
        unique_id = self.comm.bcast(self.nccl.get_unique_id() if self.rank == 0 else None, root=0)
        self.communicator = self.nccl.NcclCommunicator(self.size, unique_id, self.rank)
        self.nccl_types = {np.dtype(np.float32): self.nccl.NCCL_FLOAT32, np.dtype(np.float64): self.nccl.NCCL_FLOAT64,
                           np.dtype(np.float16): self.nccl.NCCL_FLOAT16}

    def sum_flat(self, flat):
        """In place, on the GPU: NCCL reads and writes device memory, in order with this rank's
        other work (the current stream), and the host never waits."""
        self.communicator.allReduce(flat.data.ptr, flat.data.ptr, flat.size, self.nccl_types[flat.dtype],
                                    self.nccl.NCCL_SUM, self.cupy.cuda.get_current_stream().ptr)
        return flat


def gpu_for(local_rank: int, local_size: int, one_each: bool) -> int:
    """The GPU of rank ``local_rank`` of the ``local_size`` on this machine: they take its GPUs in
    turn. ``one_each`` (NCCL's need): refuse more ranks than GPUs, else let them share."""
    gpus = xp_for("cuda").cuda.runtime.getDeviceCount()
    if one_each and local_size > gpus:
        raise ValueError(f"{local_size} processes on this machine but {gpus} GPU(s): NCCL needs a GPU for "
                         f"each process; start at most {gpus}, or share GPUs through the host with "
                         "--all-reduce mpi (for testing: slower)")
    return local_rank % gpus


def cores_per_rank(ranks_here: int) -> int:
    """BLAS threads for each of ``ranks_here`` ranks on this machine: its cores shared among them,
    and no more than this process may run on (a launcher may have bound it to fewer)."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(allowed, (os.cpu_count() or 1) // ranks_here))


def launched_size() -> int:
    """How many ranks the launcher that started this process says the job has (1: not launched so)."""
    for name in SIZE_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def all_reduce_for(device: str, all_reduce: str | None = None) -> str:
    """How gradients travel on ``device``: ``all_reduce`` ("mpi" or "nccl") checked, or by default
    "nccl" on GPUs and "mpi" elsewhere."""
    all_reduce = all_reduce or ("nccl" if device == "cuda" else "mpi")
    if all_reduce not in ALL_REDUCES:
        raise ValueError(f"unknown --all-reduce {all_reduce!r}; expected one of {ALL_REDUCES}")
    if all_reduce == "nccl" and device != "cuda":
        raise ValueError("--all-reduce nccl sums gradients in GPU memory: use it with --device cuda")
    return all_reduce


def world_from_environment(device: str = "cpu", all_reduce: str | None = None) -> World:
    """The processes ``mpiexec`` started when it started several, else this single process.
    ``all_reduce``: how gradients travel (``all_reduce_for``)."""
    all_reduce = all_reduce_for(device, all_reduce)
    if launched_size() <= 1:
        return World()
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        raise RuntimeError("this process is one of several started by mpiexec, but mpi4py is not installed: "
                           "pip install -e \".[dist]\" (mpi4py, with an MPI library)") from None
    if all_reduce == "nccl":
        return NCCLWorld()
    world = MPIWorld()
    if device == "cuda":
        world.use_a_gpu(one_each=False)
    return world


class RankBatches:
    """``batches`` shared among the ranks: each draws the batch of ``size`` shares the same way
    (the same random stream on every rank) and keeps its own rows."""

    def __init__(self, batches, world: World):
        self.batches, self.world = batches, world

    def get_batch(self, split: str, batch_size: int, rng: np.random.Generator):
        x, y = self.batches.get_batch(split, batch_size * self.world.size, rng)
        mine = slice(self.world.rank * batch_size, (self.world.rank + 1) * batch_size)
        return x[mine], y[mine]

    def __getattr__(self, name):       # everything else (splits, lengths, ...) is the batches' own
        return getattr(self.batches, name)


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``tinyllm ARGV`` as ``nproc`` ranks under mpiexec (``tinyllm train --nproc N``), each
    with its share of the cores for its BLAS threads; returns the job's exit status."""
    beside_python = Path(sys.executable).parent / "mpiexec"      # a virtual environment's, from the mpich wheel
    mpiexec = str(beside_python) if beside_python.is_file() else shutil.which("mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpiexec = None
    if mpiexec is None:
        raise RuntimeError("--nproc needs mpi4py and mpiexec: pip install -e \".[dist]\" (mpi4py and MPICH, "
                           "no system MPI needed)")
    env = {**os.environ, **{name: str(cores_per_rank(nproc)) for name in THREAD_VARIABLES}}
    return subprocess.run([mpiexec, "-n", str(nproc), sys.executable, "-m", "tinyllm", *argv], env=env).returncode
