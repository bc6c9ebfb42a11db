"""Fixtures shared by the tests of the native (C++) backends."""

from __future__ import annotations

import pytest

from seqlayers import _native


@pytest.fixture(scope="module")
def built():
    """Build (or load the cached build of) the extension once; skip the test if it cannot."""
    ok, reason = _native.LIBRARY.load(build=True)
    if not ok:
        pytest.skip(f"native extension unavailable: {reason}")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty extension cache, and no $SEQLAYERS_NATIVE or backend overrides."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(_native.ENV_VAR, raising=False)
    monkeypatch.delenv("SEQLAYERS_SCAN_BACKEND", raising=False)
    monkeypatch.delenv("SEQLAYERS_VANDERMONDE_BACKEND", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def broken_library(fresh_cache, tmp_path, monkeypatch):
    """The extension replaced by one whose source does not compile, and "auto" allowed to build."""
    monkeypatch.setenv(_native.ENV_VAR, "1")
    sources = tmp_path / "csrc"
    sources.mkdir()
    (sources / "broken.cpp").write_text("#error deliberately broken\n")
    monkeypatch.setattr(_native, "LIBRARY", _native.NativeLibrary(sources))


def fake_backend(op, name, run, *, priority=0, auto=True, available=(True, ""), supports=None):
    """A registry entry whose forward is ``run(*inputs)``; ``supports(call) -> (ok, reason)``
    decides what it plans (every call by default), ``available`` whether it loads at all."""
    from types import SimpleNamespace

    from seqlayers.errors import Unsupported
    from seqlayers.ops.dispatch import Backend

    def plan(call, auto):
        ok, reason = supports(call) if supports is not None else (True, "")
        if not ok:
            raise Unsupported(reason)

    impl = SimpleNamespace(is_available=lambda: available, plan=plan,
                           forward=lambda plan, *inputs: run(*inputs))
    return Backend(op, name, impl, priority=priority, auto=auto)
