"""Mixed precision: the big matrix products in 16 bits, everything else in float32.

A GPU's tensor cores multiply 16-bit numbers several times faster than float32 ones, and
most of a GPT's arithmetic is matrix products: its Linear layers', and attention's. So, as
PyTorch's ``torch.autocast`` does, inside ``with autocast("float16"):`` (or ``"bfloat16"``)
``F.linear`` casts its input and weight to 16 bits, multiplies, and hands back float32;
its backward does the same for the two products of the gradient. Attention
(``F.scaled_dot_product_attention``) multiplies q, k and v in 16 bits too, and keeps its
(T, T) scores and weights in 16 bits, half the memory; their softmax sums in float32
(``backend.sum_dtype``), and the op hands back float32. The weights themselves stay
float32 (the *master* copy the optimizer updates: a tiny step added to a 16-bit weight
would round away), and LayerNorm, GELU and the loss never leave float32.

The two 16-bit formats differ where it matters:

    float32   1 sign,  8 exponent, 23 fraction bits   ~7 digits,   up to 3.4e38, down to 1.2e-38
    float16   1 sign,  5 exponent, 10 fraction bits   ~3 digits,   up to 65504,  down to 6.1e-5 (6e-8 subnormal)
    bfloat16  1 sign,  8 exponent,  7 fraction bits   ~2 digits,   float32's range

Small gradients underflow to 0 in float16. ``GradScaler`` (PyTorch's name) multiplies the
loss by a large scale before the backward, so the gradients are scaled too and stay
representable, and divides them again before the step; a step whose gradients overflowed
to inf or nan is skipped and the scale halved, and after ``growth_interval`` good steps the
scale doubles. bfloat16 has float32's range and needs no scaling.

NumPy has float16 (slow: no BLAS), and bfloat16 through the ``ml_dtypes`` package; so the
same code runs on the CPU, on small shapes, which is how the tests check it.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

from . import cuda_kernels
from .backend import array_module, is_cupy_array, xp_for

DTYPES = ("float32", "float16", "bfloat16")
_compute_dtype: str | None = None       # inside autocast: the dtype of F.linear's and attention's products


def dtype_of(name: str):
    """The NumPy dtype called ``name`` (bfloat16 needs ``pip install ml_dtypes``)."""
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}")
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise RuntimeError("bfloat16 needs the ml_dtypes package: pip install ml_dtypes") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def check_products_on(device: str, name: str) -> None:
    """Refuse at once, by name, a 16-bit format that ``device``'s array library cannot multiply
    (bfloat16 on a GPU needs a CuPy that knows ml_dtypes' bfloat16), or, on a GPU, that tinyllm's
    kernels cannot be built for (attention's softmax reads and writes it), rather than mid-run."""
    if name == "float32":
        return
    xp, dtype = xp_for(device), dtype_of(name)    # (a missing ml_dtypes is named by dtype_of)
    try:
        a = xp.ones((2, 2), dtype=dtype)
        product = float((a @ a).astype(np.float32)[0, 0])
        if is_cupy_array(a):
            cuda_kernels.softmax(a)
    except Exception as e:      # CuPy's refusals come as several types (TypeError, its CompileException, ...)
        raise RuntimeError(f"--dtype {name}: {device} cannot compute in {name} here ({type(e).__name__}: {e}); "
                           "--dtype float16 works wherever float16 does") from e
    if product != 2.0:
        raise RuntimeError(f"--dtype {name}: a product in {name} on {device} came out {product}, not 2")


@contextmanager
def autocast(dtype: str = "float16") -> Iterator[None]:
    """Inside, F.linear and attention multiply in ``dtype`` ("float16", "bfloat16"; "float32": no change)."""
    global _compute_dtype
    dtype_of(dtype)                           # refuse an unknown name (or a missing ml_dtypes) at once
    previous, _compute_dtype = _compute_dtype, None if dtype == "float32" else dtype
    try:
        yield
    finally:
        _compute_dtype = previous


def compute_dtype():
    """The dtype F.linear and attention multiply in now: a 16-bit one inside ``autocast``, else None (as given)."""
    return None if _compute_dtype is None else dtype_of(_compute_dtype)


class GradScaler:
    """Dynamic loss scaling for float16 (``torch.amp.GradScaler``): scale the loss, unscale the
    gradients, skip a step whose gradients are not finite, and adapt the scale."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000):
        self.scale = float(init_scale)
        self.growth_factor, self.backoff_factor, self.growth_interval = growth_factor, backoff_factor, growth_interval
        self.good_steps = 0     # finite steps in a row since the scale last changed
        self.skipped = 0        # steps skipped in all
        self.last_finite = True # whether the last step's gradients were finite (it was taken)

    def unscale_(self, params) -> bool:
        """Divide every gradient by the scale (new arrays); True when all of them are finite.
        (Reading the answer waits for a GPU, once a step, as PyTorch's scaler does.)"""
        params = [p for p in params if p.grad is not None]
        if not params:
            return True
        xp = array_module(params[0].grad.data)
        for p in params:
            p.grad.data = p.grad.data * np.float32(1.0 / self.scale)
        return bool(xp.stack([xp.isfinite(p.grad.data).all() for p in params]).all())   # one read

    def update(self, finite: bool) -> None:
        """After a step: halve the scale if its gradients overflowed, double it after a run of good ones."""
        self.last_finite = finite
        if not finite:
            self.scale *= self.backoff_factor
            self.good_steps = 0
            self.skipped += 1
            return
        self.good_steps += 1
        if self.good_steps == self.growth_interval:
            self.scale *= self.growth_factor
            self.good_steps = 0
