# %% [markdown]
# # Lesson 02 — The autograd engine
#
# **What you will build:** an understanding of `tinyllm/tensor.py`, the whole
# engine: the graph each op records, the topological order `backward()` walks,
# how broadcasting is undone in gradients, and `gradcheck`, which tells you
# whether any backward formula is right.

# %%
import numpy as np
from shared import FAST, save_figure

from tinyllm import Tensor, functional as F
from tinyllm.gradcheck import gradcheck
from tinyllm.plots import plot_graph
from tinyllm.tensor import sum_to_shape

# %% [markdown]
# ## The graph
# Each op's result keeps its inputs (`_parents`) and the op's name (`_op`). Here is
# the graph of `y = (x·w + b).tanh().sum()`, printed from the output back.

# %%
x = Tensor(np.ones((2, 3)))
w = Tensor(np.full((3, 1), 0.5), requires_grad=True)
b = Tensor([0.1], requires_grad=True)
y = (x @ w + b).tanh().sum()


def show(t, depth=0):
    label = t._op or ("leaf (requires grad)" if t.requires_grad else "constant")
    print("  " * depth + f"{label} {t.shape}")
    for p in t._parents:
        show(p, depth + 1)


show(y)

# %% [markdown]
# The same graph as a picture (lesson 01 drew one of single numbers): with arrays
# each box shows its shape; `x` is grey, a constant that needs no gradient.

# %%
save_figure(plot_graph(y, {"x": x, "w": w, "b": b, "y": y}), "02_graph.png")

# %% [markdown]
# ## Topological order
# `backward()` must finish a node's gradient before passing it on, so it visits
# nodes in reverse topological order: every consumer before what it consumed.

# %%
print([t._op or "leaf" for t in reversed(y._topological_order())])
y.backward()
print("dy/dw =", w.grad.numpy().ravel(), " dy/db =", b.grad.numpy())

# %% [markdown]
# ## Broadcasting, undone
# `b` has shape (1,) but was added to a (2, 1) matrix: NumPy copied it to every
# row. Each copy contributed to the output, so its gradient is the **sum** over
# the copies. One helper, `sum_to_shape`, does this for every op:

# %%
g = np.arange(6.0).reshape(2, 3)
print("gradient of a (2, 3) result:\n", g)
print("summed back to (3,):", sum_to_shape(g, (3,)), "  to (2, 1):", sum_to_shape(g, (2, 1)).ravel())

# %% [markdown]
# ## gradcheck: trust, but verify
# Any backward formula can be checked against the definition of the derivative,
# (f(x+ε) − f(x−ε)) / 2ε, in float64. Here softmax and layer_norm pass, and a
# deliberately wrong backward (d(x²)/dx written as x instead of 2x) fails.

# %%
rng = np.random.default_rng(0)
shape = (2, 3) if FAST else (4, 6)
X = Tensor(rng.standard_normal(shape), dtype=np.float64, requires_grad=True)
print(gradcheck(F.softmax, [X]))
W = Tensor(rng.standard_normal(shape[-1]), dtype=np.float64, requires_grad=True)
print(gradcheck(lambda x, w: F.layer_norm(x, w), [X, W]))

from tinyllm.tensor import from_op  # noqa: E402


def wrong_square(x):
    return from_op(x.data ** 2, (x,), lambda g: (g * x.data,), "wrong_square")


result = gradcheck(wrong_square, [X], raise_on_failure=False)
print(result)
assert not result.passed

# %% [markdown]
# ## What you now know
# - Every op records its inputs and a `backward(g)`; the graph is built as you compute.
# - `backward()` walks the graph in reverse topological order, summing gradients
#   that arrive by several paths.
# - Broadcasting in the forward pass means summing in the backward pass.
# - `gradcheck` compares any backward with finite differences.
#
# **Exercises**: 2.1 `sum_to_shape` (`tinyllm/tensor.py`), 2.2 the backward of `sum`
# (`tinyllm/ops/reduce.py`), 2.3 the backward of `matmul` (`tinyllm/ops/matmul.py`).
