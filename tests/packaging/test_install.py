"""Installing: wheels carry the native sources; only SEQLAYERS_BUILD_NATIVE=1 compiles at install.

Slow (each builds a wheel with pip in an isolated build environment): ``pytest -m slow``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _build_wheel(tmp_path: Path, **env) -> tuple[Path, Path]:
    """``pip wheel`` of a copy of the repository; returns the wheel and the extension cache used."""
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "runs",
                                                                 "__pycache__", ".pytest_cache", ".hypothesis"))
    cache = tmp_path / "extensions"
    environ = {k: v for k, v in os.environ.items() if k != "SEQLAYERS_BUILD_NATIVE"}
    environ.update(TORCH_EXTENSIONS_DIR=str(cache), **env)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(source), "-w", str(tmp_path / "wheels")]
    result = subprocess.run(cmd, env=environ, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("seqlayers-*.whl")
    return wheel, cache


def test_wheel_carries_sources_and_compiles_nothing(tmp_path):
    wheel, cache = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "seqlayers/_csrc/vandermonde.cpp" in names and "seqlayers/_csrc/cuda/vandermonde.cu" in names
    assert "seqlayers/ops/conv/policy.json" in names
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.skipif(shutil.which("ninja") is None and shutil.which(os.environ.get("CXX", "c++")) is None,
                    reason="needs ninja and a C++ compiler")
def test_build_native_at_install(tmp_path):
    _, cache = _build_wheel(tmp_path, SEQLAYERS_BUILD_NATIVE="1")
    assert list(cache.glob("seqlayers_native_*/seqlayers_native_*.so"))
