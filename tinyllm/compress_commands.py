"""``tinyllm compress`` and ``tinyllm decompress``: any file, coded with a model's predictions.

    tinyllm compress --ckpt out notes.txt            # writes notes.txt.tlz, and compares gzip, bz2, xz
    tinyllm decompress --ckpt out notes.txt.tlz      # writes notes.txt again (refuses to overwrite)

The coding is tinyllm/compress.py's; decompress needs the same model, tokenizer and device.
"""
from __future__ import annotations

import argparse
import bz2
import gzip
import lzma
import sys
import time
from pathlib import Path

SUFFIX = ".tlz"


def add_compress_commands(commands) -> None:
    """The ``compress`` and ``decompress`` subcommands of ``tinyllm`` (cli.py adds them)."""
    from .backend import default_device
    from .checkpoint import CHECKPOINT_HELP
    for name, helps in (("compress", "compress any file losslessly with a model's predictions (arithmetic coding)"),
                        ("decompress", "give back a file 'tinyllm compress' wrote, with the same model")):
        command = commands.add_parser(
            name, help=helps, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
            description=helps + ". The model predicts each token, and an arithmetic coder spends -log2 p bits "
                        "on it; bytes the tokenizer cannot encode are escaped. Decompressing needs the same "
                        "checkpoint, the same device, and in practice the same machine: the predictions must "
                        "match to the last bit, and a file whose bytes do not come back exactly is refused, "
                        "never returned wrong.")
        command.add_argument("input", help="the file to read")
        command.add_argument("-o", "--output", default=None,
                             help=f"where to write (None: the input with {SUFFIX} added, or removed)")
        command.add_argument("--ckpt", default="out", help=CHECKPOINT_HELP)
        command.add_argument("--device", default=default_device(), help="cpu or cuda; decompress on the device "
                                                                        "that compressed")
        command.add_argument("-f", "--force", action="store_true", help="overwrite the output if it exists")
        if name == "compress":
            command.add_argument("--streams", type=int, default=None,
                                 help="pieces coded side by side, one model batch row each: more is faster and a "
                                      "little larger (None: one per 512 tokens, at most 64)")
        command.set_defaults(run=_compress if name == "compress" else _decompress)


def _output_path(args: argparse.Namespace, compressing: bool) -> Path:
    source = Path(args.input)
    if args.output:
        out = Path(args.output)
    elif compressing:
        out = source.with_name(source.name + SUFFIX)
    elif source.suffix == SUFFIX:
        out = source.with_suffix("")
    else:
        raise ValueError(f"{source} does not end in {SUFFIX}: say where to write with -o")
    if out.exists() and not args.force:
        raise ValueError(f"{out} exists; pass -f to overwrite it, or -o to write elsewhere")
    return out


def _progress(action: str):
    """A progress line on a terminal (KB done, KB/s, bits per byte so far); nothing in a pipe."""
    if not sys.stderr.isatty():
        return None
    started = time.perf_counter()

    def report(done: int, total: int, bits: int) -> None:
        seconds = max(time.perf_counter() - started, 1e-9)
        print(f"\r  {action} {done / 1e3:,.1f}/{total / 1e3:,.1f} KB  {done / 1e3 / seconds:.1f} KB/s  "
              f"{bits / max(done, 1):.3f} bits/byte", end="", file=sys.stderr, flush=True)
    return report


def _load(args: argparse.Namespace):
    from .checkpoint import load_checkpoint
    source = Path(args.input)
    if not source.is_file():
        raise FileNotFoundError(f"no file at {source}")
    out = _output_path(args, compressing=args.run is _compress)
    ckpt = load_checkpoint(args.ckpt, device=args.device)
    return source.read_bytes(), out, ckpt["model"], ckpt["tokenizer"]


def _compress(args: argparse.Namespace) -> int:
    from .compress import compress
    from .files import write_atomically
    data, out, model, tok = _load(args)
    started = time.perf_counter()
    blob = compress(model, tok, data, args.streams, progress=_progress("compressed"))
    seconds = time.perf_counter() - started
    write_atomically(out, lambda f: f.write(blob))
    print("\r\x1b[K" if sys.stderr.isatty() else "", end="", file=sys.stderr)
    print(f"wrote {out}: {len(data):,} bytes -> {len(blob):,} ({_bits(len(blob), len(data))}) "
          f"in {seconds:.1f} s, {len(data) / 1e3 / max(seconds, 1e-9):.1f} KB/s")
    others = {"gzip -9": gzip.compress(data, 9), "bz2 -9": bz2.compress(data, 9),
              "xz -9e": lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)}
    print("  the same file with " + ", ".join(f"{name}: {len(b):,} ({_bits(len(b), len(data))})"
                                                for name, b in others.items()))
    return 0


def _decompress(args: argparse.Namespace) -> int:
    from .compress import decompress
    from .files import write_atomically
    blob, out, model, tok = _load(args)
    started = time.perf_counter()
    data = decompress(model, tok, blob, progress=_progress("decompressed"))
    seconds = time.perf_counter() - started
    write_atomically(out, lambda f: f.write(data))
    print("\r\x1b[K" if sys.stderr.isatty() else "", end="", file=sys.stderr)
    print(f"wrote {out}: {len(data):,} bytes (checked against the original's sha256) in {seconds:.1f} s, "
          f"{len(data) / 1e3 / max(seconds, 1e-9):.1f} KB/s")
    return 0


def _bits(size: int, original: int) -> str:
    return f"{8 * size / original:.3f} bits/byte" if original else "empty input"
