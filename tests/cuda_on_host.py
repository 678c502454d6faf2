"""Run tinyllm's CUDA kernels on the CPU: each kernel's C body, compiled for the host.

CI has no GPU, yet the fused kernels' formulas (tinyllm/cuda_kernels.py) are where a
mistake would hide. So this helper compiles the very C text of each kernel with the
system's C++ compiler, inside a loop that does what CuPy's kernel does on the GPU:

- ElementwiseKernel: inputs broadcast together, the body runs once per element, whose
  index is ``i``; outputs given as arguments are written in place.
- ReductionKernel: along the last axis (``keepdims``), ``map`` each element; as the
  threads of a GPU block do, fold four interleaved parts of the row with ``reduce``
  (each from ``identity``), then the four partial results pairwise; write through
  ``post_map``. So ``reduce`` also meets two partial results, and empty parts.

``run_gpu_path_on_host(monkeypatch)`` then sends functional.py down its GPU path on
NumPy arrays, so every gradcheck can run against those kernels. ``pretend_cupy``
goes further: a module named cupy that is NumPy, whose arrays (``DeviceArray``) say
they live on "cuda" and note each time their values are read back on the host, so a
whole training step can be checked for the waits a real GPU would make. What this
cannot check is CuPy itself (its launch, its parallel reduction order):
tests/test_devices.py does that on a GPU machine.
"""
from __future__ import annotations

import atexit
import ctypes
import hashlib
import importlib.util
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinyllm import cuda_kernels

COMPILER = shutil.which("c++") or shutil.which("g++")
_HEADER = """#include <algorithm>
#include <cmath>
#include <cstring>
using std::exp; using std::max;
template <class U> U rsqrt(U v) { return U(1) / std::sqrt(v); }
#define __device__
// bfloat16 as CuPy declares it: only conversions, from and to float (rounding to the nearest even).
struct bfloat16 {
    unsigned short bits;
    bfloat16() : bits(0) {}
    bfloat16(float f) { unsigned u; std::memcpy(&u, &f, 4); bits = (u + 0x7fff + ((u >> 16) & 1)) >> 16; }
    explicit bfloat16(int v) : bfloat16(float(v)) {}
    operator float() const { unsigned u = unsigned(bits) << 16; float f; std::memcpy(&f, &u, 4); return f; }
};
"""
_PARTS = 4  # a reduction's partial results per row (a GPU block has hundreds; 4 meet every case)
# The C type of each NumPy dtype, and its ctypes type for numbers handed in (none in 16 bits are).
_C_TYPES = {np.dtype(np.float32): ("float", ctypes.c_float), np.dtype(np.float64): ("double", ctypes.c_double),
            np.dtype(np.float16): ("_Float16", None)}  # (GCC 12 and later)
if importlib.util.find_spec("ml_dtypes"):
    import ml_dtypes
    _C_TYPES[np.dtype(ml_dtypes.bfloat16)] = ("bfloat16", None)
_PLACEHOLDERS = ("T", "A")  # type names a kernel leaves to its arguments (cuda_kernels.py)
_BUILD = Path(tempfile.mkdtemp(prefix="tinyllm-kernels-"))
atexit.register(shutil.rmtree, _BUILD, ignore_errors=True)
_compiled: dict[str, object] = {}


def _params(text: str) -> list[tuple[str, str]]:
    """'T x, bool masked' -> [('T', 'x'), ('bool', 'masked')]"""
    return [tuple(p.split()) for p in text.split(",")]


