"""Pictures where a person would rather look than read numbers: loss curves and attention maps.

The figures are made with matplotlib's object API (``Figure``), not ``pyplot``: no
window opens, no global backend is switched, and nothing is left open afterwards,
so training can redraw its loss curve every evaluation, also on a machine without
a display. matplotlib is imported only when a picture is drawn.
"""
from __future__ import annotations

import os
from typing import Sequence

from .backend import to_numpy
from .files import write_atomically


def save_png(fig, path: str | os.PathLike) -> None:
    """Write ``fig`` as a PNG, atomically: a reader (or an interrupted run) never sees half a file."""
    if fig.get_layout_engine() is None:   # a figure that chose its own layout keeps it
        fig.tight_layout()
    write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=100))


def plot_losses(history: dict[str, list], path: str | os.PathLike) -> None:
    """The training loss of logged batches and the train/val estimates, against the step, as a PNG."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(history["step"], history["loss"], alpha=0.5, label="train (batch)")
    ax.plot(history["eval_step"], history["train"], "o-", label="train (estimate)")
    ax.plot(history["eval_step"], history["val"], "o-", label="validation")
    ax.set(xlabel="step", ylabel="cross-entropy loss (nats/token)", title="Training loss")
    ax.legend()
    save_png(fig, path)


def plot_attention_maps(maps: Sequence, tokens: Sequence[str] | None = None, title: str = "",
                        max_labels: int = 32):
    """One small picture per head and layer of ``GPT.attention_maps``: returns the Figure.

    ``maps``: n_layer arrays of (1, n_head, T, T) weights (on either device). In each
    picture row t is the position reading, column s the position read, brighter is
    more weight; above the diagonal it is 0, the causal mask. ``tokens`` (T strings)
    label the axes of the outer pictures when there are at most ``max_labels``.
    """
    from matplotlib.figure import Figure
    maps = [to_numpy(m)[0] for m in maps]  # n_layer arrays of (n_head, T, T)
    n_layer, (n_head, T, _) = len(maps), maps[0].shape
    # "constrained" leaves room for the title above the heads' titles (tight_layout does not)
    fig = Figure(figsize=(2.2 * n_head, 2.2 * n_layer), layout="constrained")
    axes = fig.subplots(n_layer, n_head, squeeze=False)
    labels = [repr(t)[1:-1] for t in tokens] if tokens is not None and len(tokens) <= max_labels else None
    for layer in range(n_layer):
        for head in range(n_head):
            ax = axes[layer, head]
            ax.imshow(maps[layer][head], cmap="viridis", vmin=0, vmax=1)
            ax.set(xticks=[], yticks=[])
            if labels and head == 0:                # the reading token, left of each row
                ax.set_yticks(range(T), labels, fontsize=5)
            if labels and layer == n_layer - 1:    # the token read, under each column
                ax.set_xticks(range(T), labels, fontsize=5, rotation=90)
            if layer == 0:
                ax.set_title(f"head {head}", fontsize=9)
            if head == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
