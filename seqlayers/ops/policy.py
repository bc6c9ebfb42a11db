"""The measured policy behind ``backend="auto"``: an opt-in timing cache, else a shipped table.

Decisions are keyed by :class:`PolicyKey`: op, device name, dtype, and power-of-two buckets of
the length and the parallel width. With autotune on (opt-in, as timing on a first call surprises:
``SEQLAYERS_AUTOTUNE=1`` or :func:`set_autotune`) the first ``"auto"`` call of a key times each
candidate on its tensors and keeps the fastest in ``<cache dir>/autotune.json``, per
torch/Triton/seqlayers versions. Otherwise the op's shipped table decides
(``seqlayers/ops/conv/policy.json``, written by ``benchmarks/speed/conv.py --write-policy``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib.metadata
import json
import os
import statistics
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .._version import __version__

AUTOTUNE_ENV, CACHE_DIR_ENV = "SEQLAYERS_AUTOTUNE", "SEQLAYERS_CACHE_DIR"
FORMAT, WARMUP, REPS = 1, 1, 5
_now = time.perf_counter  # the clock of the timings; tests replace it
_autotune: bool | None = None
_cache: TimingCache | None = None
_cache_lock = threading.Lock()


def set_autotune(enabled: bool | None) -> None:
    """Turn the one-time timing of ``"auto"`` on or off; None follows ``$SEQLAYERS_AUTOTUNE`` again.

    Example:
        >>> seqlayers.ops.set_autotune(True)
        >>> seqlayers.ops.autotune_enabled()
        True
    """
    global _autotune
    _autotune = None if enabled is None else bool(enabled)


def autotune_enabled() -> bool:
    """:func:`set_autotune` if set, else whether ``$SEQLAYERS_AUTOTUNE`` is 1/true/yes/on."""
    if _autotune is not None:
        return _autotune
    return os.environ.get(AUTOTUNE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """``$SEQLAYERS_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqlayers``, else ``~/.cache/seqlayers``."""
    for var, sub in ((CACHE_DIR_ENV, ""), ("XDG_CACHE_HOME", "seqlayers")):
        if value := os.environ.get(var, "").strip():
            return Path(value).expanduser() / sub
    try:
        return Path.home() / ".cache" / "seqlayers"
    except RuntimeError:  # no home folder: the cache still must not break a call
        return Path(tempfile.gettempdir()) / ".cache" / "seqlayers"


def cache_path() -> Path:
    """The timing cache file, ``cache_dir() / "autotune.json"``."""
    return cache_dir() / "autotune.json"


@functools.lru_cache(maxsize=None)
def versions() -> str:
    """What a timing depends on, e.g. ``"seqlayers 0.1.0, torch 2.13.0, triton 3.9.0"``."""
    try:
        triton = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        triton = "none"
    return f"seqlayers {__version__}, torch {torch.__version__}, triton {triton}"


def bucket(n: int) -> int:
    """The smallest power of two ``>= n`` (1 for ``n <= 1``): ``1000 -> 1024``, ``1025 -> 2048``."""
    return 1 << max(int(n) - 1, 0).bit_length()


@functools.lru_cache(maxsize=None)
def device_name(device: torch.device) -> str:
    """The GPU's name on CUDA (``"NVIDIA H100 80GB HBM3"``), else the device type (``"cpu"``)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class PolicyKey:
    """What a decision is keyed by: op, :func:`device_name`, :func:`dtype_name`, and the
    :func:`bucket` of the length and of the width (``B * H`` for ``long_conv``)."""

    op: str
    device: str
    dtype: str
    length: int
    width: int

    @classmethod
    def of(cls, op: str, device: torch.device, dtype: torch.dtype, length: int, width: int) -> PolicyKey:
        return cls(op, device_name(device), dtype_name(dtype), bucket(length), bucket(width))

    def cache_id(self) -> str:
        """E.g. ``"long_conv|cpu|float32|L1024|W64"``."""
        return f"{self.op}|{self.device}|{self.dtype}|L{self.length}|W{self.width}"


