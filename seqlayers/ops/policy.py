"""The measured policy behind ``backend="auto"``: an opt-in timing cache and shipped tables.

A decision is keyed by :class:`PolicyKey`: op, device name, dtype, and power-of-two buckets of
the length and of the parallel width of a call. With autotuning on (opt-in:
``SEQLAYERS_AUTOTUNE=1`` or :func:`set_autotune`) the first ``"auto"`` call of a key times every
backend that may serve it on that call's tensors (``WARMUP`` runs, then the median of ``REPS``,
forward only) and keeps the fastest in ``<cache dir>/autotune.json`` for later calls and
processes; a new torch, Triton or seqlayers version measures again. Otherwise an op's table
shipped with the package decides (``seqlayers/ops/conv/policy.json`` for ``long_conv``, written
on a GPU by ``benchmarks/speed/conv.py --write-policy``). Opt-in, because a first call that
silently runs every backend several times is a surprise most users never asked for.

The cache directory is ``$SEQLAYERS_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqlayers``, else
``~/.cache/seqlayers``. Writes are atomic; an unreadable or unwritable file warns once and the
decisions stay in memory: the cache never fails a call.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib.metadata
import json
import math
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

AUTOTUNE_ENV, CACHE_DIR_ENV, CACHE_FILE = "SEQLAYERS_AUTOTUNE", "SEQLAYERS_CACHE_DIR", "autotune.json"
FORMAT, WARMUP, REPS = 1, 1, 5
_now = time.perf_counter  # the clock of the timings; tests replace it
_autotune: bool | None = None


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
        value = os.environ.get(var, "").strip()
        if value:
            return Path(value).expanduser() / sub
    try:
        home = Path.home()
    except RuntimeError:  # no home folder: the cache still must not break a call
        home = Path(tempfile.gettempdir())
    return home / ".cache" / "seqlayers"


def cache_path() -> Path:
    """The timing cache file, ``cache_dir() / "autotune.json"``."""
    return cache_dir() / CACHE_FILE


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
def _cuda_name(index: int) -> str:
    return torch.cuda.get_device_name(index)


def device_name(device: torch.device) -> str:
    """The GPU's name on CUDA (``"NVIDIA H100 80GB HBM3"``), else the device type (``"cpu"``)."""
    if device.type == "cuda":
        return _cuda_name(device.index if device.index is not None else torch.cuda.current_device())
    return device.type


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

    def __str__(self) -> str:
        return f"{self.device}, {self.dtype}, L <= {self.length}, width <= {self.width}"


class _JsonFile:
    """A JSON object on disk, read leniently (``{}`` when missing), written atomically; warns once."""

    def __init__(self, path: Path) -> None:
        self.path, self.warned = Path(path), False

    def read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, NotADirectoryError):
            return {}
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, found {type(data).__name__}")
        return data

    def write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def warn_once(self, message: str) -> None:
        if not self.warned:
            self.warned = True
            warnings.warn(f"seqlayers: {message}", RuntimeWarning, stacklevel=5)


class TimingCache(_JsonFile):
    """Decisions of the one-time timing, in memory and in a JSON file shared by processes.

    The file holds ``{"format": 1, "versions": {<versions()>: {<cache_id>: {"backend": name,
    "ms": {name: median ms}, "shape": [...]}}}}``; only the running versions' section is read,
    once. A new decision is merged into a fresh read of the file and written atomically. A corrupt
    file is ignored (and replaced at the next write), an unwritable one leaves the decisions in
    memory; both warn once and never raise.
    """

    def __init__(self, path: Path | None = None) -> None:
        super().__init__(path if path is not None else cache_path())
        self._decisions: dict[str, dict] | None = None
        self._lock = threading.RLock()

    def _read_all(self) -> dict:
        data = self.read()
        if data and (data.get("format") != FORMAT or not isinstance(data.get("versions"), dict)):
            raise ValueError(f"not a format-{FORMAT} seqlayers autotune cache")
        return data

    def _loaded(self) -> dict[str, dict]:
        with self._lock:
            if self._decisions is None:
                try:
                    section = self._read_all().get("versions", {}).get(versions(), {})
                except (OSError, ValueError) as exc:
                    self.warn_once(f"ignoring the autotune cache {self.path} ({exc}); decisions are kept "
                                   "in memory and the file is rewritten at the next timing")
                    section = {}
                self._decisions = {k: v for k, v in section.items()
                                   if isinstance(v, dict) and isinstance(v.get("backend"), str)}
            return self._decisions

    def lookup(self, key: PolicyKey) -> str | None:
        """The backend stored for ``key`` under the running versions, or None."""
        record = self._loaded().get(key.cache_id())
        return record["backend"] if record is not None else None

    def decisions(self) -> dict[str, str]:
        """``{cache_id: backend}`` of the running versions."""
        return {cache_id: record["backend"] for cache_id, record in self._loaded().items()}

    def record(self, key: PolicyKey, backend: str, times_ms: dict[str, float], shape: list[int]) -> None:
        """Keep ``backend`` for ``key`` and write it to the file (if it can)."""
        entry = {"backend": backend, "ms": {n: round(t, 6) for n, t in times_ms.items()}, "shape": shape}
        with self._lock:
            self._loaded()[key.cache_id()] = entry
            try:
                data = self._read_all()
            except (OSError, ValueError):
                data = {}
            data["format"] = FORMAT
            data.setdefault("versions", {}).setdefault(versions(), {})[key.cache_id()] = entry
            try:
                self.write(data)
            except OSError as exc:
                self.warn_once(f"cannot write the autotune cache {self.path} ({exc}); decisions are kept "
                               f"in memory for this process (set ${CACHE_DIR_ENV} to a writable folder)")


