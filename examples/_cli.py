"""Command-line helpers shared by the examples: the LRA scripts' own (``benchmarks/lra/cli.py``:
thread choice, progress with a rate and the time left, one-line user errors with exit code 2).

The examples run from a clone of the repository, so its root is put on the path here.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.lra.cli import (Progress, UserError, add_common_flags, run, set_threads,  # noqa: E402,F401
                                user_errors)
