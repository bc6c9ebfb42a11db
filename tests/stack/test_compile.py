"""Every layer under torch.compile, torch.export and torch._dynamo.explain, in a fresh process each.

The ops are custom ops whose backend is chosen when they run, so one compiled graph serves every
backend: each layer is compiled once and run under each CPU backend (``torch``, ``naive``, and
``native`` where the extension builds). Tolerances: relative L2 error 1e-5 for outputs and
gradients in float32 (measured up to about 3e-6).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqlayers import _native

from .layers import CASES

REPO = Path(__file__).resolve().parents[2]
TOL = 1e-5


@pytest.fixture(scope="module")
def backends():
    names = ["torch", "naive"]
    if _native.LIBRARY.load(build=True)[0]:
        names.append("native")
    return names


@pytest.mark.parametrize("case", sorted(CASES))
def test_compile_export_and_explain(case, backends):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "tests.stack.compile_check", case, *backends],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for name, result in report.items():
        assert not (isinstance(result, dict) and "error" in result and "trace" in result), (
            f"{name}: {result['error']}\n{result['trace']}")
    assert set(report["fullgraph"]) == set(backends)
    for backend, err in report["fullgraph"].items():
        assert err <= TOL, f"compiled vs eager with {backend}: {err:.2e}"
    assert report["explain"] == 0, "graph breaks"
    assert report["dynamic"]["graphs"] <= 2 and report["dynamic"]["error"] <= TOL, report["dynamic"]
    for backend, err in report["export"].items():
        assert err <= TOL, f"exported vs eager with {backend}: {err:.2e}"
