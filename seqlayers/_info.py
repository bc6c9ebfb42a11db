"""``seqlayers.info()``: what this installation can run, and why not."""

from __future__ import annotations

import platform
import sys
from typing import TextIO

import torch

from .ops import policy
from ._version import __version__
from .ops.dispatch import _OPS, explain, registered_backends

POLICY_LENGTHS = (1024, 4096, 16384, 65536)
POLICY_DTYPES = (torch.float32, torch.bfloat16)
POLICY_BATCH, POLICY_FEATURES = 16, 768  # the benchmark's B and H, as broadcast views


def _module_version(name: str) -> str:
    try:
        module = __import__(name)
    except Exception as exc:  # report any import failure, never raise
        return f"not importable ({type(exc).__name__}: {exc})"
    return getattr(module, "__version__", "unknown version")


def info_lines() -> list[str]:
    """The report printed by :func:`info`, as lines."""
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
    for op in _OPS.values():
        lines.append(f"{op.name} backends (override with ${op.env_var}):")
        for backend in registered_backends(op.name):
            ok, reason = backend.is_available()
            status = "available" if ok else f"unavailable: {reason}"
            auto = "" if backend.auto else " [explicit only]"
            lines.append(f"  {backend.name:10s} {status}{auto}")
    return lines + native_lines() + policy_lines()


def native_lines() -> list[str]:
    """State of the native extension (never builds it)."""
    from . import _native

    lib = _native.LIBRARY
    ok, reason = lib.status()
    if not ok:
        state = f"unavailable: {reason}"
    elif lib.has_kernel("native_vandermonde_forward", "CPU"):
        state = "loaded"
    else:
        state = "built, loads on first use" if lib.is_built() else "not built (python -m seqlayers._native build)"
    kinds = "C++ and CUDA" if lib.with_cuda else "C++"
    return [f"native extension ({kinds}): {state}", f"  sources {lib.source_dir}", f"  build   {lib.build_directory()}"]


def _policy_devices() -> list[torch.device]:
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda", torch.cuda.current_device()))
    return devices


def _views(device: torch.device, dtype: torch.dtype, L: int) -> tuple:
    """``long_conv`` arguments of shape (16, 768, L) and (768, L) that allocate one row each."""
    u = torch.zeros(1, 1, L, dtype=dtype, device=device).expand(POLICY_BATCH, POLICY_FEATURES, L)
    k = torch.zeros(1, L, device=device).expand(POLICY_FEATURES, L)
    return u, k, None


def _policy_state() -> list[str]:
    table = _OPS["long_conv"].table
    table_text = f"{table.path} ({len(table.entries)} entries)" if table is not None else "none"
    if policy.autotune_enabled():
        cache = policy.timing_cache()
        state = (f"on: timing cache {cache.path} ({len(cache.decisions)} decisions for "
                 f"{policy.versions()})")
    else:
        state = (f"off (${policy.AUTOTUNE_ENV}=1 or seqlayers.ops.set_autotune(True) turns it on; "
                 f"its cache would be {policy.cache_path()})")
    return [f'"auto" policy for long_conv: autotune {state}', f"  shipped table: {table_text}"]


def policy_lines() -> list[str]:
    """What ``long_conv(backend="auto")`` picks for typical shapes and why the others are skipped.

    Shapes: B=16, H=768 (broadcast views of one row, so nothing big is allocated), L = 1K, 4K,
    16K, 64K, float32 and bfloat16, on the CPU and the current CUDA device. Never times a backend
    or builds native code: decisions come from the timing cache, the shipped table or priority.
    """
    try:
        lines = _policy_state()
    except Exception as exc:  # info() reports, never raises
        lines = [f'"auto" policy for long_conv: error: {type(exc).__name__}: {exc}']
    lines.append(f"  decisions for B={POLICY_BATCH}, H={POLICY_FEATURES}, Lk = L (nothing timed):")
    reasons: dict[str, int] = {}
    for device in _policy_devices():
        for dtype in POLICY_DTYPES:
            for L in POLICY_LENGTHS:
                lines.append("    " + _decision_line(device, dtype, L, reasons))
    lines += [f"    [{i}] {reason}" for reason, i in reasons.items()]
    return lines


def _decision_line(device: torch.device, dtype: torch.dtype, L: int, reasons: dict[str, int]) -> str:
    where = f"{policy.device_name(device)} {policy.dtype_name(dtype):8s} L={L:<6d}"
    try:
        decision = explain("long_conv", *_views(device, dtype, L))
    except Exception as exc:  # info() reports, never raises
        return f"{where} error: {type(exc).__name__}: {exc}"
    skipped = ", ".join(f"{name} [{reasons.setdefault(reason, len(reasons) + 1)}]"
                        for name, reason in decision.skipped.items())
    note = f"; {decision.note}" if decision.note else ""
    return (f"{where} -> {decision.backend} ({decision.source}{note})"
            + (f"; skipped: {skipped}" if skipped else ""))


def info(file: TextIO | None = None) -> None:
    """Print versions, devices, every backend with its availability (and why not), and what
    ``"auto"`` picks for ``long_conv`` at typical shapes (autotune state and cache path too).

    Example:
        >>> import seqlayers
        >>> seqlayers.info()  # doctest: +SKIP
    """
    print("\n".join(info_lines()), file=file if file is not None else sys.stdout)
