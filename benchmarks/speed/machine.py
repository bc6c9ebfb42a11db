"""One line naming the machine a CPU benchmark ran on: model, vector ISA, threads and load.

CPU speed ratios depend on the vector unit (the native kernels are compiled per ISA) and on what
else runs, so every CPU table states both.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
    except OSError:
        pass
    return model, flags


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` says."""
    return _cpuinfo()[0]


def vector_isa() -> str:
    """``"AVX-512"``, ``"AVX2"``, ``"NEON"`` or ``"baseline"``: the widest vector unit present."""
    _, flags = _cpuinfo()
    if "avx512f" in flags:
        return "AVX-512"
    if "avx2" in flags and "fma" in flags:
        return "AVX2"
    if {"asimd", "neon"} & flags or platform.machine() in ("arm64", "aarch64"):
        return "NEON"
    return "baseline"


def describe(threads: int) -> str:
    """E.g. ``"AMD EPYC (AVX2), 1 thread, load average 2.1 / 1.9 / 1.5"``."""
    model = cpu_model()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{model} ({vector_isa()}), {threads} thread{'s' if threads != 1 else ''}, load average {load}"
