"""Backend registry and runtime selection of the ops.

Every op (``long_conv``, ``linear_scan``, ``vandermonde``) has named :class:`Backend` entries.
A backend's implementation, a module imported on first use, provides ``is_available() -> (ok,
reason)`` (never builds anything), ``plan(call, auto) -> plan`` (how it runs one call, described
by the op's call record of shapes, dtypes and device; raises :class:`~seqlayers.errors.Unsupported`
with the reason when it cannot, and ``auto=True`` asks whether ``"auto"`` may pick it), and
``forward(plan, *inputs)`` / ``backward(plan, grad, *saved, needs)``, and may provide
``prepare(plan)`` (build native code once a call is given to it). Backends whose planning costs
something cache their plans, so a call and its backward are planned once.

The name in force, highest precedence first: the call's ``backend=``, the innermost
:func:`use_backend` block (a ContextVar: each thread and asyncio task sees its own), the op's
environment variable, then ``"auto"``: the measured policy's decision (:mod:`.policy`) if that
backend can run the call, else the available backend of highest priority that can, each one
skipped logged once with its reason. A backend named but unable to run the call raises
:class:`~seqlayers.errors.BackendUnavailableError` with the reason and the backends that can;
:func:`explain` tells what ``"auto"`` picks and why. Resolution runs inside the ops' custom-op
implementations on real tensors, never while ``torch.compile`` or ``torch.export`` traces: a
compiled or exported model picks its backends where and when it runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import logging
import os
import threading
from dataclasses import dataclass, field
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
    """One implementation of an op: ``impl`` is a module name, imported on first use, or an
    object with the functions of the module docstring. ``"auto"`` may pick it if ``auto``,
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
    def availability(self) -> tuple[bool, str]:
        try:
            check = getattr(self.module, "is_available", None)
            return check() if check is not None else (True, "")
        except Exception as exc:  # a broken optional dependency must not break selection
            return False, f"{type(exc).__name__}: {exc}"

    def is_available(self) -> tuple[bool, str]:
        """Whether it can run in this process at all, and why not (evaluated once)."""
        return self.availability

    def plan(self, call: Any, auto: bool = False) -> Any:
        """Its plan for ``call``; raises :class:`Unsupported` with the reason."""
        return self.module.plan(call, auto)

    def prepare(self, plan: Any) -> None:
        """Make it ready to run ``plan`` (build native code, say); raises :class:`Unsupported`."""
        prepare = getattr(self.module, "prepare", None)
        if prepare is not None:
            prepare(plan)


def clear_plans() -> None:
    """Forget the plans backends cache (``plan.cache_clear``), for tests that change their limits."""
    for backends in _REGISTRY.values():
        for backend in backends.values():
            if "module" in backend.__dict__:  # loaded: nothing to clear otherwise
                getattr(backend.module.plan, "cache_clear", lambda: None)()


_OPS: dict[str, Op] = {}
_REGISTRY: dict[str, dict[str, Backend]] = {}
_OVERRIDES: contextvars.ContextVar[tuple] = contextvars.ContextVar("seqlayers_backends", default=())
_LOGGED: set[tuple[str, str, str]] = set()
_MEASURE_LOCK = threading.Lock()


def define_op(op: Op) -> Op:
    """Add an op (before registering its backends)."""
    _OPS[op.name] = op
    _REGISTRY.setdefault(op.name, {})
    return op


def register(backend: Backend) -> Backend:
    """Add ``backend`` (replacing one of the same op and name)."""
    _check_op(backend.op)
    if backend.name == "auto":
        raise ValueError("'auto' is reserved and cannot name a backend")
    _REGISTRY[backend.op][backend.name] = backend
    return backend


def _check_op(op: str) -> dict[str, Backend]:
    if op not in _REGISTRY:
        raise ValueError(f"unknown op {op!r}; expected one of {sorted(_REGISTRY)}")
    return _REGISTRY[op]


def check_name(op: str, name: str) -> None:
    """Raise ValueError unless ``name`` is ``"auto"`` or a backend of ``op``."""
    backends = _check_op(op)
    if name != "auto" and name not in backends:
        raise ValueError(f"unknown backend {name!r} for {op}; expected one of {sorted(backends)} or 'auto'")


