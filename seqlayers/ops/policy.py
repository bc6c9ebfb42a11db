"""The measured policy behind ``backend="auto"``: a one-time timing cache and a shipped table.

``"auto"`` keys its decisions by :class:`PolicyKey`: the op, the device name, the dtype, and
power-of-two buckets of the sequence length L and of the parallel width (``B * H`` for
``long_conv``). For a key it asks, in order:

1. **the timing cache**, when autotuning is on (opt-in: ``SEQLAYERS_AUTOTUNE=1`` or
   :func:`set_autotune`). The first ``"auto"`` call of a key times every backend that can serve
   it on that call's own tensors (``WARMUP`` runs, then the median of ``REPS``; forward only,
   under ``torch.no_grad()``, synchronizing CUDA), keeps the fastest, logs the decision once
   (logger ``seqlayers.ops``, INFO) and stores it in ``<cache dir>/autotune.json``. Later calls
   and later processes read it; a change of torch, Triton or seqlayers version measures again.
2. **the shipped table** of the op, when autotuning is off: a JSON file in the package written by
   ``benchmarks/speed/conv.py --write-policy`` (``seqlayers/ops/conv/policy.json`` for
   ``long_conv``), entries matched by device-name pattern, dtype and L bucket, the nearest
   width bucket winning.
3. the static priority order of :mod:`seqlayers.ops.dispatch`, which is also where a decision
   goes when its backend cannot serve a call (the reason is logged once).

Autotuning is opt-in because a first call that silently runs every backend several times is a
surprise (and a cost) most users never asked for, and on a CPU only ``"torch"`` competes.

The cache directory is ``$SEQLAYERS_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqlayers``, else
``~/.cache/seqlayers``. Writes are atomic (a temporary file, then ``os.replace``); an unreadable
or unwritable cache warns once and the decisions are kept in memory, never failing a call.

Example:
    >>> import seqlayers
    >>> seqlayers.ops.set_autotune(True)         # or SEQLAYERS_AUTOTUNE=1 in the environment
    >>> seqlayers.ops.policy.cache_path()        # doctest: +SKIP
    PosixPath('/home/me/.cache/seqlayers/autotune.json')
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import importlib.metadata
import json
import logging
import math
import os
import statistics
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

logger = logging.getLogger("seqlayers.ops")

AUTOTUNE_ENV = "SEQLAYERS_AUTOTUNE"
CACHE_DIR_ENV = "SEQLAYERS_CACHE_DIR"
CACHE_FILE = "autotune.json"
FORMAT = 1
WARMUP = 1
REPS = 5

_now = time.perf_counter  # the clock of the timings; tests replace it
_autotune: bool | None = None


# ----------------------------------------------------------------------------------------------
# settings


def set_autotune(enabled: bool | None) -> None:
    """Turn the one-time timing of ``"auto"`` on or off for this process.

    Args:
        enabled: True or False; None follows ``$SEQLAYERS_AUTOTUNE`` again (the default: off
            unless it is ``1``/``true``/``yes``/``on``).

    Example:
        >>> seqlayers.ops.set_autotune(True)
        >>> seqlayers.ops.autotune_enabled()
        True
        >>> seqlayers.ops.set_autotune(None)
    """
    global _autotune
    _autotune = None if enabled is None else bool(enabled)


def autotune_enabled() -> bool:
    """Whether ``"auto"`` times backends: :func:`set_autotune` if set, else ``$SEQLAYERS_AUTOTUNE``."""
    if _autotune is not None:
        return _autotune
    return os.environ.get(AUTOTUNE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """``$SEQLAYERS_CACHE_DIR``, else ``$XDG_CACHE_HOME/seqlayers``, else ``~/.cache/seqlayers``."""
    explicit = os.environ.get(CACHE_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return Path(xdg).expanduser() / "seqlayers"
    try:
        home = Path.home()
    except RuntimeError:  # no home folder to be found: the cache still must not break a call
        home = Path(tempfile.gettempdir())
    return home / ".cache" / "seqlayers"


def cache_path() -> Path:
    """The timing cache file: ``cache_dir() / "autotune.json"``."""
    return cache_dir() / CACHE_FILE


@functools.lru_cache(maxsize=None)
def versions() -> str:
    """The versions a timing depends on, e.g. ``"seqlayers 0.1.0, torch 2.13.0, triton 3.9.0"``."""
    from .. import __version__

    try:
        triton = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        triton = "none"
    return f"seqlayers {__version__}, torch {torch.__version__}, triton {triton}"


# ----------------------------------------------------------------------------------------------
# keys


def bucket(n: int) -> int:
    """The power-of-two bucket of a size: the smallest power of two ``>= n`` (1 for ``n <= 1``).

    Example:
        >>> [bucket(n) for n in (1, 1000, 1024, 1025)]
        [1, 1024, 1024, 2048]
    """
    return 1 << max(int(n) - 1, 0).bit_length()


@functools.lru_cache(maxsize=None)
def _cuda_name(index: int) -> str:
    return torch.cuda.get_device_name(index)


def device_name(device: torch.device) -> str:
    """The name decisions are keyed by: the GPU's name on CUDA (``"NVIDIA H100 80GB HBM3"``),
    else the device type (``"cpu"``)."""
    if device.type == "cuda":
        return _cuda_name(device.index if device.index is not None else torch.cuda.current_device())
    return device.type


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class PolicyKey:
    """What a decision of ``"auto"`` is keyed by.

    Attributes:
        op: e.g. ``"long_conv"``.
        device: :func:`device_name` of the call's device.
        dtype: :func:`dtype_name` of the call's input.
        length: :func:`bucket` of the sequence length L.
        width: :func:`bucket` of the parallel width (``B * H`` for ``long_conv``).
    """

    op: str
    device: str
    dtype: str
    length: int
    width: int

    @classmethod
    def of(cls, op: str, device: torch.device, dtype: torch.dtype, length: int, width: int) -> PolicyKey:
        """The key of a call on ``device`` with ``dtype`` input, length ``length``, width ``width``."""
        return cls(op, device_name(device), dtype_name(dtype), bucket(length), bucket(width))

    def cache_id(self) -> str:
        """The key as a string, e.g. ``"long_conv|cpu|float32|L1024|W64"``."""
        return f"{self.op}|{self.device}|{self.dtype}|L{self.length}|W{self.width}"

    def __str__(self) -> str:
        return f"{self.device}, {self.dtype}, L <= {self.length}, width <= {self.width}"


# ----------------------------------------------------------------------------------------------
# JSON files


def _warn_once(owner, message: str) -> None:
    """Warn about a cache or table file the first time ``owner`` has something to say."""
    if not owner.warned:
        owner.warned = True
        warnings.warn(f"seqlayers: {message}", RuntimeWarning, stacklevel=4)


def _read_json(path: Path) -> dict:
    """The JSON object in ``path``; ``{}`` if the file (or its folder) is missing. Raises
    OSError or ValueError on anything else."""
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, found {type(data).__name__}")
    return data


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class TimingCache:
    """Decisions of the one-time timing: in memory, and in a JSON file shared by processes.

    The file holds ``{"format": 1, "versions": {<versions()>: {<PolicyKey.cache_id()>:
    {"backend": name, "ms": {name: median ms}, "shape": [...]}}}}``; only the section of the
    running versions is read. The file is read once, at the first lookup; each new decision is
    merged into a fresh read of it and written atomically. A corrupt file is ignored (and
    replaced at the next write), an unwritable one leaves the decisions in memory: both warn
    once and never raise.

    Args:
        path: the JSON file (default :func:`cache_path`).

    Example:
        >>> cache = TimingCache(Path("/tmp/autotune.json"))
        >>> cache.lookup(PolicyKey("long_conv", "cpu", "float32", 1024, 64)) is None
        True
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else cache_path()
        self.warned = False
        self._decisions: dict[str, dict] | None = None
        self._lock = threading.RLock()

    def _loaded(self) -> dict[str, dict]:
        with self._lock:
            if self._decisions is None:
                self._decisions = self._read_section()
            return self._decisions

    def lookup(self, key: PolicyKey) -> str | None:
        """The backend stored for ``key`` under the running versions, or None."""
        record = self._loaded().get(key.cache_id())
        return record["backend"] if record is not None else None

    def decisions(self) -> dict[str, str]:
        """``{PolicyKey.cache_id(): backend}`` of the running versions."""
        return {cache_id: record["backend"] for cache_id, record in self._loaded().items()}

    def record(self, key: PolicyKey, backend: str, times_ms: dict[str, float], shape: Sequence[int]) -> None:
        """Keep ``backend`` as the decision for ``key`` and write it to the file (if it can)."""
        entry = {"backend": backend, "ms": {n: round(t, 6) for n, t in times_ms.items()},
                 "shape": list(shape)}
        with self._lock:
            self._loaded()[key.cache_id()] = entry
            self._write(key.cache_id(), entry)

    def _read_all(self) -> dict:
        data = _read_json(self.path)
        if data and (data.get("format") != FORMAT or not isinstance(data.get("versions"), dict)):
            raise ValueError(f"not a format-{FORMAT} seqlayers autotune cache")
        return data

    def _read_section(self) -> dict[str, dict]:
        try:
            section = self._read_all().get("versions", {}).get(versions(), {})
        except (OSError, ValueError) as exc:
            _warn_once(self, f"ignoring the autotune cache {self.path} ({exc}); decisions are kept "
                             "in memory and the file is rewritten at the next timing")
            return {}
        if not isinstance(section, dict):
            return {}
        return {k: v for k, v in section.items() if isinstance(v, dict) and isinstance(v.get("backend"), str)}

    def _write(self, cache_id: str, entry: dict) -> None:
        try:
            data = self._read_all()
        except (OSError, ValueError):
            data = {}
        data["format"] = FORMAT
        section = data.setdefault("versions", {}).setdefault(versions(), {})
        section[cache_id] = entry
        try:
            write_json_atomic(self.path, data)
        except OSError as exc:
            _warn_once(self, f"cannot write the autotune cache {self.path} ({exc}); decisions are "
                             f"kept in memory for this process (set ${CACHE_DIR_ENV} to a writable folder)")


