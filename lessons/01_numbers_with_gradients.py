# %% [markdown]
# # Lesson 01 — Numbers with gradients
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–1.3 are solved
# (this lesson teaches 1.1–1.3); or in this checkout, where every exercise is solved.*
#
# **What you will build:** the derivative of a small formula, first by hand with
# the chain rule, then automatically with `tinyllm.Tensor`, and a picture of what
# a derivative *is*: the slope of the tangent line.
#
# Every neural network is trained the same way: compute a loss, ask how the loss
# changes when each parameter moves a little (the gradient), and move the
# parameters downhill. This lesson is about that one question, "how does the output
# change when the input moves?", on numbers small enough to check in your head.
#
# Run it: `python lessons/01_numbers_with_gradients.py` (or open it as a notebook).

# %%
from shared import exercises_before, save_figure  # first: matplotlib then writes PNG files, no window
import matplotlib.pyplot as plt

from tinyllm import Tensor
from tinyllm.plots import plot_graph

exercises_before(1)   # says which of exercises 1.1–1.3 are still blank in your copy, if any

# %% [markdown]
# ## The slope, measured
# Take f(x) = 3x² − 4x + 5. Its slope at x = 3 can be *measured*: nudge x by a tiny
# h and see how much f moves. (f(x+h) − f(x)) / h approaches the derivative as h shrinks.

# %%
def f(x):
    return 3 * x ** 2 - 4 * x + 5


for h in (0.1, 0.001, 0.00001):
    print(f"h = {h:<8} slope ≈ {(f(3 + h) - f(3)) / h:.5f}")

# %% [markdown]
# Calculus says f'(x) = 6x − 4, so f'(3) = 14: the measured slopes close in on it.

# %%
xs = [i / 10 for i in range(-20, 51)]
plt.figure(figsize=(5, 3.5))
plt.plot(xs, [f(x) for x in xs], label="f(x) = 3x² − 4x + 5")
plt.plot(xs, [f(3) + 14 * (x - 3) for x in xs], "--", label="tangent at x = 3, slope 14")
plt.scatter([3], [f(3)], color="k", zorder=3)
plt.ylim(-5, 70)
plt.legend()
plt.title("A derivative is the slope of the tangent")
save_figure(plt.gcf(), "01_tangent.png")

# %% [markdown]
# ## The chain rule, by hand
# Now a formula built from steps, as a network is:
#
#     a = 2,  b = −3,  c = 10
#     e = a · b          (= −6)
#     d = e + c          (= 4)
#     L = d · d          (= 16)
#
# Walk *backwards* from L, multiplying local slopes (the chain rule):
#
#     dL/dd = 2d = 8
#     dL/de = dL/dd · dd/de = 8 · 1 = 8         dL/dc = 8 · 1 = 8
#     dL/da = dL/de · de/da = 8 · b = −24       dL/db = 8 · a = 16

# %%
a, b, c = 2.0, -3.0, 10.0
e = a * b
d = e + c
L = d * d
dL_dd = 2 * d
dL_de, dL_dc = dL_dd * 1, dL_dd * 1
dL_da, dL_db = dL_de * b, dL_de * a
print(f"by hand:    L = {L}, dL/da = {dL_da}, dL/db = {dL_db}, dL/dc = {dL_dc}")

# %% [markdown]
# ## The same, with `Tensor`
# A `Tensor` remembers which op made it and from what. `L.backward()` walks that
# record backwards, applying exactly the local slopes we used above.

# %%
a = Tensor(2.0, requires_grad=True)
b = Tensor(-3.0, requires_grad=True)
c = Tensor(10.0, requires_grad=True)
e = a * b
d = e + c
L = d ** 2
e.retain_grad(), d.retain_grad(), L.retain_grad()  # only leaves keep .grad unless asked (memory)
L.backward(retain_graph=True)                      # and keep the record after the walk, to draw it
print(f"by Tensor:  L = {L.item()}, dL/da = {a.grad.item()}, dL/db = {b.grad.item()}, dL/dc = {c.grad.item()}")
print(f"            dL/dd = {d.grad.item()}, dL/de = {e.grad.item()}")
assert (a.grad.item(), b.grad.item(), c.grad.item()) == (dL_da, dL_db, dL_dc)

# %% [markdown]
# ## The record, drawn
# `plot_graph` draws what `L` remembers: a box per number with the op that made
# it, its value and its gradient, and an arrow from each input to the op that
# used it. Orange boxes are the inputs that asked for gradients; the grey one is
# the constant exponent 2 of `d ** 2`. Read it right to left: every grad is the
# grad of the box it feeds times a local slope, the walk we did by hand.
#
# The walk needs an order: a box's grad is complete only once every box it feeds has
# passed its share back. So `backward()` first lists the boxes so that each comes after
# everything it was made from (a *topological order*, printed below), then walks that
# list backwards (exercise 1.1). Each op supplies its local slopes: for `a * b` the
# slope towards a is b and towards b is a (exercise 1.2); for tanh, whose slope is
# d tanh(a)/da = 1 − tanh(a)², the backward multiplies the incoming grad by 1 − out²,
# reusing the output it already computed (exercise 1.3).

# %%
names = {"a": a, "b": b, "c": c, "e": e, "d": d, "L": L}
save_figure(plot_graph(L, names), "01_graph.png")
name_of = {id(t): name for name, t in names.items()}
print("topological order:", [name_of[id(t)] for t in L._topological_order()], "- backward walks it from the end")

# %% [markdown]
# ## One step downhill
# The gradient points uphill. Moving each input a little *against* its gradient
# lowers L: that is all "training" will ever do.

# %%
lr = 0.01
for t in (a, b, c):
    t.data -= lr * t.grad.data
print(f"after one step against the gradient: L = {((a * b + c) ** 2).item():.3f} (was 16.0)")

# %% [markdown]
# ## What you now know
# - A derivative is a slope; you can measure it with a small nudge.
# - The chain rule multiplies local slopes along the path from output to input.
# - `Tensor(..., requires_grad=True)` records the computation; `.backward()` fills `.grad`.
# - The record is a graph of ops (`plot_graph` draws it); backward walks it from the output.
#
# **Exercises** (`tinyllm exercises init DIR` makes your copy; `tinyllm exercises hint 1.1`):
# 1.1 the topological order in `Tensor._topological_order` (`tinyllm/tensor.py`),
# 1.2 the backward of `mul` and 1.3 of `tanh` (`tinyllm/ops/elementwise.py`).
