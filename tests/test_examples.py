"""The short examples run as a new user would run them (the training ones are too long for CI)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["backends.py", "drop_in.py", "generate.py"])
def test_example_runs(name, tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()
