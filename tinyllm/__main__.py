"""``python -m tinyllm ...`` is the ``tinyllm`` command, for a Python whose scripts are not on PATH."""
import sys

from .cli import main

sys.exit(main())