def _host_source(kernel, types: dict[str, str], is_array: list[bool]) -> str:
    """C++ for one kernel: one call runs every row (reduction) or every element (elementwise).
    ``types``: the C type of each placeholder the kernel uses ("T", "A")."""
    ins, outs = _params(kernel.args[0]), _params(kernel.args[1])
    ctype = {**types, "bool": "bool", "int64": "long long", "float64": "double"}
    params, loads = [], []
    for (t, name), array in zip(ins, is_array):
        if array:
            params.append(f"const {ctype[t]}* _raw_{name}")
            loads.append(f"const {ctype[t]} {name} = _raw_{name}[_k];")  # _k: the element
        else:
            params.append(f"const {ctype[t]} {name}")
    params += [f"{ctype[t]}* _raw_{name}" for t, name in outs] + ["long _rows", "long _cols"]
    name = kernel.args[-1]
    preamble = kernel.options.get("preamble", "")
    typedefs = "".join(f"typedef {c} {name};\n" for name, c in types.items())
    head = f'{_HEADER}{typedefs}{preamble}\nextern "C" void {name}({", ".join(params)}) {{\n'
    outputs = " ".join(f"{ctype[t]} &{n} = _raw_{n}[i];" for t, n in outs)  # i: the element or the row
    if kernel.kind == "ElementwiseKernel":
        body = kernel.args[2]
        return head + f"for (long i = 0, _k = 0; i < _rows; i++, _k++) {{ {' '.join(loads)} {outputs} {body}; }}}}\n"
    map_expr, reduce_expr, post_map, identity = kernel.args[2:6]
    R = kernel.options.get("reduce_type", "T")
    return head + (f"#define REDUCE(a, b) ({reduce_expr})\n#define POST_MAP(a) ({post_map})\n"
                   f"for (long i = 0; i < _rows; i++) {{ {R} _part[{_PARTS}];\n"
                   f"  for (long _p = 0; _p < {_PARTS}; _p++) {{ _part[_p] = {R}({identity});\n"
                   f"    for (long _k = i * _cols + _p; _k < (i + 1) * _cols; _k += {_PARTS}) {{ {' '.join(loads)}"
                   f" {R} _a = static_cast<{R}>({map_expr}); _part[_p] = REDUCE(_part[_p], _a); }} }}\n"
                   f"  for (long _n = {_PARTS} / 2; _n >= 1; _n /= 2)\n"
                   f"    for (long _p = 0; _p < _n; _p++) _part[_p] = REDUCE(_part[_p], _part[_p + _n]);\n"
                   f"  {R} _s = _part[0]; {outputs} POST_MAP(_s); }}\n}}\n")


def _host_function(kernel, types: dict[str, str], is_array: list[bool]):
    source = _host_source(kernel, types, is_array)
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    if key not in _compiled:
        cpp, lib = _BUILD / f"{key}.cpp", _BUILD / f"{key}.so"
        cpp.write_text(source)
        subprocess.run([COMPILER, "-O1", "-shared", "-fPIC", "-o", str(lib), str(cpp)], check=True)
        _compiled[key] = getattr(ctypes.CDLL(str(lib)), kernel.args[-1])
    return _compiled[key]


calls: list[str] = []  # names of the kernels run, in order: proof the GPU path was taken


def host_call(kernel, *inputs, axis=None, keepdims=False):
    """What ``kernel(*inputs, ...)`` does on a GPU, on NumPy arrays."""
    ins, outs = _params(kernel.args[0]), _params(kernel.args[1])
    given = inputs[len(ins):]  # output arrays to write in place, if any
    inputs = inputs[:len(ins)]
    assert len(given) in (0, len(outs)), f"{kernel.args[-1]}: {len(given)} outputs given for {len(outs)}"
    # Each type placeholder takes the dtype of the arrays declared with it (inputs, or outputs given), as in CuPy.
    dtypes = {}
    for (t, name), a in [*zip(ins, inputs), *zip(outs, given)]:
        if t in _PLACEHOLDERS and isinstance(a, np.ndarray):
            bound = dtypes.setdefault(t, a.dtype)
            assert a.dtype == bound, f"{kernel.args[-1]}: {name} is {a.dtype}, but {t} is {bound}"
    dtype_of = lambda t: dtypes[t] if t in _PLACEHOLDERS else np.dtype(t)  # noqa: E731
    shape = np.broadcast_shapes(*[a.shape for a in inputs if isinstance(a, np.ndarray)])
    args = []
    for (t, name), a in zip(ins, inputs):
        if isinstance(a, np.ndarray):
            assert a.dtype == dtype_of(t), f"{kernel.args[-1]}: {name} is {a.dtype}, the kernel needs {dtype_of(t)}"
            args.append(np.ascontiguousarray(np.broadcast_to(a, shape)))
        elif t in _PLACEHOLDERS:
            args.append(_C_TYPES[dtype_of(t)][1](a))      # a number, in the type its placeholder took
        else:
            args.append({"bool": ctypes.c_bool, "int64": ctypes.c_longlong}[t](a))
    out_dtypes = [dtype_of(t) for t, _ in outs]
    if kernel.kind == "ElementwiseKernel":
        assert all(r.shape == shape and r.dtype == d and r.flags.c_contiguous for r, d in zip(given, out_dtypes))
        results = list(given) or [np.empty(shape, d) for d in out_dtypes]
        rows, cols = int(np.prod(shape)), 1
    else:
        assert axis in (-1, len(shape) - 1) and keepdims, "tinyllm reduces along the last axis, keeping it"
        assert all(r.shape == shape[:-1] + (1,) and r.dtype == d for r, d in zip(given, out_dtypes))
        results = list(given) or [np.empty(shape[:-1] + (1,), d) for d in out_dtypes]
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
    types = {t: _C_TYPES[d][0] for t, d in dtypes.items()}
    function = _host_function(kernel, types, [isinstance(a, np.ndarray) for a in args])
    function(*[a.ctypes.data_as(ctypes.c_void_p) if isinstance(a, np.ndarray) else a for a in args],
             *[r.ctypes.data_as(ctypes.c_void_p) for r in results], ctypes.c_long(rows), ctypes.c_long(cols))
    calls.append(kernel.args[-1])
    return results[0] if len(results) == 1 else tuple(results)


