"""The backend seam: which array library holds the numbers, and on which device.

tinyllm does all of its arithmetic through an *array module* called ``xp``:
``numpy`` on the CPU, or ``cupy`` on an NVIDIA GPU. CuPy copies NumPy's API,
so the same line ``xp.exp(x - x.max())`` runs on either. There is no global
switch: every op asks its inputs which module they live in (``array_module``),
so a tensor never changes device behind your back.

CuPy is imported lazily, only when someone asks for the ``"cuda"`` device.
"""
from __future__ import annotations

import os
from functools import lru_cache
from types import ModuleType

import numpy as np

DEVICES = ("cpu", "cuda")
DEVICE_HELP = "cpu or cuda (cuda needs CuPy: see the README); the default is TINYLLM_DEVICE when set"


def _keep_freed_memory() -> None:
    """Ask glibc's malloc to keep large freed blocks instead of handing them back to the OS.

    Every NumPy temporary is a fresh buffer. By default glibc serves big ones with
    mmap and returns them on free, so the next temporary of the same size costs a
    page fault, and a page zeroed by the kernel, per 4 KiB: for a (768, 512) float32
    array that made GELU's backward 8x slower than its arithmetic. With the two
    thresholds raised, freed buffers are reused at once (PyTorch keeps its own cache
    of blocks for the same reason). Peak memory is unchanged; memory is simply not
    returned to the OS until the process ends. Elsewhere than Linux/glibc: nothing.
    """
    import ctypes
    import sys
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl or another libc
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # blocks up to 32 MiB (glibc's limit) come from the heap,
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)   # and up to 1 GiB of freed heap is kept for reuse


_keep_freed_memory()


def _import_cupy() -> ModuleType:
    try:
        import cupy
    except ImportError as e:
        raise RuntimeError(
            "device 'cuda' needs CuPy, which is not installed: "
            "pip install cupy-cuda12x (CUDA 12) or cupy-cuda13x (CUDA 13)"
        ) from e
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CuPy is there but no driver or no GPU
        raise RuntimeError(f"device 'cuda' asked for, but CuPy finds no usable GPU: {e}") from e
    return cupy


def check_device(device: str) -> str:
    """Return ``device`` if it is a known device name, else raise a clear error."""
    if device not in DEVICES:
        named_by = " (named by the environment variable TINYLLM_DEVICE)" \
            if device == os.environ.get("TINYLLM_DEVICE") else ""
        raise ValueError(f"unknown device {device!r}{named_by}; expected one of {DEVICES}")
    return device


def default_device() -> str:
    """The device named by the environment variable ``TINYLLM_DEVICE``, else ``"cpu"``.

    It is the default of every command's ``--device``, of ``TrainConfig.device`` and of
    ``load_checkpoint``. Tensors and models are made where their data is (the CPU) and
    move with ``.to(device)``."""
    return check_device(os.environ.get("TINYLLM_DEVICE") or "cpu")  # set but empty: unset


def xp_for(device: str) -> ModuleType:
    """The array module for a device name: numpy for "cpu", cupy for "cuda"."""
    return _import_cupy() if check_device(device) == "cuda" else np


def is_cupy_array(array) -> bool:
    """Whether ``array`` is a CuPy array (on the GPU)."""
    # Looking at the type's module avoids importing CuPy just to ask.
    return type(array).__module__.startswith("cupy")


def array_module(array) -> ModuleType:
    """The array module (numpy or cupy) that owns ``array``."""
    if is_cupy_array(array):
        import cupy
        return cupy
    return np


def device_of(array) -> str:
    """The device name of an array: "cuda" for CuPy arrays, "cpu" otherwise."""
    return "cuda" if is_cupy_array(array) else "cpu"


def to_device(array, device: str):
    """Move an array to ``device``; returns the same array when it is already there."""
    if device_of(array) == check_device(device):
        return array
    if device == "cuda":
        return xp_for("cuda").asarray(array)
    return array.get()  # CuPy -> NumPy copies device memory to the host


def to_numpy(array) -> np.ndarray:
    """A NumPy array on the host, whatever device ``array`` lives on."""
    return to_device(array, "cpu") if is_cupy_array(array) else np.asarray(array)


def set_tf32(enabled: bool) -> None:
    """Let float32 matrix products on the GPU run on TF32 tensor cores (Ampere and later).

    TF32 rounds each input of a product to a 10-bit mantissa (about 3 decimal digits)
    and accumulates in float32: several times the GEMM speed, at a relative error near
    1e-3 per product instead of 1e-6 (the sums done as products, ``row_sums`` and
    ``column_sums``, may round alike). Training usually cannot tell the difference;
    a gradient check can. Elementwise work and the CPU are unaffected.
    """
    xp_for("cuda")  # a clear error if CuPy or the GPU is missing
    from cupy._core import _routines_linalg as linalg  # CuPy's own switch (as CUPY_TF32=1 sets it)
    linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")   # read as BLAS loads
