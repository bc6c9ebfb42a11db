"""The CUDA sources of csrc/ compile with nvcc to object code (where nvcc exists; nothing runs).

A CPU-only torch wheel ships the c10/cuda headers but not the one header its CMake generates
(``c10/cuda/impl/cuda_cmake_macros.h``); the test supplies an empty stand-in for it in that case.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from seqlayers import _native

CUDA_SOURCES = sorted((_native.SOURCE_DIR / "cuda").glob("*.cu"))
NVCC = shutil.which("nvcc")


def _include_flags(tmp_path: Path) -> list[str]:
    from torch.utils.cpp_extension import include_paths

    paths = [Path(p) for p in include_paths()]
    generated = Path("c10/cuda/impl/cuda_cmake_macros.h")
    if not any((p / generated).exists() for p in paths):
        (tmp_path / generated).parent.mkdir(parents=True)
        (tmp_path / generated).write_text("#pragma once\n")
        paths.append(tmp_path)
    return [f"-I{p}" for p in paths]


def test_there_are_cuda_sources():
    assert CUDA_SOURCES, f"no .cu files under {_native.SOURCE_DIR / 'cuda'}"


@pytest.mark.skipif(NVCC is None, reason="nvcc not on PATH")
@pytest.mark.parametrize("source", CUDA_SOURCES, ids=lambda p: p.name)
def test_compiles_with_nvcc(source, tmp_path):
    from torch.utils.cpp_extension import COMMON_NVCC_FLAGS

    cmd = [NVCC, "-c", str(source), "-o", str(tmp_path / "out.o"), "-std=c++20", "-O3",
           "-arch=sm_80", "-Xcompiler", "-fPIC", "-DTORCH_EXTENSION_NAME=seqlayers_compile_check",
           *COMMON_NVCC_FLAGS, *_include_flags(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert result.returncode == 0, "\n".join(errors[:20]) or result.stderr[-3000:]
    assert (tmp_path / "out.o").stat().st_size > 0