def run_gpu_path_on_host(monkeypatch) -> None:
    """From now on (in this test) functional.py and optim.py take their GPU path, and the kernels run here."""
    import tinyllm.functional as F
    import tinyllm.optim as optim
    monkeypatch.setattr(cuda_kernels._Kernel, "__call__", host_call)
    for module in (F, optim):
        monkeypatch.setattr(module, "is_cupy_array", lambda a: isinstance(a, np.ndarray))
    calls.clear()


# ---------------------------------------------------------------------------
# A whole GPU, pretended: "cuda" arrays that are NumPy arrays, and a module named cupy.
# ---------------------------------------------------------------------------
host_reads: list[str] = []  # each time a "GPU" value was read on the host: on a real GPU, a wait


class DeviceArray(np.ndarray):
    """A NumPy array that tinyllm takes for a CuPy one (``is_cupy_array`` reads the module
    name). Reading its values into Python (``float``, ``int``, ``bool``, ``item``, ``get``) is
    what makes the host wait for a GPU, so each such read is noted in ``host_reads``."""
    __module__ = "cupy_on_host"

    def __array_wrap__(self, array, context=None, return_scalar=False):
        return array.view(DeviceArray)  # results stay on the device, 0-d ones too (as in CuPy)

    def _read(self, how: str) -> np.ndarray:
        host_reads.append(how)
        return self.view(np.ndarray)

    def __float__(self):
        return float(self._read("float"))

    def __int__(self):
        return int(self._read("int"))

    def __index__(self):
        return self._read("index").__index__()

    def __bool__(self):
        return bool(self._read("bool"))

    def item(self, *args):
        return self._read("item").item(*args)

    def tolist(self):
        return self._read("tolist").tolist()

    def get(self) -> np.ndarray:  # CuPy's copy to the host
        return self._read("get").copy()


def _on_device(value):
    if isinstance(value, tuple):
        return tuple(_on_device(v) for v in value)
    return value.view(DeviceArray) if type(value) is np.ndarray else value


def _on_device_calls(f):
    return lambda *args, **kwargs: _on_device(f(*args, **kwargs))


def pretend_cupy(monkeypatch) -> list[str]:
    """From now on (in this test) device "cuda" is host memory: ``import cupy`` gives NumPy
    returning DeviceArrays, and the fused kernels run as ``host_call``. Returns ``host_reads``."""
    import sys
    import types

    import tinyllm.backend as backend
    cupy = types.ModuleType("cupy")
    cupy.__getattr__ = lambda name: _numpy_on_device(name)  # every other name: NumPy's, on the device
    cupy.asarray = lambda a, dtype=None: _on_device(  # from the host: a copy, as a real transfer is
        np.asarray(a, dtype) if isinstance(a, DeviceArray) else np.array(a, dtype, copy=True))
    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    cupy.random = types.SimpleNamespace(default_rng=lambda seed: _GeneratorOnDevice(np.random.default_rng(seed)))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setattr(backend, "_generators", {})  # this test's "cupy" generator is not kept
    monkeypatch.setattr(cuda_kernels._Kernel, "__call__",
                        lambda kernel, *args, **kwargs: _on_device(host_call(kernel, *args, **kwargs)))
    host_reads.clear()
    calls.clear()
    return host_reads


