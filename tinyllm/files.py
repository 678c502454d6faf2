"""Writing files so that a reader never sees half of one.

Write to a temporary file in the same folder, then rename it over the target:
on one file system a rename is atomic, so the target is either the old file or
the complete new one, even if the program is killed mid-write.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable


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
