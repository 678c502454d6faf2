# %% [markdown]
# # Lesson 03 — From neurons to an MLP
#
# *Where to run it: in your own copy (`tinyllm exercises init DIR`), once exercises 1.1–3.4 are solved
# (this lesson teaches 3.1–3.4); or in this checkout, where every exercise is solved.*
#
# **What you will build:** a multi-layer perceptron from `tinyllm.nn` pieces that
# learns to separate two interleaved spirals, trained by gradient descent (SGD with
# momentum), and a picture of the decision boundary it learned.
#
# A *neuron* computes a weighted sum of its inputs plus a bias, then bends it with
# a nonlinearity: `tanh(w·x + b)`. A *layer* is many neurons reading the same
# inputs: one matrix product, `x @ Wᵀ + b` (`nn.Linear`). Stack layers with
# nonlinearities between them and you have an MLP, the same block that sits inside
# every Transformer layer.

# %%
import matplotlib.pyplot as plt
import numpy as np

from shared import FAST, exercises_before, save_figure
from tinyllm import Tensor, manual_seed, nn, optim

exercises_before(3)

# %% [markdown]
# ## The data: two spirals
# 2-D points, class 0 on one arm and class 1 on the other. No straight line
# separates them, so a single neuron cannot; a few layers can.

# %%
def spirals(n_per_class: int, rng):
    t = np.linspace(0.25, 3 * np.pi, n_per_class)
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, 0.02, (2 * n_per_class, 2))
    return x.astype(np.float32), np.repeat([0, 1], n_per_class)


rng = np.random.default_rng(0)
x, y = spirals(100, rng)
print("inputs", x.shape, "labels", y.shape, "classes", np.bincount(y))

# %% [markdown]
# ## The model
# `nn.Module` collects the parameters of every layer it holds (`parameters()`), as
# in PyTorch. Two hidden layers of 64 neurons with `tanh`, then 2 outputs: one
# score (a *logit*) per class.

# %%
class MLP(nn.Module):
    def __init__(self, sizes):
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        for layer in self.layers:
            # nn.Linear starts with GPT-2's tiny weights (std 0.02), made for layers hundreds
            # wide; with 2 inputs they would barely move the tanh. Std 1/√fan_in keeps each
            # neuron's weighted sum of order 1 instead.
            fan_in = layer.weight.shape[1]
            layer.weight.data = (rng.standard_normal(layer.weight.shape) / np.sqrt(fan_in)).astype(np.float32)

    def forward(self, h: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            h = layer(h)                     # (N, in) @ (in, out) + b -> (N, out)
            if i < len(self.layers) - 1:
                h = h.tanh()                 # the nonlinearity: without it, layers collapse into one
        return h


manual_seed(0)
model = MLP([2, 64, 64, 2])
print(model)
print("parameters:", sum(p.size for p in model.parameters()))  # 2·64+64 + 64·64+64 + 64·2+2 = 4482

# %% [markdown]
# ## A layer's forward and backward
# `nn.Linear` calls `F.linear` (exercises 3.3 and 3.4), one op with its own backward. For N
# inputs at once, x is (N, in) and W is (out, in), as in PyTorch:
#
#     out = x Wᵀ + b                                  (N, in) @ (in, out) + (out,) -> (N, out)
#     dx = g W        dW = gᵀ x        db = Σ_rows g   g = dL/d out, (N, out)
#
# Lesson 02's matmul rule gives the first two (with Wᵀ in the place of B); the bias was
# broadcast over the N rows, so its gradient is the sum over them. Inputs with more axes,
# (B, T, in), are folded into B·T rows first: one large product instead of many small ones.
# A nonlinearity's backward is its slope times the incoming gradient: tanh's is 1 − tanh²
# (lesson 01); relu(a) = max(0, a) has slope 1 where a > 0 and 0 elsewhere (exercise 3.1).

# %% [markdown]
# ## The loss: cross-entropy, from the ops you wrote
# The model gives each class a score, a *logit*. Softmax turns a row of logits z into
# probabilities, p_c = e^{z_c} / Σ_j e^{z_j}, and the loss is how surprised the model is by
# the right class: −log p_y, averaged over the examples. Lesson 04 looks at it closely and
# writes it as one fused op; here it is built from `exp`, `sum`, `log` and `*`, so autograd
# finds its gradient through the ops of lessons 01–02. Subtracting each row's max first
# changes no probability (it cancels in the fraction) and keeps e^z from overflowing.

# %%
def cross_entropy_from_ops(logits: Tensor, targets: np.ndarray) -> Tensor:
    """Mean of −log softmax(logits)[target] over the rows, from elementwise ops and sums."""
    shifted = logits - logits.data.max(axis=1, keepdims=True)           # a constant per row: no gradient
    log_probs = shifted - shifted.exp().sum(axis=1, keepdims=True).log()  # log p, (N, classes)
    picked = log_probs * np.eye(logits.shape[1])[targets]                 # one-hot: only log p_y survives
    return -picked.sum() / len(targets)


print("at uniform logits the loss is ln 2 =", round(float(np.log(2)), 4), "->",
      round(cross_entropy_from_ops(Tensor(np.zeros((4, 2))), np.array([0, 1, 1, 0])).item(), 4))

# %% [markdown]
# ## Training
# Each step: forward, loss, `zero_grad`, `backward`, and `optim.SGD` moves every parameter
# against its gradient. With momentum μ (exercise 3.2) the step follows a running sum of
# gradients, v = μ·v + g, p −= lr·v: directions that persist build up speed, and
# gradients that flip sign from step to step cancel out.

# %%
opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
steps = 200 if FAST else 1500
for step in range(steps + 1):
    loss = cross_entropy_from_ops(model(Tensor(x)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % (steps // 5) == 0:
        accuracy = (model(Tensor(x)).numpy().argmax(1) == y).mean()
        print(f"step {step:5d}  loss {loss.item():.4f}  accuracy {accuracy:.0%}")

# %% [markdown]
# ## The decision boundary
# Ask the model about every point of a grid and colour it by the class it picks.

# %%
grid = np.linspace(-1.2, 1.2, 200, dtype=np.float32)
gx, gy = np.meshgrid(grid, grid)
points = np.stack([gx.ravel(), gy.ravel()], axis=1)
pred = model(Tensor(points)).numpy().argmax(1).reshape(gx.shape)
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.contourf(gx, gy, pred, alpha=0.3, cmap="coolwarm")
ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=8)
ax.set(title="What the MLP learned", xticks=[], yticks=[])
save_figure(fig, "03_decision_boundary.png")

# %% [markdown]
# ## What you now know
# - A layer is one matrix product plus a bias; an MLP stacks layers with nonlinearities.
# - `nn.Module` gathers parameters; `optim.SGD` updates them from their gradients.
# - Cross-entropy is −log of the probability softmax gives the right class; built from
#   small ops, autograd differentiates it for free (lesson 04 fuses it into one op).
# - With enough neurons an MLP bends its boundary around data no line can split.
#
# **Exercises** (`tinyllm exercises hint 3.1`): 3.1 the backward of `relu`
# (`tinyllm/ops/elementwise.py`), 3.2 the SGD step with momentum (`tinyllm/optim.py`),
# 3.3 the forward and 3.4 the backward of `linear` (`tinyllm/functional.py`).
# Try: swap `tanh` for `relu`, or use one hidden layer of 8 neurons, and watch the boundary.
