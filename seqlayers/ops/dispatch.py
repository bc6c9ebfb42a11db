"""Backend registry and runtime selection of the ops.

Every op (``long_conv``, ``linear_scan``, ``vandermonde``) has named :class:`Backend` entries.
The name in force, highest precedence first: the call's ``backend=``, the innermost
:func:`use_backend` block (a ContextVar: per thread and asyncio task), the op's environment
variable, then ``"auto"``: the measured policy's pick (:mod:`.policy`) if it can run the call,
else the available backend of highest priority that can, each one skipped logged once with its
reason. A named backend that cannot run the call raises :class:`BackendUnavailableError` with the
reason and the available backends; :func:`explain` tells what ``"auto"`` picks and why. Selection
runs inside the ops' custom-op implementations on real tensors, never while ``torch.compile`` or
``torch.export`` traces.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..errors import BackendUnavailableError, Unsupported
from . import policy

logger = logging.getLogger("seqlayers.ops")


@dataclass(frozen=True)
class Op:
    """An op with backends: its name, environment variable, and ``call(*inputs)``, which makes
    the hashable record of a call that plans are keyed by (with ``device``, ``dtype``,
    ``length`` and ``width`` for the policy). ``table``: its shipped policy table, if any."""

    name: str
    env_var: str
    call: Callable[..., Any]
    table: policy.ShippedTable | None = None


@dataclass(eq=False)
class Backend:
    """One implementation of an op. ``impl`` is a module name (imported on first use) or an
    object providing ``is_available() -> (ok, reason)``, ``plan(call, auto) -> plan`` (raises
    :class:`~seqlayers.errors.Unsupported` with the reason; ``auto=True`` asks whether ``"auto"``
    may pick it), ``forward(plan, *inputs)``, ``backward(plan, grad, *saved, needs)`` and
    optionally ``prepare(plan)`` (build native code). ``"auto"`` may pick it if ``auto``,
    trying higher ``priority`` first."""

    op: str
    name: str
    impl: Any
    priority: int = 0
    auto: bool = True
    description: str = ""

    @functools.cached_property
    def module(self) -> Any:
        return importlib.import_module(self.impl) if isinstance(self.impl, str) else self.impl

    @functools.cached_property
    def _availability(self) -> tuple[bool, str]:
        try:
            check = getattr(self.module, "is_available", None)
            return check() if check is not None else (True, "")
        except Exception as exc:  # a broken optional dependency must not break selection
            return False, f"{type(exc).__name__}: {exc}"

    def is_available(self) -> tuple[bool, str]:
        """Whether it can run in this process at all, and why not (asked once)."""
        return self._availability


_OPS: dict[str, Op] = {}
_REGISTRY: dict[str, dict[str, Backend]] = {}
_OVERRIDES: contextvars.ContextVar[tuple] = contextvars.ContextVar("seqlayers_backends", default=())
_LOGGED: set[tuple[str, str, str]] = set()
_MEASURE_LOCK = threading.Lock()


def clear_plans() -> None:
    """Forget the plans backends cache (``plan.cache_clear``), for tests that change their limits."""
    for backend in (b for backends in _REGISTRY.values() for b in backends.values()):
        if "module" in backend.__dict__:  # loaded: nothing to clear otherwise
            getattr(backend.module.plan, "cache_clear", lambda: None)()


def define_op(op: Op) -> Op:
    """Add an op (before registering its backends)."""
    _OPS[op.name] = op
    _REGISTRY.setdefault(op.name, {})
    return op


def register(backend: Backend) -> Backend:
    """Add ``backend`` (replacing one of the same op and name)."""
    if backend.name == "auto":
        raise ValueError("'auto' is reserved and cannot name a backend")
    check_name(backend.op)[backend.name] = backend
    return backend


def check_name(op: str | None, name: str = "auto", source: str = "") -> dict[str, Backend]:
    """Raise ValueError unless ``op`` is an op (None: any) and ``name`` is ``"auto"`` or one of its
    backends; return its backends by name."""
    if op is not None and op not in _REGISTRY:
        raise ValueError(f"unknown op {op!r}; expected one of {sorted(_REGISTRY)}")
    known = _REGISTRY[op] if op is not None else {n: b for bs in _REGISTRY.values() for n, b in bs.items()}
    if name != "auto" and name not in known:
        raise ValueError(f"unknown backend {name!r}{f' for {op}' if op else ''}{source}; "
                         f"expected one of {sorted(known)} or 'auto'")
    return known


def registered_backends(op: str = "long_conv") -> list[Backend]:
    """All backends of ``op``, available or not, highest priority first."""
    return sorted(check_name(op).values(), key=lambda b: -b.priority)


def available_backends(op: str = "long_conv") -> list[str]:
    """Names of the backends of ``op`` that can run in this process, highest priority first.

    Example:
        >>> "torch" in seqlayers.ops.available_backends("long_conv")
        True
    """
    return [b.name for b in registered_backends(op) if b.is_available()[0]]


def unavailable_backends(op: str = "long_conv") -> dict[str, str]:
    """``{name: reason}`` for the backends of ``op`` that cannot run in this process."""
    return {b.name: b.is_available()[1] for b in registered_backends(op) if not b.is_available()[0]}


@contextlib.contextmanager
def use_backend(name: str, op: str | None = None) -> Iterator[None]:
    """Use backend ``name`` wherever a call inside the block asks for ``"auto"`` (of ``op`` only,
    if given; else of every op with a backend of that name); ``"auto"`` restores automatic
    selection inside the block.

    Example:
        >>> with seqlayers.ops.use_backend("torch"):
        ...     y = seqlayers.ops.long_conv(torch.randn(1, 2, 8), torch.randn(2, 8))
    """
    check_name(op, name)
    token = _OVERRIDES.set(_OVERRIDES.get() + ((op, name),))
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def _requested(op: str, name: str) -> tuple[str, str]:
    """The name in force for a call that passed ``name``, and where it came from."""
    if name != "auto":
        return name, " (from argument)"
    blocks = [n for o, n in _OVERRIDES.get() if o in (None, op) and (n == "auto" or n in _REGISTRY[op])]
    if blocks and blocks[-1] != "auto":
        return blocks[-1], " (from use_backend())"
    env = os.environ.get(_OPS[op].env_var, "").strip()
    return (env, f" (from ${_OPS[op].env_var})") if env else ("auto", "")


def _log_once(op: str, name: str, reason: str) -> None:
    if (op, name, reason) not in _LOGGED:
        _LOGGED.add((op, name, reason))
        logger.info("%s: backend %r skipped: %s", op, name, reason)


def _try(backend: Backend | None, call: Any, auto: bool, prepare: bool = True) -> tuple[bool, Any]:
    """``(True, plan)`` if ``backend`` can run ``call`` (asked by ``"auto"`` if ``auto``; built for
    it if ``prepare``), else ``(False, reason)``."""
    if backend is None:
        return False, "not a registered backend"
    if auto and not backend.auto:
        return False, "explicit only: 'auto' never picks it"
    ok, reason = backend.is_available()
    if not ok:
        return False, reason
    try:
        plan = backend.module.plan(call, auto)
        if prepare and hasattr(backend.module, "prepare"):
            backend.module.prepare(plan)
        return True, plan
    except Unsupported as exc:
        return False, str(exc)


def resolve(op: str, name: str, *inputs) -> tuple[Backend, Any]:
    """The backend that runs ``op(*inputs)`` for a caller that passed ``backend=name``, and its
    plan. Raises ValueError if the name in force is not a backend of ``op``, and
    :class:`BackendUnavailableError` if that backend cannot run the call.

    Example:
        >>> resolve("long_conv", "torch", torch.randn(1, 2, 8), torch.randn(2, 8), None)[0].name
        'torch'
    """
    check_name(op)
    call = _OPS[op].call(*inputs)
    name, source = _requested(op, name)
    if name == "auto":
        return _auto(op, call, inputs)
    backend = check_name(op, name, source)[name]
    ok, plan = _try(backend, call, auto=False)
    if not ok:
        raise BackendUnavailableError(f"backend {name!r}{source} cannot run {op}: {plan}. "
                                      f"Available backends: {available_backends(op)}")
    return backend, plan


def supports(op: str, name: str, *inputs) -> tuple[bool, str]:
    """Whether backend ``name`` of ``op`` can run ``op(*inputs)`` when asked by name, and why not."""
    try:
        return bool(resolve(op, name, *inputs)), ""
    except BackendUnavailableError as exc:
        return False, str(exc)


def _policy(op: str, call: Any) -> tuple[str | None, str, policy.PolicyKey]:
    """``(backend name or None, source, key)``: the timing cache's pick (autotune on), else the table's."""
    key = policy.PolicyKey.of(op, call.device, call.dtype, call.length, call.width)
    if policy.autotune_enabled():
        return policy.timing_cache().lookup(key), "timing cache", key
    table = _OPS[op].table
    return (table.lookup(key) if table is not None else None), "shipped table", key


def _auto(op: str, call: Any, inputs: tuple) -> tuple[Backend, Any]:
    """The policy's pick if it can run the call (timing the candidates first if autotune has no
    decision yet), else the first backend in priority order that can."""
    name, source, key = _policy(op, call)
    if name is None and source == "timing cache" and policy.can_measure(call.device):
        name = _measure(op, key, call, inputs)
    if name is not None:
        ok, plan = _try(_REGISTRY[op].get(name), call, auto=True)
        if ok:
            return _REGISTRY[op][name], plan
        _log_once(op, name, f"{plan} (picked by the {source} for {key.cache_id()}; using priority order)")
    for backend in registered_backends(op):
        ok, plan = _try(backend, call, auto=True)
        if ok:
            return backend, plan
        if backend.auto:
            _log_once(op, backend.name, plan)
    raise BackendUnavailableError(f"no backend of {op} can run this call")


def _measure(op: str, key: policy.PolicyKey, call: Any, inputs: tuple) -> str | None:
    """Time every backend ``"auto"`` may give the call; record and return the fastest (None if
    fewer than two can run it)."""
    cache = policy.timing_cache()
    with _MEASURE_LOCK:
        if (name := cache.lookup(key)) is not None:  # another thread timed it meanwhile
            return name
        checks = [(b, *_try(b, call, auto=True)) for b in registered_backends(op)]
        candidates = [(b, plan) for b, ok, plan in checks if ok]
        if len(candidates) < 2:
            return None
        times = {}
        for backend, plan in candidates:
            try:
                run = functools.partial(backend.module.forward, plan, *inputs)
                times[backend.name] = policy.time_call(run, call.device)
            except Exception as exc:  # a failing backend loses the timing, it must not fail the call
                _log_once(op, backend.name, f"failed while timing: {type(exc).__name__}: {exc}")
        if not times:
            return None
        winner = min(times, key=times.get)
        cache.record(key, winner, times, list(inputs[0].shape))
    timings = ", ".join(f"{n} {t:.3f} ms" for n, t in sorted(times.items(), key=lambda item: item[1]))
    logger.info("%s: 'auto' timed %s for %s -> %r (saved in %s)", op, timings, key.cache_id(), winner,
                cache.path)
    return winner


@dataclass
class Decision:
    """What ``"auto"`` picks for a call (``backend``, None if none can) and why: ``source`` is
    ``"timing cache"``, ``"shipped table"`` or ``"priority"``; ``skipped``: ``{backend: reason}``
    for those it cannot give the call; ``note``: why the policy's pick was not used, or that the
    first call will time the candidates."""

    backend: str | None
    source: str
    skipped: dict[str, str]
    key: policy.PolicyKey | None = None
    note: str = ""


def explain(op: str, *inputs) -> Decision:
    """What ``backend="auto"`` picks for ``op(*inputs)`` now, and why; never times or builds
    anything. Ignores :func:`use_backend` and the environment variables (they replace ``"auto"``).

    Example:
        >>> d = explain("long_conv", torch.randn(1, 2, 1024), torch.randn(2, 1024), None)
        >>> d.backend, d.source
        ('torch', 'priority')
    """
    check_name(op)
    call = _OPS[op].call(*inputs)
    checks = {b.name: _try(b, call, auto=True, prepare=False) for b in registered_backends(op)}
    skipped = {name: reason for name, (ok, reason) in checks.items() if not ok}
    usable = [name for name, (ok, _) in checks.items() if ok]
    name, source, key = _policy(op, call)
    if name in usable:
        return Decision(name, source, skipped, key)
    note = ""
    if name is not None:
        reason = checks[name][1] if name in checks else "not a registered backend"
        note = f"the {source} picks {name!r}, which cannot run it: {reason}"
    elif source == "timing cache" and len(usable) > 1:
        note = f"not timed yet: the first call times {', '.join(usable)}"
    return Decision(usable[0] if usable else None, "priority", skipped, key, note)
