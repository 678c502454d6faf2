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
NumPy arrays, so every gradcheck can run against those kernels. What this cannot
check is CuPy itself (its launch, its parallel reduction order): tests/test_devices.py
does that on a GPU machine.
"""
from __future__ import annotations

import atexit
import ctypes
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinyllm import cuda_kernels

COMPILER = shutil.which("c++") or shutil.which("g++")
_HEADER = """#include <algorithm>
#include <cmath>
using std::exp; using std::max;
template <class U> U rsqrt(U v) { return U(1) / std::sqrt(v); }
#define __device__
"""
_PARTS = 4  # a reduction's partial results per row (a GPU block has hundreds; 4 meet every case)
_C_TYPES = {np.dtype(np.float32): ("float", ctypes.c_float), np.dtype(np.float64): ("double", ctypes.c_double)}
_BUILD = Path(tempfile.mkdtemp(prefix="tinyllm-kernels-"))
atexit.register(shutil.rmtree, _BUILD, ignore_errors=True)
_compiled: dict[str, object] = {}


def _params(text: str) -> list[tuple[str, str]]:
    """'T x, bool masked' -> [('T', 'x'), ('bool', 'masked')]"""
    return [tuple(p.split()) for p in text.split(",")]


def _host_source(kernel, T: str, is_array: list[bool]) -> str:
    """C++ for one kernel: one call runs every row (reduction) or every element (elementwise)."""
    ins, outs = _params(kernel.args[0]), _params(kernel.args[1])
    ctype = {"T": T, "bool": "bool", "int64": "long long"}
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
    head = f'{_HEADER}typedef {T} T;\n{preamble}\nextern "C" void {name}({", ".join(params)}) {{\n'
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


def _host_function(kernel, T: str, is_array: list[bool]):
    source = _host_source(kernel, T, is_array)
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
    dtype = next(a.dtype for a in inputs if isinstance(a, np.ndarray) and a.dtype.kind == "f")
    c_name, c_scalar = _C_TYPES[dtype]
    shape = np.broadcast_shapes(*[a.shape for a in inputs if isinstance(a, np.ndarray)])
    args = []
    for (t, name), a in zip(ins, inputs):
        if isinstance(a, np.ndarray):
            want = dtype if t == "T" else np.dtype(t)
            assert a.dtype == want, f"{kernel.args[-1]}: {name} is {a.dtype}, the kernel needs {want}"
            args.append(np.ascontiguousarray(np.broadcast_to(a, shape)))
        else:
            args.append({"T": c_scalar, "bool": ctypes.c_bool, "int64": ctypes.c_longlong}[t](a))
    if kernel.kind == "ElementwiseKernel":
        assert all(r.shape == shape and r.dtype == dtype and r.flags.c_contiguous for r in given)
        results = list(given) or [np.empty(shape, dtype) for _ in outs]
        rows, cols = int(np.prod(shape)), 1
    else:
        assert axis in (-1, len(shape) - 1) and keepdims, "tinyllm reduces along the last axis, keeping it"
        assert all(r.shape == shape[:-1] + (1,) and r.dtype == dtype for r in given)
        results = list(given) or [np.empty(shape[:-1] + (1,), dtype) for _ in outs]
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
    function = _host_function(kernel, c_name, [isinstance(a, np.ndarray) for a in args])
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
