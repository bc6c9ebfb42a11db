"""``seqlayers.info()``: what this installation can run, and why not."""

from __future__ import annotations

import platform
import sys
from typing import TextIO

import torch

from .ops.dispatch import ENV_VARS, registered_backends


def _module_version(name: str) -> str:
    try:
        module = __import__(name)
    except Exception as exc:  # report any import failure, never raise
        return f"not importable ({type(exc).__name__}: {exc})"
    return getattr(module, "__version__", "unknown version")


def info_lines() -> list[str]:
    """The report printed by :func:`info`, as lines."""
    from . import __version__

    lines = [
        f"seqlayers {__version__}",
        f"python    {platform.python_version()} ({sys.platform})",
        f"torch     {torch.__version__} (CUDA build: {torch.version.cuda or 'no'})",
        f"triton    {_module_version('triton')}",
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            lines.append(f"device    cuda:{i} {torch.cuda.get_device_name(i)}")
    else:
        lines.append("device    cpu only (no CUDA device visible)")
    for op, env in ENV_VARS.items():
        lines.append(f"{op} backends (override with ${env}):")
        for backend in registered_backends(op):
            ok, reason = backend.is_available()
            status = "available" if ok else f"unavailable: {reason}"
            auto = "" if backend.auto else " [explicit only]"
            lines.append(f"  {backend.name:10s} {status}{auto}")
    return lines


def info(file: TextIO | None = None) -> None:
    """Print versions, devices and every backend with its availability (and why not).

    Example:
        >>> import seqlayers
        >>> seqlayers.info()  # doctest: +SKIP
    """
    print("\n".join(info_lines()), file=file if file is not None else sys.stdout)
