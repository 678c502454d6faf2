"""The tinyllm command line: tokenizer train / encode / decode, help, and errors."""
import subprocess
import sys

import pytest

from tinyllm.cli import main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "tokenizer" in out and "train" in out


def test_python_dash_m_tinyllm_is_the_command():
    import tinyllm
    result = subprocess.run([sys.executable, "-m", "tinyllm", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.split() == ["tinyllm", tinyllm.__version__], result.stderr


def test_every_option_of_every_command_says_what_it_does():
    import argparse
    from tinyllm.cli import build_parser

    def parsers(parser):
        yield parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from parsers(sub)
    undocumented = [(p.prog, a.dest) for p in parsers(build_parser()) for a in p._actions
                    if not isinstance(a, argparse._SubParsersAction) and len(a.help or "") < 10]
    assert undocumented == []


def test_a_reader_that_leaves_early_stops_the_command_quietly():
    # `tinyllm ... | head`: once head has read enough, the next write finds the pipe closed
    reader = subprocess.Popen([sys.executable, "-m", "tinyllm.cli", "exercises", "list"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.close()   # gone before the command writes its first line
    err = reader.stderr.read().decode()
    assert reader.wait() == 1 and err == "", err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is a POSIX signal")
def test_ctrl_c_stops_a_command_without_a_traceback(tmp_path):
    import signal

    from tinyllm.checkpoint import save_checkpoint
    from tinyllm.model import GPT, GPTConfig
    from tinyllm.tokenizer import CharTokenizer
    tok = CharTokenizer.train("abc\n")
    save_checkpoint(tmp_path, GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=1,
                                             n_embd=8)), None, tok, step=0)
    sampling = subprocess.Popen([sys.executable, "-m", "tinyllm.cli", "sample", "--ckpt", str(tmp_path),
                                 "--max-new-tokens", "10000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert sampling.stdout.read(1), sampling.communicate()[1].decode()   # it is streaming text
    sampling.send_signal(signal.SIGINT)
    err = sampling.communicate(timeout=60)[1].decode()
    assert sampling.returncode == 130 and err.strip() == "interrupted", err


def test_tokenizer_train_encode_decode(tmp_path, capsys):
    data = tmp_path / "corpus.txt"
    data.write_text("the cat sat on the mat. the dog sat on the log. " * 40, encoding="utf-8")
    out = tmp_path / "tok.json"
    assert main(["tokenizer", "train", "--data", str(data), "--vocab-size", "270", "--out", str(out),
                 "--special", "<|endoftext|>"]) == 0
    assert out.exists() and "vocabulary of 270" in capsys.readouterr().out
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "the cat sat"]) == 0
    pieces_line, ids_line = capsys.readouterr().out.splitlines()
    assert pieces_line.replace("|", "") == "the cat sat"
    ids = [int(i) for i in ids_line.split("[")[1].rstrip("]").split(",")]
    assert main(["tokenizer", "decode", "--tokenizer", str(out), *map(str, ids)]) == 0
    assert capsys.readouterr().out == "the cat sat\n"
    # "é" is two bytes the merges never joined: each piece shows its byte, not U+FFFD
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "--allowed-special", "all", "é<|endoftext|>"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "b'\\xc3'|b'\\xa9'|<|endoftext|>"
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "é<|endoftext|>"]) == 2
    assert "(tinyllm tokenizer encode: --allowed-special all / none)" in capsys.readouterr().err


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["tokenizer", "decode", "--tokenizer", str(tmp_path / "none.json"), "1"]) == 2
    assert "no tokenizer file" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("not a directory")
    assert main(["train", "--out", str(tmp_path / "a_file"), "--max-iters", "1"]) == 2
    assert "a_file is a file; it must be a directory" in capsys.readouterr().err


def test_a_python_without_pydoc_data_is_told_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)   # as on Alpine without python3-pydoc
    assert main(["train", "--out", str(tmp_path), "--max-iters", "1"]) == 2
    err = capsys.readouterr().err
    assert "this Python has no pydoc_data" in err and "--data FILE" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())   # nothing written


def test_data_parallel_without_mpi4py_says_what_to_install(monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "mpi4py", None)          # as if it were not installed
    assert main(["train", "--max-iters", "1", "--nproc", "2"]) == 2
    assert 'pip install -e ".[dist]"' in capsys.readouterr().err
    from tinyllm.distributed import world_from_environment
    monkeypatch.setenv("PMI_SIZE", "2")                        # a rank of two, started by mpiexec
    with pytest.raises(RuntimeError, match=r"mpi4py is not installed: pip install -e \".\[dist\]\""):
        world_from_environment()
    assert main(["train", "--max-iters", "1", "--nproc", "0"]) == 2
    assert "--nproc must be at least 1, got 0" in capsys.readouterr().err
