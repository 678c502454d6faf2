"""The pictures: each attention map drawn is the model's own weights, each graph box its tensor;
files are written whole."""
import io

import numpy as np
import pytest

import tinyllm
from tinyllm import Tensor, no_grad
from tinyllm.model import GPT, GPTConfig
from tinyllm.plots import plot_attention_maps, plot_graph, plot_losses


def test_every_head_is_drawn_from_its_own_weights_and_labelled_when_short():
    tinyllm.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=3, n_embd=12))
    maps = model.attention_maps(np.array([[1, 2, 3, 4, 5]]))
    fig = plot_attention_maps(maps, list("abcde"), title="five")
    assert len(fig.axes) == 2 * 3
    for k, ax in enumerate(fig.axes):  # row-major: layer k // 3, head k % 3
        np.testing.assert_array_equal(ax.images[0].get_array(), maps[k // 3][0, k % 3])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list("abcde")   # left column
    assert [t.get_text() for t in fig.axes[3].get_xticklabels()] == list("abcde")   # bottom row
    assert fig.axes[1].get_yticklabels() == [] and fig.axes[0].get_xticklabels() == []
    too_many = plot_attention_maps(maps, list("abcde"), max_labels=4)
    assert too_many.axes[0].get_yticklabels() == []


def test_the_loss_plot_is_a_whole_png_and_leaves_no_temporary_file(tmp_path):
    history = {"step": [0, 10, 20], "loss": [4.0, 3.0, 2.5], "eval_step": [0, 20], "train": [4.1, 2.4],
               "val": [4.2, 2.6]}
    plot_losses(history, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_files_written_whole_get_the_permissions_of_a_plain_open(tmp_path):
    from tinyllm.files import write_atomically
    (tmp_path / "plain.bin").write_bytes(b"x")
    write_atomically(tmp_path / "whole.bin", lambda f: f.write(b"x"))
    mode = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert mode["whole.bin"] == mode["plain.bin"]


def test_the_graph_is_drawn_with_each_tensor_its_op_value_and_gradient_and_an_arrow_per_input():
    a, b, c = (Tensor(v, requires_grad=True) for v in (2.0, -3.0, 10.0))
    e = a * b
    d = (e + c).retain_grad()
    L = d ** 2
    L.backward(retain_graph=True)                       # the graph stays to be drawn
    fig = plot_graph(L, {"a": a, "b": b, "d": d, "L": L})
    fig.savefig(io.BytesIO(), format="png")             # arrows are placed against their boxes when drawn
    ax = fig.axes[0]
    boxes = {t.get_text(): t.get_position() for t in ax.texts if t.get_text()}
    assert boxes == {"a = leaf\ndata 2\ngrad -24": (0, 0.5), "b = leaf\ndata -3\ngrad 16": (0, -0.5),
                     "mul\ndata -6": (1, 0.5), "leaf\ndata 10\ngrad 8": (1, -0.5),   # e (no grad kept), c
                     "d = add\ndata 4\ngrad 8": (2, 0.5), "constant\ndata 2": (2, -0.5),
                     "L = pow\ndata 16": (3, 0)}    # the output, rightmost; like e, it keeps no .grad
    arrows = [t for t in ax.texts if not t.get_text()]
    assert len(arrows) == 6                              # a, b -> mul; mul, c -> add; add, 2 -> pow


def test_a_graph_of_arrays_shows_shapes_and_a_freed_or_huge_graph_is_refused():
    x, w = Tensor(np.ones((2, 3))), Tensor(np.full((3, 1), 0.5), requires_grad=True)
    y = (x @ w).tanh().sum()
    texts = sorted(t.get_text() for t in plot_graph(y, {"x": x}).axes[0].texts if t.get_text())
    assert texts == ["leaf\nshape (3, 1)", "matmul\nshape (2, 1)", "sum\ndata 1.81",
                     "tanh\nshape (2, 1)", "x = constant\nshape (2, 3)"]
    with pytest.raises(ValueError, match="the graph has 5 tensors, more than max_nodes=4"):
        plot_graph(y, max_nodes=4)
    y.backward()
    with pytest.raises(ValueError, match="freed by backward"):
        plot_graph(y)
    with no_grad():                                      # nothing recorded: one box, and no complaint
        z = x @ w
    assert [t.get_text() for t in plot_graph(z).axes[0].texts] == ["matmul\nshape (2, 1)"]
