"""The differentiable ops, grouped by family, and the Tensor methods that call them.

    elementwise.py  + - * / ** neg exp log sqrt tanh relu
    reduce.py       sum mean max
    shape.py        reshape permute transpose indexing concat split
    matmul.py       @

The table at the bottom is what makes ``a + b`` or ``x.sum(-1)`` on a Tensor
run these functions: Python looks up ``__add__`` on the class.
"""
from ..tensor import Tensor
from .elementwise import add, div, exp, log, mul, neg, pow, relu, sqrt, sub, tanh
from .matmul import matmul
from .reduce import max, mean, sum
from .shape import concat, getitem, permute, reshape, split, transpose

__all__ = ["add", "sub", "mul", "div", "pow", "neg", "exp", "log", "sqrt", "tanh", "relu",
           "sum", "mean", "max", "reshape", "permute", "transpose", "getitem", "concat",
           "split", "matmul"]

# Operators. The reflected forms (__radd__, ...) handle ``2 * x`` and ``np_array + x``.
Tensor.__add__ = add
Tensor.__radd__ = lambda self, other: add(other, self)
Tensor.__sub__ = sub
Tensor.__rsub__ = lambda self, other: sub(other, self)
Tensor.__mul__ = mul
Tensor.__rmul__ = lambda self, other: mul(other, self)
Tensor.__truediv__ = div
Tensor.__rtruediv__ = lambda self, other: div(other, self)
Tensor.__pow__ = pow
Tensor.__rpow__ = lambda self, other: pow(other, self)
Tensor.__neg__ = neg
Tensor.__matmul__ = matmul
Tensor.__rmatmul__ = lambda self, other: matmul(other, self)
Tensor.__getitem__ = getitem

# Methods, named as in PyTorch.
Tensor.exp = exp
Tensor.log = log
Tensor.sqrt = sqrt
Tensor.tanh = tanh
Tensor.relu = relu
Tensor.sum = sum
Tensor.mean = mean
Tensor.max = max
Tensor.reshape = reshape
Tensor.permute = permute
Tensor.transpose = transpose
Tensor.split = split
Tensor.T = property(lambda self: permute(self, tuple(reversed(range(self.ndim)))))
