"""benchmarks/robustness/ptd_table.py writes both of its tables (a tiny run: N = 2, 4)."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ptd_table_writes_the_default_and_the_more_rows(tmp_path):
    out = tmp_path / "ptd.md"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "robustness" / "ptd_table.py"), "--sizes", "2,4",
         "--more", "4:2:20", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert "--more 4:2:20" in text  # the command that wrote it
    rows = [line for line in text.splitlines() if line.startswith("| 2 |") or line.startswith("| 4 |")]
    assert len(rows) == 3  # N = 2 and 4 with the defaults, N = 4 again with 2 starts of 20 steps
    assert rows[2].startswith("| 4 | 0.098 | 2 | 20 |")
    assert text.count("| N | eps | starts | steps |") == 2
