"""Power laws: how loss falls with model size and compute, fitted on log-log axes.

Kaplan et al. (2020) found a language model's loss falling as a power of its size N
(non-embedding parameters), L(N) ≈ (N_c / N)^α_N with α_N ≈ 0.076, and Hoffmann et al.
(2022, "Chinchilla") fitted L(N, D) = E + A / N^0.34 + B / D^0.28 over size N and training
tokens D. On log-log axes a power law y = a·x^(−α) is a straight line,
log y = log a − α·log x, so a least-squares line through the logs fits it.
"""
from __future__ import annotations

import numpy as np


def fit_power_law(x, y) -> tuple[float, float]:
    """The ``(a, alpha)`` of the power law ``y ≈ a · x^(−alpha)`` closest to the points in
    log-log space (least squares on log y against log x). Every x and y must be positive."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"fit_power_law needs two equally long lists of 2 or more points, got {x.shape} and {y.shape}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("a power law is fitted to positive numbers only (their logarithms)")
    # BEGIN EXERCISE 18.1: fit log y = log a − alpha·log x by least squares; return (a, alpha)
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(intercept)), float(-slope)
    # END EXERCISE
