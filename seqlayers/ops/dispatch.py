"""Backend registry and runtime selection for the ops.

Every op (``"long_conv"``, ``"linear_scan"``, ``"vandermonde"``) has a set of named backends.
A backend declares

* ``available() -> (ok, reason)``: can it run at all in this process (Triton importable, a GPU
  present, the native extension built, ...);
* ``supports(*tensors) -> (ok, reason)``: can it run *this* call (device, dtype, length);
* ``auto``: whether ``backend="auto"`` may pick it, and its ``priority`` among those;
* ``auto_supports(*tensors) -> (ok, reason)`` (optional): a stricter check used only by
  ``"auto"``, for calls a backend can run when asked by name but should not be picked for
  (Triton kernels under the CPU interpreter, say); by default ``supports``.

Resolution of the name a caller passes, highest precedence first:

1. an explicit name in the call (``backend="fft"``);
2. the innermost :func:`use_backend` context;
3. the environment variable of the op (``SEQLAYERS_CONV_BACKEND`` for ``long_conv``,
   ``SEQLAYERS_SCAN_BACKEND``, ``SEQLAYERS_VANDERMONDE_BACKEND``);
4. ``"auto"``: the available backend of highest priority that supports the call; every backend
   skipped is logged once with its reason.

Asking explicitly for a backend that cannot run raises :class:`BackendUnavailableError` naming
the reason and the backends that can.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator

logger = logging.getLogger("seqlayers.ops")

ENV_VARS = {
    "long_conv": "SEQLAYERS_CONV_BACKEND",
    "linear_scan": "SEQLAYERS_SCAN_BACKEND",
    "vandermonde": "SEQLAYERS_VANDERMONDE_BACKEND",
}

Check = Callable[..., "tuple[bool, str]"]


def _always(*_args, **_kwargs) -> tuple[bool, str]:
    return True, ""


class BackendUnavailableError(RuntimeError):
    """Raised when a backend asked for by name cannot run the call."""


@dataclass
class Backend:
    """One implementation of an op.

    Attributes:
        op: the op it implements, e.g. ``"long_conv"``.
        name: its public name, e.g. ``"torch"``.
        fn: the implementation, called with the op's arguments.
        available: ``() -> (ok, reason)``; evaluated once and cached.
        supports: ``(*args) -> (ok, reason)`` for one call.
        auto: whether ``"auto"`` may choose it.
        priority: higher is tried first by ``"auto"``.
        description: one line for the README table and :func:`seqlayers.info`.
        auto_supports: ``(*args) -> (ok, reason)`` used instead of ``supports`` by ``"auto"``;
            None means ``supports``.
    """

    op: str
    name: str
    fn: Callable
    available: Check = _always
    supports: Check = _always
    auto: bool = True
    priority: int = 0
    description: str = ""
    auto_supports: Check | None = None
    _available_cache: tuple[bool, str] | None = field(default=None, repr=False)

    def is_available(self) -> tuple[bool, str]:
        if self._available_cache is None:
            try:
                self._available_cache = self.available()
            except Exception as exc:  # a broken optional dependency must not break import
                self._available_cache = (False, f"{type(exc).__name__}: {exc}")
        return self._available_cache


_REGISTRY: dict[str, dict[str, Backend]] = {op: {} for op in ENV_VARS}
_LOCAL = threading.local()
_LOGGED: set[tuple[str, str, str]] = set()


def register(backend: Backend) -> Backend:
    """Add ``backend`` to the registry (replacing one of the same op and name)."""
    if backend.op not in _REGISTRY:
        raise ValueError(f"unknown op {backend.op!r}; expected one of {sorted(_REGISTRY)}")
    if backend.name == "auto":
        raise ValueError("'auto' is reserved and cannot name a backend")
    _REGISTRY[backend.op][backend.name] = backend
    return backend


def _check_op(op: str) -> dict[str, Backend]:
    if op not in _REGISTRY:
        raise ValueError(f"unknown op {op!r}; expected one of {sorted(_REGISTRY)}")
    return _REGISTRY[op]


def registered_backends(op: str = "long_conv") -> list[Backend]:
    """All backends of ``op``, available or not, highest priority first."""
    return sorted(_check_op(op).values(), key=lambda b: -b.priority)


def available_backends(op: str = "long_conv") -> list[str]:
    """Names of the backends of ``op`` that can run in this process, highest priority first.

    Args:
        op: ``"long_conv"``, ``"linear_scan"`` or ``"vandermonde"``.

    Example:
        >>> import seqlayers
        >>> "torch" in seqlayers.ops.available_backends("long_conv")
        True
    """
    return [b.name for b in registered_backends(op) if b.is_available()[0]]


def unavailable_backends(op: str = "long_conv") -> dict[str, str]:
    """``{name: reason}`` for the backends of ``op`` that cannot run in this process."""
    out = {}
    for b in registered_backends(op):
        ok, reason = b.is_available()
        if not ok:
            out[b.name] = reason
    return out


def _context_stack() -> list[tuple[str | None, str]]:
    if not hasattr(_LOCAL, "stack"):
        _LOCAL.stack = []
    return _LOCAL.stack


@contextlib.contextmanager
def use_backend(name: str, op: str | None = None) -> Iterator[None]:
    """Context manager: use backend ``name`` wherever a call asks for ``"auto"``.

    Args:
        name: a backend name, or ``"auto"`` to restore automatic selection inside the block.
        op: restrict the override to one op; by default it applies to every op that has a
            backend of that name.

    Example:
        >>> import torch, seqlayers
        >>> with seqlayers.ops.use_backend("torch"):
        ...     y = seqlayers.ops.long_conv(torch.randn(1, 2, 8), torch.randn(2, 8))
    """
    ops = [op] if op is not None else [o for o, bs in _REGISTRY.items() if name in bs]
    if op is not None:
        _check_op(op)
    if name != "auto" and not ops:
        known = sorted({n for bs in _REGISTRY.values() for n in bs})
        raise ValueError(f"unknown backend {name!r}; expected one of {known} or 'auto'")
    if op is not None and name != "auto" and name not in _REGISTRY[op]:
        raise ValueError(
            f"unknown backend {name!r} for {op}; expected one of {sorted(_REGISTRY[op])} or 'auto'"
        )
    stack = _context_stack()
    stack.append((op, name))
    try:
        yield
    finally:
        stack.pop()


def _requested(op: str, name: str) -> tuple[str, str]:
    """The name in force for a call that passed ``name``, and where it came from."""
    if name != "auto":
        return name, "argument"
    for ctx_op, ctx_name in reversed(_context_stack()):
        if ctx_op in (None, op) and (ctx_name == "auto" or ctx_name in _REGISTRY[op]):
            if ctx_name == "auto":
                break
            return ctx_name, "use_backend()"
    env = os.environ.get(ENV_VARS[op], "").strip()
    if env and env != "auto":
        return env, f"${ENV_VARS[op]}"
    return "auto", "default"


def _log_once(op: str, name: str, reason: str) -> None:
    key = (op, name, reason)
    if key not in _LOGGED:
        _LOGGED.add(key)
        logger.info("%s: backend %r skipped: %s", op, name, reason)


def select(op: str, name: str, *args) -> Backend:
    """The backend that runs ``op(*args)`` when the caller passed ``backend=name``.

    Raises:
        ValueError: ``name`` is not a backend of ``op``.
        BackendUnavailableError: the named backend cannot run this call.
    """
    backends = _check_op(op)
    name, source = _requested(op, name)
    if name != "auto":
        if name not in backends:
            raise ValueError(
                f"unknown backend {name!r} for {op} (from {source}); "
                f"expected one of {sorted(backends)} or 'auto'"
            )
        backend = backends[name]
        ok, reason = backend.is_available()
        if ok:
            ok, reason = backend.supports(*args)
        if not ok:
            raise BackendUnavailableError(
                f"backend {name!r} (from {source}) cannot run {op}: {reason}. "
                f"Available backends: {available_backends(op)}"
            )
        return backend
    for backend in registered_backends(op):
        if not backend.auto:
            continue
        ok, reason = backend.is_available()
        if ok:
            ok, reason = (backend.auto_supports or backend.supports)(*args)
        if ok:
            return backend
        _log_once(op, backend.name, reason)
    raise BackendUnavailableError(f"no backend of {op} can run this call")


def register_lazy(
    op: str,
    name: str,
    module: str,
    fn: str,
    *,
    priority: int = 0,
    auto: bool = True,
    description: str = "",
) -> Backend:
    """Register a backend whose module is imported only when it is first needed.

    The module may define ``is_available() -> (ok, reason)``, ``supports(*args) -> (ok,
    reason)`` and ``auto_supports(*args) -> (ok, reason)`` (see :class:`Backend`); an
    ImportError while loading it (Triton missing, say) makes the backend
    unavailable with that error as the reason, instead of breaking ``import seqlayers``.
    """

    def load():
        return importlib.import_module(module)

    def available() -> tuple[bool, str]:
        mod = load()
        check = getattr(mod, "is_available", None)
        return check() if check is not None else (True, "")

    def supports(*args) -> tuple[bool, str]:
        check = getattr(load(), "supports", None)
        return check(*args) if check is not None else (True, "")

    def auto_supports(*args) -> tuple[bool, str]:
        check = getattr(load(), "auto_supports", None)
        return check(*args) if check is not None else supports(*args)

    def call(*args, **kwargs):
        return getattr(load(), fn)(*args, **kwargs)

    call.__name__ = f"{name}_{op}"
    return register(
        Backend(op, name, call, available, supports, auto, priority, description, auto_supports)
    )
