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
4. ``"auto"``: for an op with a measured policy (:func:`set_policy`; ``long_conv``), the
   decision of :mod:`seqlayers.ops.policy` for the call's (device, dtype, L bucket, width
   bucket): the one-time timing cache when autotuning is on (opt-in, ``SEQLAYERS_AUTOTUNE=1``
   or :func:`seqlayers.ops.set_autotune`), else the table shipped with the package. Without a
   decision, or when the decided backend cannot serve this call, the available backend of
   highest priority that supports the call; every backend skipped is logged once with its
   reason.

Asking explicitly for a backend that cannot run raises :class:`BackendUnavailableError` naming
the reason and the backends that can. :func:`explain` tells what ``"auto"`` would pick for a
call and why, without timing anything (``seqlayers.info()`` shows it for typical shapes).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import policy
from .policy import PolicyKey, ShippedTable

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
    return _select_auto(op, args)


def _auto_check(backend: Backend | None, args: tuple) -> tuple[bool, str]:
    """Whether ``"auto"`` may give this call to ``backend``, and why not."""
    if backend is None:
        return False, "not a registered backend"
    if not backend.auto:
        return False, "explicit only: 'auto' never picks it"
    ok, reason = backend.is_available()
    if ok:
        ok, reason = (backend.auto_supports or backend.supports)(*args)
    return ok, reason


def _select_auto(op: str, args: tuple) -> Backend:
    """The backend of ``"auto"``: the policy's decision if it can run the call, else by priority."""
    name, source, key = _policy_pick(op, args, measure=True)
    if name is not None:
        backend = _REGISTRY[op].get(name)
        ok, reason = _auto_check(backend, args)
        if ok:
            return backend
        _log_once(op, name, f"{reason} (picked by the {source} for {key}; using priority order)")
    for backend in registered_backends(op):
        ok, reason = _auto_check(backend, args)
        if ok:
            return backend
        if backend.auto:
            _log_once(op, backend.name, reason)
    raise BackendUnavailableError(f"no backend of {op} can run this call")


# ----------------------------------------------------------------------------------------------
# measured policy of "auto" (see seqlayers.ops.policy)

Shape = Callable[..., "tuple[Any, Any, int, int]"]


@dataclass
class OpPolicy:
    """How ``"auto"`` keys the decisions of one op.

    Attributes:
        shape: ``(*args) -> (device, dtype, length, width)`` of a call, e.g. for ``long_conv``
            ``(u.device, u.dtype, L, B * H)``.
        table: the shipped table of the op, or None.
    """

    shape: Shape
    table: ShippedTable | None = None

    def key(self, op: str, args: tuple) -> PolicyKey:
        return PolicyKey.of(op, *self.shape(*args))


_POLICIES: dict[str, OpPolicy] = {}
_MEASURE_LOCK = threading.Lock()


def set_policy(op: str, shape: Shape, table: Path | str | None = None) -> OpPolicy:
    """Let ``"auto"`` choose among the backends of ``op`` by measurement (timing cache, table).

    Args:
        op: the op, e.g. ``"long_conv"``.
        shape: ``(*args) -> (device, dtype, length, width)``: what a call's decision is keyed by
            (length and width are bucketed to powers of two).
        table: path of the op's shipped JSON table (see :class:`ShippedTable`); a missing file
            means no entries.

    Example:
        >>> set_policy("long_conv", lambda u, k, D: (u.device, u.dtype, u.shape[-1],
        ...                                          u.shape[0] * u.shape[1]))  # doctest: +SKIP
    """
    _check_op(op)
    _POLICIES[op] = OpPolicy(shape, ShippedTable(Path(table)) if table is not None else None)
    return _POLICIES[op]


