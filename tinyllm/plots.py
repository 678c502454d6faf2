"""Pictures where a person would rather look than read numbers: loss curves, attention maps
and the graph of ops that ``backward`` walks.

The figures are made with matplotlib's object API (``Figure``), not ``pyplot``: no
window opens, no global backend is switched, and nothing is left open afterwards,
so training can redraw its loss curve every evaluation, also on a machine without
a display. matplotlib is imported only when a picture is drawn.
"""
from __future__ import annotations

import os
from collections import Counter
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


GRAPH_COLOURS = {"output": "#bde0b8", "leaf": "#f6c89f", "constant": "#dddddd", "op": "#bcd4f0"}


def plot_graph(output, names: dict | None = None, max_nodes: int = 60):
    """The graph of ops that made ``output``, as ``backward`` walks it: returns the Figure.

    One box per tensor, inputs on the left and ``output`` on the right, an arrow from each
    input to the op that used it. A box shows the op that made the tensor ("leaf" for one
    that requires grad, "constant" otherwise), its name from ``names`` ({"w": w, ...}), and
    its value and ``.grad`` when it holds one number, else its shape. Ops record a graph only
    when an input requires grad (and not under ``no_grad``). Draw it before ``backward()``,
    or after ``backward(retain_graph=True)``: a plain backward frees the graph as it goes.
    """
    from matplotlib.figure import Figure
    names = {id(t): name for name, t in (names or {}).items()}
    order = output._topological_order()          # what backward visits, every input before its uses
    nodes = {id(t): t for t in order}
    nodes.update({id(p): p for t in order for p in t._parents})   # and the constants, which it skips
    if any(not t.is_leaf and not t._parents for t in nodes.values()):   # an op's result, its inputs let go
        raise ValueError("this graph was freed by backward(): draw it before, or after backward(retain_graph=True)")
    if len(nodes) > max_nodes:
        raise ValueError(f"the graph has {len(nodes)} tensors, more than max_nodes={max_nodes} can show legibly")

    # Column: the longest path from an input, so every arrow points right; an input then
    # moves right to sit just before its first consumer. Within a column, boxes sit near
    # the mean height of the boxes they feed, which keeps arrows short (ops above inputs on a tie).
    column = {key: 0 for key in nodes}
    for t in order:
        column[id(t)] = 1 + max((column[id(p)] for p in t._parents), default=-1)
    consumers: dict[int, list[int]] = {key: [] for key in nodes}
    for key, t in nodes.items():
        for p in t._parents:
            consumers[id(p)].append(key)
    for key, t in nodes.items():
        if not t._parents and consumers[key]:
            column[key] = min(column[c] for c in consumers[key]) - 1
    row: dict[int, float] = {}
    for col in range(column[id(output)], -1, -1):
        here = [key for key in nodes if column[key] == col]
        here.sort(key=lambda key: (sum(row[c] for c in consumers[key]) / max(len(consumers[key]), 1),
                                   bool(nodes[key]._op)))
        for i, key in enumerate(here):
            row[key] = i - (len(here) - 1) / 2

    n_cols, n_rows = column[id(output)] + 1, max(Counter(column.values()).values())
    fig = Figure(figsize=(1.2 + 2.2 * n_cols, 0.6 + 1.0 * n_rows))
    ax = fig.subplots()
    ax.set(xlim=(-0.6, n_cols - 0.4), ylim=(-n_rows / 2, n_rows / 2))
    ax.axis("off")
    boxes = {}
    for key, t in nodes.items():
        kind = t._op or ("leaf" if t.requires_grad else "constant")
        lines = [f"{names[key]} = {kind}" if key in names else kind]
        if t.size == 1:
            lines.append(f"data {t.item():.4g}")
            if t.grad is not None:
                lines.append(f"grad {t.grad.item():.4g}")
        else:
            lines.append(f"shape {t.shape}")
        colour = GRAPH_COLOURS["output" if t is output else kind if kind in GRAPH_COLOURS else "op"]
        boxes[key] = ax.text(column[key], row[key], "\n".join(lines), ha="center", va="center", fontsize=8,
                             family="monospace", bbox=dict(boxstyle="round", fc=colour, ec="#555555"))
    for key, t in nodes.items():
        for p in t._parents:   # from the input's right edge to the consumer's left edge
            ax.annotate("", xy=(0, 0.5), xycoords=boxes[key], xytext=(1, 0.5), textcoords=boxes[id(p)],
                        arrowprops=dict(arrowstyle="->", color="#555555"))
    return fig
