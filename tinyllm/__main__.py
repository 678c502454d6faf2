"""``python -m tinyllm ...`` is the ``tinyllm`` command, for a Python whose scripts are not on PATH."""
import sys

from .cli import main

if __name__ == "__main__":  # (tools that import every module, such as bench's profiler, must not run it)
    sys.exit(main())