# OpenBLAS's setters and getters, as NumPy's own wheels name them (scipy-openblas, 64-bit ints) and as others do.
_BLAS_THREADS = (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                 ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                 ("openblas_set_num_threads", "openblas_get_num_threads"))


def _openblas():
    """NumPy's OpenBLAS as ctypes functions (set, get) of its thread count, or None where it cannot be
    found (another BLAS, or not Linux: then only THREAD_VARIABLES, set before starting, count)."""
    import ctypes
    import re
    try:
        with open("/proc/self/maps") as maps:             # the shared libraries this process has loaded
            paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", maps.read())))
    except OSError:
        return None
    for path in paths:
        try:
            library = ctypes.CDLL(path)                   # loaded already: this only finds it
        except OSError:                                   # (a file replaced since it was loaded)
            continue
        for setter, getter in _BLAS_THREADS:
            if hasattr(library, setter) and hasattr(library, getter):
                return getattr(library, setter), getattr(library, getter)
    return None


def cpu_threads() -> int | None:
    """How many threads NumPy's BLAS uses for a matrix product (None: its library is not OpenBLAS)."""
    blas = _openblas()
    return None if blas is None else blas[1]()


def set_cpu_threads(n: int) -> bool:
    """Have NumPy's BLAS use ``n`` threads from now on, as OMP_NUM_THREADS would have at start:
    for processes that share the cores (distributed.py). Returns whether it could."""
    blas = _openblas()
    if blas is not None:
        blas[0](int(n))
    return blas is not None


def scatter_add(target, index, values) -> None:
    """``target[index] += values`` where repeated indices add up (unbuffered, in place).

    Plain ``target[index] += values`` would keep only one write per repeated
    index; the gradient of a gather needs every contribution summed.
    """
    xp = array_module(target)
    if xp is np and isinstance(index, np.ndarray) and index.dtype.kind in "iu" and index.size:
        # Rows picked by one integer array (the embedding's backward). np.add.at adds one
        # row at a time; 3-4x faster: sort the ids so equal ones sit side by side, then
        # sum each run of equal ids with one reduceat and add the sums in a single write.
        ids = index.reshape(-1) % target.shape[0]                  # -1 and n-1 are the same row
        rows = values.reshape(len(ids), *target.shape[1:])
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])  # where each run of one id begins
        target[ids[starts]] += np.add.reduceat(rows[order], starts, axis=0)
        return
    xp.add.at(target, index, values)  # the general case; NumPy and CuPy spell it the same


# ---------------------------------------------------------------------------
# Sums as matrix-vector products. Picture an array (..., C) as a matrix with one
# row per position (every leading axis folded into rows). Summing its rows or its
# columns is a product with a vector of ones, and BLAS does that product 2-5x
# faster than NumPy's own sum over short rows; on a GPU a column-wise sum is one of
# CuPy's slowest kernels (20% of a training step) while the product is not.
# ---------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _ones(xp: ModuleType, n: int, dtype):
    """A vector of n ones, made once and kept (on a GPU every new one costs a kernel launch)."""
    ones = xp.ones(n, dtype=dtype)
    if xp is np:
        ones.flags.writeable = False  # shared by every caller: nobody may change it
    return ones


def sum_dtype(dtype) -> np.dtype:
    """The dtype sums over numbers of ``dtype`` are made in: float32 for 16-bit ones (a sum of a
    thousand float16 terms would keep about one digit), else ``dtype`` itself."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.itemsize < 4 else dtype


def row_sums(a):
    """Σ over the last axis, kept as size 1: (..., C) -> (..., 1), as (N, C) @ ones(C)."""
    C = a.shape[-1]
    return (a.reshape(-1, C) @ _ones(array_module(a), C, a.dtype)).reshape(*a.shape[:-1], 1)


def column_sums(a):
    """Σ over every axis but the last: (..., C) -> (C,), as ones(N) @ (N, C)."""
    C = a.shape[-1]
    rows = a.reshape(-1, C)
    return _ones(array_module(a), rows.shape[0], a.dtype) @ rows


# ---------------------------------------------------------------------------
# Random numbers: one generator per array module, seeded by ``manual_seed``
# (as ``torch.manual_seed``), so dropout and initialisation are repeatable.
# ---------------------------------------------------------------------------
_seed = 0
_generators: dict[str, object] = {}


def manual_seed(seed: int) -> None:
    """Reseed tinyllm's random generators on every device."""
    global _seed
    _seed = int(seed)
    _generators.clear()


def reseed(xp: ModuleType, seed) -> None:
    """Start array module ``xp``'s generator afresh from ``seed`` (an int, or a list of ints).
    A GPU generator's state cannot be read out to save, so ``train`` reseeds it at every
    checkpoint, from the run's seed and the step; a run resumed there reseeds it alike."""
    _generators[xp.__name__] = xp.random.default_rng(seed)


def rng(xp: ModuleType):
    """The shared random generator for array module ``xp`` (``xp.random.Generator``)."""
    if xp.__name__ not in _generators:
        _generators[xp.__name__] = xp.random.default_rng(_seed)
    return _generators[xp.__name__]