def registered_backends(op: str = "long_conv") -> list[Backend]:
    """All backends of ``op``, available or not, highest priority first."""
    return sorted(_check_op(op).values(), key=lambda b: -b.priority)


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
    """Use backend ``name`` wherever a call inside the block asks for ``"auto"``.

    Args:
        name: a backend name, or ``"auto"`` to restore automatic selection inside the block.
        op: restrict the override to one op; by default every op with a backend of that name.

    Example:
        >>> with seqlayers.ops.use_backend("torch"):
        ...     y = seqlayers.ops.long_conv(torch.randn(1, 2, 8), torch.randn(2, 8))
    """
    if op is not None:
        check_name(op, name)
    elif name != "auto" and not any(name in bs for bs in _REGISTRY.values()):
        known = sorted({n for bs in _REGISTRY.values() for n in bs})
        raise ValueError(f"unknown backend {name!r}; expected one of {known} or 'auto'")
    token = _OVERRIDES.set(_OVERRIDES.get() + ((op, name),))
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def _requested(op: str, name: str) -> tuple[str, str]:
    """The name in force for a call that passed ``name``, and where it came from."""
    if name != "auto":
        return name, "argument"
    for ctx_op, ctx_name in reversed(_OVERRIDES.get()):
        if ctx_op in (None, op) and (ctx_name == "auto" or ctx_name in _REGISTRY[op]):
            if ctx_name == "auto":
                break
            return ctx_name, "use_backend()"
    env = os.environ.get(_OPS[op].env_var, "").strip()
    return (env, f"${_OPS[op].env_var}") if env and env != "auto" else ("auto", "default")


def _log_once(op: str, name: str, reason: str) -> None:
    if (op, name, reason) not in _LOGGED:
        _LOGGED.add((op, name, reason))
        logger.info("%s: backend %r skipped: %s", op, name, reason)


def _auto_plan(backend: Backend | None, call: Any, prepare: bool = False) -> tuple[bool, Any]:
    """``(True, plan)`` if ``"auto"`` may give ``call`` to ``backend`` (made ready to run it if
    ``prepare``), else ``(False, reason)``."""
    if backend is None:
        return False, "not a registered backend"
    if not backend.auto:
        return False, "explicit only: 'auto' never picks it"
    ok, reason = backend.is_available()
    if not ok:
        return False, reason
    try:
        plan = backend.plan(call, auto=True)
        if prepare:
            backend.prepare(plan)
    except Unsupported as exc:
        return False, str(exc)
    return True, plan


def resolve(op: str, name: str, *inputs) -> tuple[Backend, Any]:
    """The backend that runs ``op(*inputs)`` for a caller that passed ``backend=name``, and its plan.

    Raises:
        ValueError: ``name`` (or the override in force) is not a backend of ``op``.
        BackendUnavailableError: the backend in force cannot run this call.
    """
    backends = _check_op(op)
    call = _OPS[op].call(*inputs)
    name, source = _requested(op, name)
    if name == "auto":
        return _auto(op, call, inputs)
    if name not in backends:
        raise ValueError(f"unknown backend {name!r} for {op} (from {source}); "
                         f"expected one of {sorted(backends)} or 'auto'")
    backend = backends[name]
    ok, reason = backend.is_available()
    if ok:
        try:
            plan = backend.plan(call)
            backend.prepare(plan)
            return backend, plan
        except Unsupported as exc:
            reason = str(exc)
    raise BackendUnavailableError(f"backend {name!r} (from {source}) cannot run {op}: {reason}. "
                                  f"Available backends: {available_backends(op)}")


def select(op: str, name: str, *inputs) -> Backend:
    """The backend :func:`resolve` picks (without its plan)."""
    return resolve(op, name, *inputs)[0]


def supports(op: str, name: str, *inputs) -> tuple[bool, str]:
    """Whether backend ``name`` of ``op`` can run ``op(*inputs)`` when asked by name, and why not."""
    try:
        resolve(op, name, *inputs)
    except BackendUnavailableError as exc:
        return False, str(exc)
    return True, ""