def _numpy_on_device(name: str):
    attr = getattr(np, name)
    plain_function = callable(attr) and not isinstance(attr, (type, np.ufunc))  # dtypes and ufuncs stay
    return _on_device_calls(attr) if plain_function else attr


class _GeneratorOnDevice:
    def __init__(self, generator):
        self.generator = generator

    def __getattr__(self, name):
        return _on_device_calls(getattr(self.generator, name))


# ---------------------------------------------------------------------------
# GPUs and NCCL, pretended, for the ranks of an MPI job (tests/test_distributed.py).
# ---------------------------------------------------------------------------
nccl_calls: list[tuple] = []  # each all-reduce NCCL was asked for: (count, datatype, op, in place)
used_gpu: list[int] = []      # the GPU each Device(...).use() made current


def pretend_nccl(monkeypatch, gpus: int) -> list[tuple]:
    """After ``pretend_cupy``: a machine with ``gpus`` GPUs, and a module ``cupy.cuda.nccl``
    whose communicator sums device buffers (read through their pointers, as NCCL does) across
    the ranks of this MPI job. Its transport is MPI on the host, but tinyllm's side of the
    call (the id sent round, the communicator's ranks, the buffer, count and type) is the
    real one. Returns ``nccl_calls``; ``used_gpu`` holds the GPU each rank chose."""
    import sys
    import types

    from mpi4py import MPI
    cupy = sys.modules["cupy"]
    monkeypatch.setattr(DeviceArray, "data", property(lambda a: types.SimpleNamespace(ptr=a.ctypes.data)),
                        raising=False)

    class Device:
        def __init__(self, number: int):
            if not 0 <= number < gpus:
                raise ValueError(f"no GPU {number} (the pretended machine has {gpus})")
            self.number = number

        def use(self):
            used_gpu.append(self.number)

    cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: gpus), Device=Device,
                                      get_current_stream=lambda: types.SimpleNamespace(ptr=0))
    nccl = types.ModuleType("cupy.cuda.nccl")
    nccl.available = True
    nccl.NCCL_FLOAT16, nccl.NCCL_FLOAT32, nccl.NCCL_FLOAT64, nccl.NCCL_SUM = 6, 7, 8, 0   # NCCL's numbers
    dtypes = {nccl.NCCL_FLOAT16: np.float16, nccl.NCCL_FLOAT32: np.float32, nccl.NCCL_FLOAT64: np.float64}
    nccl.get_unique_id = lambda: tuple(np.random.default_rng().integers(-128, 128, 128).tolist())

    def at(pointer: int, count: int, datatype: int) -> np.ndarray:
        """The ``count`` numbers at ``pointer``, as NCCL would see them."""
        size = count * np.dtype(dtypes[datatype]).itemsize
        return np.ctypeslib.as_array((ctypes.c_byte * size).from_address(pointer)).view(dtypes[datatype])

    class NcclCommunicator:
        def __init__(self, ndev: int, unique_id: tuple, rank: int):
            assert (ndev, rank) == (MPI.COMM_WORLD.Get_size(), MPI.COMM_WORLD.Get_rank()), (ndev, rank)
            ids = MPI.COMM_WORLD.allgather(unique_id)
            assert all(i == ids[0] for i in ids), "the ranks were given different unique ids"

        def allReduce(self, sendbuf: int, recvbuf: int, count: int, datatype: int, op: int, stream: int):
            assert op == nccl.NCCL_SUM and datatype != nccl.NCCL_FLOAT16, "only sums of float32/64 pretended"
            sums = at(sendbuf, count, datatype).copy()
            MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
            at(recvbuf, count, datatype)[:] = sums
            nccl_calls.append((count, datatype, op, sendbuf == recvbuf))

    nccl.NcclCommunicator = NcclCommunicator
    monkeypatch.setitem(sys.modules, "cupy.cuda.nccl", nccl)
    nccl_calls.clear()
    used_gpu.clear()
    return nccl_calls

