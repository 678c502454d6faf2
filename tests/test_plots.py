"""The pictures: each attention map drawn is the model's own weights; files are written whole."""
import numpy as np

import tinyllm
from tinyllm.model import GPT, GPTConfig
from tinyllm.plots import plot_attention_maps, plot_losses


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
