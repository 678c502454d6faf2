"""tinyllm: a GPT built and trained from scratch in NumPy, readable line by line.

    from tinyllm import Tensor, no_grad, functional as F
"""
from . import ops  # noqa: F401  (attaches +, @, .sum(), ... to Tensor)
from . import functional
from .backend import manual_seed
from .tensor import Tensor, is_grad_enabled, no_grad
from .ops import concat, split

__version__ = "0.1.0"
__all__ = ["Tensor", "no_grad", "is_grad_enabled", "manual_seed", "functional", "concat", "split"]
