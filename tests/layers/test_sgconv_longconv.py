"""SGConv and LongConv layers through the shared ConvLayer: shapes, causality, bidirectional,
gradients, state dicts, kernel dropout, length limits, registration."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import seqlayers
from seqlayers import LongConv, SGConv
from seqlayers.kernels import LongConvKernel, SGConvKernel

H, L_MAX = 6, 64


def make(family, **kwargs):
    if family == "sgconv":
        return SGConv(H, L_MAX, kernel_dim=8, **kwargs)
    return LongConv(H, L_MAX, squash_lambda=1e-4, **kwargs)


FAMILIES = ["sgconv", "longconv"]


def test_registered_everywhere():
    assert seqlayers.layers.LAYERS["sgconv"] is SGConv
    assert seqlayers.layers.LAYERS["longconv"] is LongConv
    for name in ("SGConv", "LongConv"):
        assert name in seqlayers.__all__ and name in seqlayers.layers.__all__
    for name in ("SGConvKernel", "LongConvKernel", "squash"):
        assert name in seqlayers.kernels.__all__
    assert isinstance(SGConv(4, 32, kernel_dim=8).kernel, SGConvKernel)
    assert isinstance(LongConv(4, 32).kernel, LongConvKernel)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("L", [1, 2, 15, 63, 64])
def test_shapes_and_dtype(family, bidirectional, transposed, L):
    layer = make(family, bidirectional=bidirectional, transposed=transposed, channels=2)
    assert layer.kernel.channels == (4 if bidirectional else 2)
    x = torch.randn(1, H, L) if transposed else torch.randn(1, L, H)
    y = layer(x)
    assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("family", FAMILIES)
def test_double_layer_keeps_dtype(family):
    x = torch.randn(2, 20, H, dtype=torch.float64)
    assert make(family).double()(x).dtype == torch.float64


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=8, deadline=None)
@given(L=st.integers(2, L_MAX), data=st.data())
def test_causal_layers_ignore_the_future(family, L, data):
    t0 = data.draw(st.integers(1, L - 1))
    layer = make(family, channels=2).eval()
    x = torch.randn(2, L, H)
    x2 = x.clone()
    x2[:, t0:] = torch.randn(2, L - t0, H)
    torch.testing.assert_close(layer(x2)[:, :t0], layer(x)[:, :t0])
    assert not torch.allclose(layer(x2)[:, t0:], layer(x)[:, t0:])


def reference_bidirectional(kernel, D, u):
    """Direct sums: causal half sees s <= t, anti-causal half sees s > t; no wrap-around."""
    C2, Hk, L = kernel.shape
    C = C2 // 2
    y = torch.zeros(u.shape[0], C, Hk, L, dtype=torch.float64)
    k, u = kernel.double(), u.double()
    for t in range(L):
        for s in range(L):
            if s <= t:
                y[:, :, :, t] += k[:C, :, t - s] * u[:, None, :, s]
            else:
                y[:, :, :, t] += k[C:, :, s - t - 1] * u[:, None, :, s]
    return y + D.double()[None, :, :, None] * u[:, None]


@pytest.mark.parametrize("family", FAMILIES)
def test_bidirectional_sees_the_future_without_wrap_around(family):
    L = 13
    layer = make(family, bidirectional=True, activation="identity", mixing="none", transposed=True).eval()
    u = torch.randn(2, H, L)
    expected = reference_bidirectional(layer.kernel(L).detach(), layer.D.detach(), u)[:, 0]
    torch.testing.assert_close(layer(u).double(), expected, rtol=1e-4, atol=1e-5)
    x = torch.randn(1, 20, H)
    x2 = x.clone()
    x2[:, -1] += 1.0
    layer = make(family, bidirectional=True).eval()
    assert not torch.allclose(layer(x2)[:, 0], layer(x)[:, 0])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_flow_to_every_parameter(family, bidirectional):
    extra = {"learn_decay": True} if family == "sgconv" else {"kernel_dropout": 0.1, "smooth_mode": "freq"}
    layer = make(family, bidirectional=bidirectional, channels=2, dropout=0.1, **extra).train()
    layer(torch.randn(3, 40, H)).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_sgconv_accepts_inputs_longer_than_l_max():
    layer = SGConv(H, 32, kernel_dim=8).eval()
    y = layer(torch.randn(2, 100, H))
    assert y.shape == (2, 100, H) and torch.isfinite(y).all()


def test_longconv_rejects_inputs_longer_than_l_max():
    layer = LongConv(H, 32)
    with pytest.raises(ValueError, match=r"l_max=32.*got L=33"):
        layer(torch.randn(2, 33, H))


@pytest.mark.parametrize("family", FAMILIES)
def test_state_dict_round_trip_into_fresh_layer(family):
    layer = make(family, bidirectional=True).eval()
    x = torch.randn(2, 50, H)
    expected = layer(x)
    fresh = make(family, bidirectional=True).eval()
    fresh.load_state_dict(layer.state_dict())
    torch.testing.assert_close(fresh(x), expected)


def test_kernel_dropout_off_in_eval():
    layer = LongConv(H, L_MAX, squash_lambda=0.0, kernel_dropout=0.5)
    x = torch.randn(2, 30, H)
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))
    layer.train()
    torch.manual_seed(0)
    first = layer(x)
    assert not torch.allclose(first, layer(x))


@pytest.mark.parametrize(
    "build, expected, got",
    [
        (lambda: SGConv(H, 64, kernel_dim=0), "kernel_dim must be an int in [1, l_max=64]", "got 0"),
        (lambda: SGConv(H, 64, kernel_dim=128), "kernel_dim must be an int in [1, l_max=64]", "got 128"),
        (lambda: SGConv(H, 64, decay=2.0), "decay must be a number in (0, 1]", "got 2.0"),
        (lambda: LongConv(H, 64, smooth=6), "smooth must be an odd int", "got 6"),
        (lambda: LongConv(H, 64, squash_lambda=-1.0), "squash_lambda must be a number >= 0", "got -1.0"),
    ],
)
def test_bad_layer_arguments(build, expected, got):
    with pytest.raises(ValueError) as err:
        build()
    assert expected in str(err.value) and got in str(err.value)
