"""fit_power_law against exact power laws and a hand-computed least-squares fit."""
import math

import numpy as np
import pytest

from tinyllm.scaling import fit_power_law


def test_fit_power_law_recovers_an_exact_power_law():
    x = np.array([1e3, 1e4, 1e5, 1e6])
    a, alpha = fit_power_law(x, 5.0 * x ** -0.076)
    assert a == pytest.approx(5.0, rel=1e-9) and alpha == pytest.approx(0.076, rel=1e-9)
    assert isinstance(a, float) and isinstance(alpha, float)


def test_fit_power_law_is_least_squares_in_log_space():
    # logs: x = 1, e, e² and log y = 0, -1, -1.5. The least-squares line through (0, 0), (1, -1),
    # (2, -1.5): slope = Σ(u - ū)(v - v̄) / Σ(u - ū)² = (-1·(5/6) + 1·(-2/3)) / 2 = -0.75,
    # intercept = v̄ - slope·ū = -5/6 + 0.75 = -1/12.
    a, alpha = fit_power_law([1, math.e, math.e ** 2], [1, math.exp(-1), math.exp(-1.5)])
    assert alpha == pytest.approx(0.75, rel=1e-12) and a == pytest.approx(math.exp(-1 / 12), rel=1e-12)


def test_fit_power_law_names_what_it_cannot_fit():
    with pytest.raises(ValueError, match="positive numbers only"):
        fit_power_law([1, 2], [1, 0])
    with pytest.raises(ValueError, match="2 or more points"):
        fit_power_law([1], [1])
