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