_cache: TimingCache | None = None
_cache_lock = threading.Lock()


def timing_cache() -> TimingCache:
    """The process's :class:`TimingCache` for the current :func:`cache_path`."""
    global _cache
    path = cache_path()
    with _cache_lock:
        if _cache is None or _cache.path != path:
            _cache = TimingCache(path)
        return _cache


class ShippedTable:
    """A table of measured decisions shipped with the package; missing file means no entries.

    The file holds ``{"format": 1, "op": ..., "entries": [{"device": pattern, "dtype": name,
    "L": bucket, "width": bucket, "backend": name}, ...]}`` where ``pattern`` is an
    ``fnmatch`` pattern of :func:`device_name` (case-insensitive, e.g. ``"NVIDIA H100*"``). An
    entry applies to a key of matching device and dtype and the same L bucket; among those the
    nearest width bucket (in powers of two; the larger on a tie) wins, the first on equal
    footing. A malformed file warns once and counts as empty.

    Args:
        path: the JSON file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.warned = False
        self._entries: list[dict] | None = None

    @property
    def entries(self) -> list[dict]:
        """The valid entries of the file (read once)."""
        if self._entries is None:
            self._entries = self._load()
        return self._entries

    def _load(self) -> list[dict]:
        try:
            entries = _read_json(self.path).get("entries", [])
            if not isinstance(entries, list):
                raise ValueError("'entries' is not a list")
        except (OSError, ValueError) as exc:
            _warn_once(self, f"ignoring the backend table {self.path} ({exc})")
            return []
        fields = {"device": str, "dtype": str, "L": int, "width": int, "backend": str}
        return [e for e in entries
                if isinstance(e, dict) and all(isinstance(e.get(f), t) for f, t in fields.items())]

    def lookup(self, key: PolicyKey) -> str | None:
        """The backend the table gives for ``key``, or None."""
        matches = [e for e in self.entries
                   if e["dtype"] == key.dtype and e["L"] == key.length
                   and fnmatch.fnmatch(key.device.lower(), e["device"].lower())]
        if not matches:
            return None
        best = min(matches, key=lambda e: (abs(math.log2(max(e["width"], 1)) - math.log2(key.width)),
                                           -e["width"]))
        return best["backend"]


def table_entries(device_pattern: str, decisions: dict[tuple[str, int, int], str]) -> list[dict]:
    """Entries of a :class:`ShippedTable` for one device from ``{(dtype, L, width): backend}``
    (L and width are bucketed here)."""
    return [{"device": device_pattern, "dtype": dtype, "L": bucket(length), "width": bucket(width),
             "backend": backend}
            for (dtype, length, width), backend in sorted(decisions.items())]


def write_table(path: Path, op: str, device_pattern: str, entries: list[dict]) -> None:
    """Replace the entries of ``device_pattern`` in the table at ``path`` by ``entries`` (atomic)."""
    try:
        data = _read_json(Path(path))
    except (OSError, ValueError):
        data = {}
    kept = [e for e in data.get("entries", []) if isinstance(e, dict) and e.get("device") != device_pattern]
    data.update(format=FORMAT, op=op, entries=kept + entries)
    write_json_atomic(Path(path), data)


# ----------------------------------------------------------------------------------------------
# timing


def device_of(args: Sequence) -> torch.device:
    """The device of the first tensor among ``args`` (the CPU if there is none)."""
    return next((a.device for a in args if isinstance(a, torch.Tensor)), torch.device("cpu"))


def shape_of(args: Sequence) -> list[int]:
    """The shape of the first tensor among ``args``, recorded with a timing for reference."""
    return next((list(a.shape) for a in args if isinstance(a, torch.Tensor)), [])


def can_measure(device: torch.device) -> bool:
    """False while tracing for ``torch.compile`` or capturing a CUDA graph: no timing then."""
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if is_compiling is not None and is_compiling():
        return False
    return not (device.type == "cuda" and torch.cuda.is_current_stream_capturing())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable, args: Sequence, device: torch.device) -> float:
    """Median milliseconds of ``fn(*args)`` over ``REPS`` runs after ``WARMUP`` runs, forward
    only, under ``torch.no_grad()``, with CUDA synchronized around each run."""
    with torch.no_grad():
        for _ in range(WARMUP):
            fn(*args)
        times = []
        for _ in range(REPS):
            _sync(device)
            start = _now()
            fn(*args)
            _sync(device)
            times.append((_now() - start) * 1e3)
    return statistics.median(times)
