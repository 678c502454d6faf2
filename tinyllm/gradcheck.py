"""gradcheck: is a backward formula right? Measure the slope numerically and compare.

    df/dx ≈ (f(x + ε) - f(x - ε)) / 2ε        (central difference, error O(ε²))

For every element of every input that requires grad, nudge it both ways, rerun
the function, and compare the slope with what ``backward`` computed. In float64
with ε = 1e-6 the two agree to about 1e-9 when the formula is right; a wrong
formula is off by a lot. A function with a non-scalar output is first reduced to
a scalar by a fixed random weighting, ``L = Σ out · R``, so every output matters.

    from tinyllm.gradcheck import gradcheck
    x = Tensor(np.random.randn(3, 4), dtype=np.float64, requires_grad=True)
    gradcheck(lambda x: (x * x).sum(), [x])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .backend import to_numpy
from .tensor import Tensor, no_grad


@dataclass
class InputCheck:
    """How one input's analytic gradient compared with the numerical one."""
    index: int
    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float  # |analytic - numeric| / max(|numeric|, atol), worst element
    passed: bool


@dataclass
class GradcheckResult:
    inputs: list[InputCheck]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.inputs)

    def __str__(self) -> str:
        lines = ["input  shape                 max abs err   max rel err   ok"]
        for c in self.inputs:
            lines.append(f"{c.index:5d}  {str(c.shape):20s}  {c.max_abs_error:11.3e}   "
                         f"{c.max_rel_error:11.3e}   {'yes' if c.passed else 'NO'}")
        return "\n".join(lines)


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence, eps: float = 1e-6, atol: float = 1e-6,
              rtol: float = 1e-4, seed: int = 0, raise_on_failure: bool = True) -> GradcheckResult:
    """Check ``backward`` of ``fn(*inputs)`` against central finite differences.

    Tensors in ``inputs`` with ``requires_grad`` must be float64 (they are nudged in
    place and restored); other inputs (token ids, masks) are passed through as they are.
    An element passes when ``|analytic - numeric| <= atol + rtol·|numeric|``.
    Returns the per-input report; raises AssertionError with it on failure by default.
    """
    checked = [(i, t) for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input tensor has requires_grad=True")
    for i, t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {t.dtype}; finite differences need float64 "
                            "(Tensor(data, dtype=np.float64, requires_grad=True))")

    out = fn(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    xp_weights = Tensor(weights, dtype=np.float64, device=out.device)

    def scalar_loss() -> float:
        with no_grad():
            return float((fn(*inputs).data * xp_weights.data).sum())

    # Analytic: one backward pass of L = Σ out · R.
    for _, t in checked:
        t.grad = None
    out.backward(xp_weights.data)

    report = []
    for i, t in checked:
        analytic = to_numpy(t.grad.data) if t.grad is not None else np.zeros(t.shape)
        numeric = np.zeros(t.shape)
        for j in np.ndindex(*t.shape):  # nudge one element at a time, in place
            original = t.data[j].item()
            t.data[j] = original + eps
            plus = scalar_loss()
            t.data[j] = original - eps
            minus = scalar_loss()
            t.data[j] = original
            numeric[j] = (plus - minus) / (2 * eps)
        err = np.abs(analytic - numeric)
        report.append(InputCheck(
            index=i, shape=t.shape, max_abs_error=float(err.max(initial=0.0)),
            max_rel_error=float((err / np.maximum(np.abs(numeric), atol)).max(initial=0.0)),
            passed=bool((err <= atol + rtol * np.abs(numeric)).all())))
    result = GradcheckResult(report)
    if raise_on_failure and not result.passed:
        raise AssertionError(f"gradcheck failed: analytic and numerical gradients differ\n{result}")
    return result
