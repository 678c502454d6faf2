"""Files written whole, and archives of arrays read with their sizes checked first.

Writing: to a temporary file in the same folder, then a rename over the target: on one
file system a rename is atomic, so the target is either the old file or the complete new
one, even if the program is killed mid-write.

Reading an ``.npz`` (a zip of ``.npy`` arrays) from a stranger: ``read_npz`` looks at every
member's header before reading any data. A member must be stored, not compressed (a
compressed one may inflate to any size: a "zip bomb"), must hold exactly the bytes its own
header declares, and must not hold Python objects (which ``.npy`` keeps as a pickle).
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from math import prod
from pathlib import Path
from typing import IO, Callable

import numpy as np


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private (0600); give what open() would
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C included: leave no temporary file behind
        os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    """The process's umask (the permission bits new files do not get); reading it means setting it."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def npz_shapes(path: str | os.PathLike, max_bytes: dict[str, int] | None = None) -> dict[str, tuple]:
    """Each array's shape in the ``.npz`` at ``path``, read from the headers alone, after checking
    every member (see the module's docstring); ``max_bytes`` bounds the named members' sizes.
    Raises ``ValueError`` naming the member and the problem."""
    shapes = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename[:-len(".npy")] if info.filename.endswith(".npy") else info.filename
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"member {name} is compressed; checkpoints store arrays uncompressed, "
                                 "and a compressed member can inflate without bound")
            with archive.open(info) as f:
                major, _ = np.lib.format.read_magic(f)
                read_header = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}
                if major not in read_header:
                    raise ValueError(f"member {name}: .npy version {major} is not one numpy writes for arrays")
                shape, _, dtype = read_header[major](f)
                header_bytes = f.tell()
            if dtype.hasobject:
                raise ValueError(f"member {name} holds Python objects (a pickle), which are never loaded")
            data_bytes = prod(shape) * dtype.itemsize
            if info.file_size != header_bytes + data_bytes:
                raise ValueError(f"member {name} holds {info.file_size - header_bytes} bytes, and its header "
                                 f"declares {shape} {dtype}: {data_bytes} bytes")
            if max_bytes and data_bytes > max_bytes.get(name, data_bytes):
                raise ValueError(f"member {name} holds {data_bytes:,} bytes, more than the {max_bytes[name]:,} "
                                 "allowed")
            shapes[name] = shape
    return shapes