def _auto(op: str, call: Any, inputs: tuple) -> tuple[Backend, Any]:
    name, source, key = _decided(op, call, inputs, measure=True)
    if name is not None:
        ok, plan = _auto_plan(_REGISTRY[op].get(name), call, prepare=True)
        if ok:
            return _REGISTRY[op][name], plan
        _log_once(op, name, f"{plan} (picked by the {source} for {key}; using priority order)")
    for backend in registered_backends(op):
        ok, plan = _auto_plan(backend, call, prepare=True)
        if ok:
            return backend, plan
        if backend.auto:
            _log_once(op, backend.name, plan)
    raise BackendUnavailableError(f"no backend of {op} can run this call")


def _decided(op: str, call: Any, inputs: tuple, measure: bool) -> tuple[str | None, str, policy.PolicyKey]:
    """``(backend name or None, source, key)``: the timing cache (autotune on; timing the call
    first if ``measure`` and it has no decision) or else the op's shipped table."""
    key = policy.PolicyKey.of(op, call.device, call.dtype, call.length, call.width)
    if policy.autotune_enabled():
        cache = policy.timing_cache()
        name = cache.lookup(key)
        if name is None and measure:
            name = _measure(op, key, call, inputs, cache)
        return name, "timing cache", key
    table = _OPS[op].table
    return (table.lookup(key), "shipped table", key) if table is not None else (None, "", key)


def _measure(op: str, key: policy.PolicyKey, call: Any, inputs: tuple, cache: policy.TimingCache) -> str | None:
    """Time every backend ``"auto"`` may give the call, record and return the fastest; None when
    fewer than two can run it or timing is not possible now (compiling, graph capture)."""
    if not policy.can_measure(call.device):
        return None
    with _MEASURE_LOCK:
        name = cache.lookup(key)
        if name is not None:
            return name
        candidates = [(b, plan) for b in registered_backends(op)
                      for ok, plan in [_auto_plan(b, call, prepare=True)] if ok]
        if len(candidates) < 2:
            return None
        times = {}
        for backend, plan in candidates:
            try:
                times[backend.name] = policy.time_call(lambda: backend.module.forward(plan, *inputs), call.device)
            except Exception as exc:  # a failing backend loses the timing, it must not fail the call
                _log_once(op, backend.name, f"failed while timing: {type(exc).__name__}: {exc}")
        if not times:
            return None
        winner = min(times, key=times.get)
        cache.record(key, winner, times, list(inputs[0].shape))
    timings = ", ".join(f"{n} {t:.3f} ms" for n, t in sorted(times.items(), key=lambda item: item[1]))
    logger.info("%s: 'auto' timed %s for %s -> %r (saved in %s)", op, timings, key, winner, cache.path)
    return winner


@dataclass
class Decision:
    """What ``"auto"`` picks for a call (``backend``, None if none can) and why: ``source`` is
    ``"timing cache"``, ``"shipped table"`` or ``"priority"``; ``skipped`` maps the backends it
    cannot give the call to the reason; ``note`` says why a policy decision was not used, or
    that the first call will time the candidates."""

    backend: str | None
    source: str
    skipped: dict[str, str]
    key: policy.PolicyKey | None = None
    note: str = field(default="")


def explain(op: str, *inputs) -> Decision:
    """What ``backend="auto"`` picks for ``op(*inputs)`` now, and why; never times anything.
    Ignores :func:`use_backend` and the environment variables (they replace ``"auto"``).

    Example:
        >>> d = explain("long_conv", torch.randn(1, 2, 1024), torch.randn(2, 1024), None)
        >>> d.backend, d.source
        ('torch', 'priority')
    """
    call = _OPS[op].call(*inputs) if op in _OPS else _check_op(op)
    checks = {b.name: _auto_plan(b, call) for b in registered_backends(op)}
    skipped = {name: reason for name, (ok, reason) in checks.items() if not ok}
    usable = [name for name, (ok, _) in checks.items() if ok]
    name, source, key = _decided(op, call, inputs, measure=False)
    if name is not None and name in usable:
        return Decision(name, source, skipped, key)
    note = ""
    if name is not None:
        note = f"the {source} picks {name!r}, which cannot run it: {checks.get(name, (0, 'not registered'))[1]}"
    elif source == "timing cache" and len(usable) > 1:
        note = f"not timed yet: the first call times {', '.join(usable)}"
    return Decision(usable[0] if usable else None, "priority", skipped, key, note)