_cache: TimingCache | None = None
_cache_lock = threading.Lock()


def timing_cache() -> TimingCache:
    """The process's :class:`TimingCache` for the current :func:`cache_path`."""
    global _cache
    with _cache_lock:
        if _cache is None or _cache.path != cache_path():
            _cache = TimingCache()
        return _cache


class ShippedTable(_JsonFile):
    """Measured decisions shipped with the package; a missing file means no entries.

    The file holds ``{"format": 1, "op": ..., "entries": [{"device": pattern, "dtype": name,
    "L": bucket, "width": bucket, "backend": name}, ...]}``, ``pattern`` an ``fnmatch`` pattern
    of :func:`device_name` (case-insensitive, e.g. ``"NVIDIA H100*"``). An entry applies to a key
    of matching device and dtype and the same L bucket; the nearest width bucket (in powers of
    two, the larger on a tie) wins. A malformed file warns once and counts as empty.
    """

    FIELDS = {"device": str, "dtype": str, "L": int, "width": int, "backend": str}

    @functools.cached_property
    def entries(self) -> list[dict]:
        """The valid entries of the file (read once)."""
        try:
            entries = self.read().get("entries", [])
            if not isinstance(entries, list):
                raise ValueError("'entries' is not a list")
        except (OSError, ValueError) as exc:
            self.warn_once(f"ignoring the backend table {self.path} ({exc})")
            return []
        return [e for e in entries if isinstance(e, dict)
                and all(isinstance(e.get(f), t) for f, t in self.FIELDS.items())]

    def lookup(self, key: PolicyKey) -> str | None:
        """The backend the table gives for ``key``, or None."""
        matches = [e for e in self.entries if e["dtype"] == key.dtype and e["L"] == key.length
                   and fnmatch.fnmatch(key.device.lower(), e["device"].lower())]
        if not matches:
            return None
        distance = lambda e: (abs(math.log2(max(e["width"], 1)) - math.log2(key.width)), -e["width"])  # noqa: E731
        return min(matches, key=distance)["backend"]


def write_table(path: Path, op: str, device_pattern: str, decisions: dict[tuple[str, int, int], str]) -> None:
    """Replace the entries of ``device_pattern`` in the table at ``path`` by ``{(dtype, L, width):
    backend}`` (L and width bucketed here), atomically."""
    table = _JsonFile(path)
    try:
        data = table.read()
    except (OSError, ValueError):
        data = {}
    kept = [e for e in data.get("entries", []) if isinstance(e, dict) and e.get("device") != device_pattern]
    new = [{"device": device_pattern, "dtype": dtype, "L": bucket(length), "width": bucket(width),
            "backend": backend} for (dtype, length, width), backend in sorted(decisions.items())]
    table.write(dict(data, format=FORMAT, op=op, entries=kept + new))


def can_measure(device: torch.device) -> bool:
    """False while tracing for ``torch.compile`` or capturing a CUDA graph: no timing then."""
    if torch.compiler.is_compiling():
        return False
    return not (device.type == "cuda" and torch.cuda.is_current_stream_capturing())


def time_call(fn: Callable[[], object], device: torch.device) -> float:
    """Median milliseconds of ``fn()`` over ``REPS`` runs after ``WARMUP``, under ``no_grad``,
    with CUDA synchronized around each run."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        for _ in range(WARMUP):
            fn()
        times = []
        for _ in range(REPS):
            sync()
            start = _now()
            fn()
            sync()
            times.append((_now() - start) * 1e3)
    return statistics.median(times)