def _read_json(path: Path) -> dict:
    """The JSON object in ``path`` (``{}`` if there is no file); raises OSError or ValueError."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    return data


class TimingCache:
    """Decisions of the one-time timing, in memory and in a JSON file shared by processes:
    ``{"format": 1, "versions": {<versions()>: {<cache_id>: {"backend": name, "ms": {name: ms},
    "shape": [...]}}}}``. The running versions' section is read once, when made; a new decision
    is merged into a fresh read of the file, written atomically. A corrupt file is ignored (and
    replaced at the next write), an unwritable one leaves decisions in memory; each warns once.
    Writers are serialized by the caller (dispatch times under one lock)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path, self._write_warned = Path(path) if path is not None else cache_path(), False
        try:
            section = self._sections().get(versions(), {})
        except (OSError, ValueError) as exc:
            warnings.warn(f"seqlayers: ignoring the autotune cache {self.path} ({exc}); decisions are kept "
                          "in memory and the file is rewritten at the next timing", RuntimeWarning, stacklevel=3)
            section = {}
        self.decisions: dict[str, dict] = {k: v for k, v in section.items()
                                           if isinstance(v, dict) and isinstance(v.get("backend"), str)}

    def _sections(self) -> dict:
        """The file's ``versions`` object; raises OSError or ValueError."""
        data = _read_json(self.path)
        if data and (data.get("format") != FORMAT or not isinstance(data.get("versions"), dict)):
            raise ValueError(f"not a format-{FORMAT} seqlayers autotune cache")
        return data.get("versions", {})

    def lookup(self, key: PolicyKey) -> str | None:
        """The backend stored for ``key`` under the running versions, or None."""
        return self.decisions.get(key.cache_id(), {}).get("backend")

    def record(self, key: PolicyKey, backend: str, times_ms: dict[str, float], shape: list[int]) -> None:
        """Keep ``backend`` for ``key`` and write it to the file (if it can)."""
        entry = {"backend": backend, "ms": {n: round(t, 6) for n, t in times_ms.items()}, "shape": shape}
        self.decisions[key.cache_id()] = entry
        try:
            sections = self._sections()
        except (OSError, ValueError):
            sections = {}
        sections.setdefault(versions(), {})[key.cache_id()] = entry
        tmp = None
        try:  # atomically: a temporary file in the same folder, renamed
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps({"format": FORMAT, "versions": sections}, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if not self._write_warned:
                self._write_warned = True
                warnings.warn(f"seqlayers: cannot write the autotune cache {self.path} ({exc}); decisions are "
                              f"kept in memory (set ${CACHE_DIR_ENV} to a writable folder)", RuntimeWarning,
                              stacklevel=3)


def timing_cache() -> TimingCache:
    """The process's :class:`TimingCache` for the current :func:`cache_path`."""
    global _cache
    with _cache_lock:
        if _cache is None or _cache.path != cache_path():
            _cache = TimingCache()
        return _cache


class ShippedTable:
    """Decisions measured and shipped with the package: ``{"format": 1, "op": ..., "entries":
    [{"device": pattern, "dtype": name, "L": bucket, "width": bucket, "backend": name}]}``, where
    ``pattern`` is a case-insensitive ``fnmatch`` pattern of :func:`device_name`. An entry applies
    to a key of matching device, dtype and L bucket; the nearest width bucket wins (the larger on a
    tie). A missing file has no entries; a malformed one warns once and has none."""

    FIELDS = {"device": str, "dtype": str, "L": int, "width": int, "backend": str}

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @functools.cached_property
    def entries(self) -> list[dict]:
        """The valid entries of the file (read once)."""
        try:
            entries = _read_json(self.path).get("entries", [])
            if not isinstance(entries, list):
                raise ValueError("'entries' is not a list")
        except (OSError, ValueError) as exc:
            warnings.warn(f"seqlayers: ignoring the backend table {self.path} ({exc})", RuntimeWarning,
                          stacklevel=2)
            return []
        return [e for e in entries if isinstance(e, dict)
                and all(isinstance(e.get(f), t) for f, t in self.FIELDS.items())]

    def lookup(self, key: PolicyKey) -> str | None:
        """The backend the table gives for ``key``, or None."""
        matches = [e for e in self.entries if e["dtype"] == key.dtype and e["L"] == key.length
                   and fnmatch.fnmatch(key.device.lower(), e["device"].lower())]
        distance = lambda e: (abs(e["width"].bit_length() - key.width.bit_length()), -e["width"])  # noqa: E731
        return min(matches, key=distance)["backend"] if matches else None


def can_measure(device: torch.device) -> bool:
    """False while tracing for ``torch.compile`` or capturing a CUDA graph: no timing then."""
    if torch.compiler.is_compiling():
        return False
    return not (device.type == "cuda" and torch.cuda.is_current_stream_capturing())


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Median milliseconds of ``fn()`` over ``REPS`` runs after ``WARMUP`` (no grad, CUDA synced)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with torch.no_grad():
        for _ in range(WARMUP + REPS):
            sync()
            start = _now()
            fn()
            sync()
            times.append((_now() - start) * 1e3)
    return statistics.median(times[WARMUP:])
