"""A tiny MLP built from Tensors alone learns a two-arm spiral with plain SGD."""
import numpy as np

from tinyllm import Tensor, functional as F


def spiral(n_per_class: int, rng):
    t = np.linspace(0.25, 3 * np.pi, n_per_class)
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, 0.01, (2 * n_per_class, 2))
    y = np.repeat([0, 1], n_per_class)
    return x, y


def test_mlp_fits_a_spiral():
    rng = np.random.default_rng(0)
    x, y = spiral(100, rng)
    sizes = [2, 64, 64, 2]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params += [Tensor(rng.normal(0, 1 / np.sqrt(fan_in), (fan_in, fan_out)), requires_grad=True),
                   Tensor(np.zeros(fan_out), requires_grad=True)]

    def forward(inputs):
        h = Tensor(inputs)
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = h.tanh()
        return h

    start_loss = None
    for step in range(1500):
        loss = F.cross_entropy(forward(x), y)
        start_loss = start_loss or loss.item()
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:  # plain SGD
            p.data -= 0.5 * p.grad.data
    accuracy = (forward(x).numpy().argmax(1) == y).mean()
    assert loss.item() < start_loss / 5
    assert accuracy > 0.95, accuracy
