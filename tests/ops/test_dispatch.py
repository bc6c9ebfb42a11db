"""Backend registry: explicit names, context manager, environment variable, errors."""

import logging

import pytest
import torch

from seqlayers.ops import BackendUnavailableError, available_backends, long_conv, use_backend
from seqlayers.ops import dispatch
from seqlayers.ops.dispatch import Backend, register, resolve

from .conftest import fake_backend


@pytest.fixture
def fake_backends():
    """Register a failing-to-load backend and a recording one; remove them afterwards."""
    calls = []

    def record(u, k, D):
        calls.append("recorder")
        return torch.zeros_like(u)

    added = [
        register(fake_backend("long_conv", "broken", record, available=(False, "needs a GPU"), priority=50)),
        register(fake_backend("long_conv", "recorder", record, auto=False, priority=-50)),
        register(fake_backend("long_conv", "picky", record, supports=lambda call: (False, "odd length"),
                              priority=40)),
    ]
    yield calls
    for backend in added:
        del dispatch._REGISTRY["long_conv"][backend.name]


def _args():
    return torch.randn(1, 2, 5), torch.randn(2, 5), None


def test_torch_is_available_everywhere():
    for op in ("long_conv", "vandermonde"):
        assert "torch" in available_backends(op)


def test_auto_skips_unavailable_and_unsupported(fake_backends, caplog):
    with caplog.at_level(logging.INFO, logger="seqlayers.ops"):
        assert resolve("long_conv", "auto", *_args())[0].name == "torch"
    assert "needs a GPU" in caplog.text and "odd length" in caplog.text
    assert "broken" not in available_backends("long_conv")
    assert "picky" in available_backends("long_conv")


def test_explicit_unavailable_backend_raises_with_reason(fake_backends):
    with pytest.raises(BackendUnavailableError, match="needs a GPU.*Available backends"):
        long_conv(*_args(), backend="broken")
    with pytest.raises(BackendUnavailableError, match="odd length"):
        long_conv(*_args(), backend="picky")


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'nope' for long_conv"):
        long_conv(*_args(), backend="nope")  # refused at the entry, before any work
    with pytest.raises(ValueError, match="unknown backend 'nope' for long_conv"):
        resolve("long_conv", "nope", *_args())
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        with use_backend("nope"):
            pass
    with pytest.raises(ValueError, match="unknown op"):
        available_backends("conv3d")


def test_precedence_argument_context_env(fake_backends, monkeypatch):
    monkeypatch.setenv("SEQLAYERS_CONV_BACKEND", "recorder")
    long_conv(*_args())
    assert fake_backends == ["recorder"]  # env var overrides auto
    with use_backend("torch"):
        long_conv(*_args())  # context beats env
        assert fake_backends == ["recorder"]
        long_conv(*_args(), backend="recorder")  # argument beats context
        assert fake_backends == ["recorder", "recorder"]
        with use_backend("auto"):
            assert resolve("long_conv", "auto", *_args())[0].name == "recorder"  # back to env
    monkeypatch.setenv("SEQLAYERS_CONV_BACKEND", "auto")
    assert resolve("long_conv", "auto", *_args())[0].name == "torch"


def test_env_unknown_name_is_reported(monkeypatch):
    monkeypatch.setenv("SEQLAYERS_CONV_BACKEND", "cufft9000")
    with pytest.raises(ValueError, match=r"from \$SEQLAYERS_CONV_BACKEND"):
        long_conv(*_args())


def test_use_backend_restricted_to_one_op(fake_backends):
    with use_backend("recorder", op="long_conv"):
        assert resolve("long_conv", "auto", *_args())[0].name == "recorder"
        z = torch.full((2, 3), 0.5 + 0.1j, dtype=torch.complex64)
        assert resolve("vandermonde", "auto", z, z, 4)[0].name != "recorder"
    with pytest.raises(ValueError, match="for vandermonde"):
        with use_backend("recorder", op="vandermonde"):
            pass


def test_register_rejects_auto_and_unknown_op():
    with pytest.raises(ValueError, match="reserved"):
        register(Backend("long_conv", "auto", "nowhere"))
    with pytest.raises(ValueError, match="unknown op"):
        register(Backend("conv3d", "x", "nowhere"))