def _policy_pick(op: str, args: tuple, measure: bool) -> tuple[str | None, str, PolicyKey | None]:
    """``(backend name or None, source, key)`` from the timing cache (autotune on, timing the
    call if ``measure`` and it has no decision) or from the shipped table (autotune off)."""
    op_policy = _POLICIES.get(op)
    if op_policy is None:
        return None, "", None
    if policy.autotune_enabled():
        key = op_policy.key(op, args)
        cache = policy.timing_cache()
        name = cache.lookup(key)
        if name is None and measure:
            name = _measure(op, key, args, cache)
        return name, "timing cache", key
    if op_policy.table is None or not op_policy.table.entries:
        return None, "", None
    key = op_policy.key(op, args)
    return op_policy.table.lookup(key), "shipped table", key


def _measure(op: str, key: PolicyKey, args: tuple, cache: policy.TimingCache) -> str | None:
    """Time every backend ``"auto"`` may give this call, record and return the fastest; None
    when fewer than two can run it or timing is not possible now (compiling, graph capture)."""
    device = policy.device_of(args)
    if not policy.can_measure(device):
        return None
    with _MEASURE_LOCK:
        name = cache.lookup(key)
        if name is not None:
            return name
        candidates = [b for b in registered_backends(op) if _auto_check(b, args)[0]]
        if len(candidates) < 2:
            return None
        times = _time_candidates(op, candidates, args, device)
        if not times:
            return None
        winner = min(times, key=times.get)
        cache.record(key, winner, times, policy.shape_of(args))
    timings = ", ".join(f"{n} {t:.3f} ms" for n, t in sorted(times.items(), key=lambda item: item[1]))
    logger.info("%s: 'auto' timed %s for %s -> %r (saved in %s)", op, timings, key, winner, cache.path)
    return winner


def _time_candidates(op: str, candidates: list[Backend], args: tuple, device) -> dict[str, float]:
    """``{name: median ms}`` of the candidates that ran; a failure is logged once and skipped."""
    times = {}
    for backend in candidates:
        try:
            times[backend.name] = policy.time_call(backend.fn, args, device)
        except Exception as exc:  # a failing backend loses the timing, it must not fail the call
            _log_once(op, backend.name, f"failed while timing: {type(exc).__name__}: {exc}")
    return times


@dataclass
class Decision:
    """What ``"auto"`` picks for a call and why (from :func:`explain`).

    Attributes:
        backend: the backend name, or None if none can run the call.
        source: ``"timing cache"``, ``"shipped table"`` or ``"priority"``.
        skipped: ``{name: reason}`` of the backends ``"auto"`` cannot give this call.
        key: the policy key of the call (None for an op without a policy).
        note: why a policy decision was not used, or that the first call will time the candidates.
    """

    backend: str | None
    source: str
    skipped: dict[str, str]
    key: PolicyKey | None = None
    note: str = ""


def explain(op: str, *args) -> Decision:
    """What ``backend="auto"`` picks for ``op(*args)`` now, and why; never times anything.

    Ignores :func:`use_backend` and the environment variables (they replace ``"auto"``).

    Example:
        >>> d = explain("long_conv", torch.randn(1, 2, 1024), torch.randn(2, 1024), None)
        >>> d.backend, d.source
        ('torch', 'priority')
    """
    checks = {b.name: _auto_check(b, args) for b in registered_backends(op)}
    skipped = {name: reason for name, (ok, reason) in checks.items() if not ok}
    usable = [name for name, (ok, _) in checks.items() if ok]
    name, source, key = _policy_pick(op, args, measure=False)
    if key is None and op in _POLICIES:
        key = _POLICIES[op].key(op, args)
    if name is not None and name in usable:
        return Decision(name, source, skipped, key)
    note = ""
    if name is not None:
        reason = _auto_check(_REGISTRY[op].get(name), args)[1]
        note = f"the {source} picks {name!r}, which cannot run it: {reason}"
    elif source == "timing cache" and len(usable) > 1:
        note = f"not timed yet: the first call times {', '.join(usable)}"
    return Decision(usable[0] if usable else None, "priority", skipped, key, note)


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
