# %% [markdown]
# # Lesson 02 — The autograd engine
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–2.3 are solved
# (this lesson teaches 2.1–2.3); or in this checkout, where every exercise is solved.*
#
# **What you will build:** an understanding of `tinyllm/tensor.py`, the whole
# engine: the graph each op records, the topological order `backward()` walks,
# how broadcasting is undone in gradients, and `gradcheck`, which tells you
# whether any backward formula is right.

# %%
import numpy as np
from shared import FAST, exercises_before, save_figure

from tinyllm import Tensor
from tinyllm.gradcheck import gradcheck
from tinyllm.plots import plot_graph
from tinyllm.tensor import from_op, sum_to_shape

exercises_before(2)

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
# ## The backwards of sum and matmul, derived
# **sum** (exercise 2.2): y = Σ_i x_i. Every x_i adds to y with slope 1, so each gets the
# whole incoming gradient: dL/dx_i = g. Summing over some axes only, each element gets the
# g of the sum it went into: g, with the summed axes put back, broadcast to x's shape.
#
# **matmul** (exercise 2.3): C = A @ B means C_ij = Σ_k A_ik B_kj. A_ik appears in every
# C_ij of row i, multiplied by B_kj, so
#
#     dL/dA_ik = Σ_j g_ij B_kj = (g @ Bᵀ)_ik          dL/dB_kj = Σ_i A_ik g_ij = (Aᵀ @ g)_kj
#
# The shapes say it too: g is (n, m) like C, A is (n, k), so dA = g @ Bᵀ is the only
# product of g and B that is (n, k). With a batch of matrices the same holds per matrix;
# a B shared by the whole batch collects the sum over the batch (broadcasting, undone).

# %% [markdown]
# ## gradcheck: trust, but verify
# Any backward formula can be checked against a *measured* slope: nudge one input element
# by ±ε and see how the output moves, (f(x+ε) − f(x−ε)) / 2ε. This central difference is
# not the derivative itself (that is the limit as ε → 0, and the one-sided
# (f(x+ε) − f(x)) / ε of lesson 01); it estimates it with an error that shrinks like ε²,
# so in float64 with ε = 1e-6 it agrees with a correct backward to about 1e-8 (the table's
# relative errors). Here the
# ops you wrote so far pass (mul, tanh, sum, matmul, an add that broadcasts), and a
# deliberately wrong backward (d(x²)/dx written as x instead of 2x) fails.

# %%
rng = np.random.default_rng(0)
n, k = (2, 3) if FAST else (4, 6)
X = Tensor(rng.standard_normal((n, k)), dtype=np.float64, requires_grad=True)
W = Tensor(rng.standard_normal((k, 3)), dtype=np.float64, requires_grad=True)
B = Tensor(rng.standard_normal(3), dtype=np.float64, requires_grad=True)
print(gradcheck(lambda x, w, b: ((x @ w + b).tanh() * x.sum(axis=1, keepdims=True)).sum(), [X, W, B]))


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
# - `gradcheck` compares any backward with a measured slope (central differences).
# - Later lessons gradcheck every backward you write: softmax and cross-entropy (04, 07),
#   LayerNorm and GELU (08), attention (07).
#
# **Exercises**: 2.1 `sum_to_shape` (`tinyllm/tensor.py`), 2.2 the backward of `sum`
# (`tinyllm/ops/reduce.py`), 2.3 the backward of `matmul` (`tinyllm/ops/matmul.py`).
