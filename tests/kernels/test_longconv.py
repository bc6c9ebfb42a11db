"""LongConvKernel and squash: soft threshold, smoothing, order of operations, dropout, bad input."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from seqlayers.kernels import LongConvKernel, squash
from seqlayers.kernels.longconv import freq_window, smooth_time

finite = st.floats(-10, 10, allow_nan=False, width=32)
kernels = arrays(np.float32, st.integers(1, 64), elements=finite)
lams = st.floats(0, 5, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(kernels, lams)
def test_squash_is_odd(k, lam):
    k = torch.from_numpy(k)
    torch.testing.assert_close(squash(-k, lam), -squash(k, lam))


@settings(max_examples=60, deadline=None)
@given(kernels, lams)
def test_squash_zeroes_small_and_shrinks_the_rest_by_lam(k, lam):
    k = torch.from_numpy(k)
    out = squash(k, lam)
    small = k.abs() <= lam
    assert (out[small] == 0).all()
    big = ~small
    torch.testing.assert_close(out[big].abs(), k[big].abs() - lam)
    assert (torch.sign(out[big]) == torch.sign(k[big])).all()
    assert out.shape == k.shape and out.dtype == k.dtype


def test_squash_with_zero_lambda_is_identity_and_bad_lambda_raises():
    k = torch.randn(3, 5)
    torch.testing.assert_close(squash(k, 0.0), k)
    with pytest.raises(ValueError, match=r"lam must be a number >= 0, got -0.1"):
        squash(k, -0.1)


def test_init_shape_scale_and_hints():
    torch.manual_seed(0)
    gen = LongConvKernel(64, 1024, channels=2, lr=2e-4)
    assert gen.weight.shape == (2, 64, 1024)
    assert abs(gen.weight.std().item() - 0.002) < 1e-4
    assert gen.weight._optim == {"lr": 2e-4, "weight_decay": 0.0}
    assert [n for n, _ in gen.named_parameters()] == ["weight"]


def moving_average(w: np.ndarray, window: int) -> np.ndarray:
    r = window // 2
    padded = np.concatenate([np.repeat(w[..., :1], r, -1), w, np.repeat(w[..., -1:], r, -1)], -1)
    return np.stack([padded[..., t : t + window].mean(-1) for t in range(w.shape[-1])], -1)


@pytest.mark.parametrize("window, length", [(3, 10), (7, 50), (7, 5), (9, 1)])
def test_time_smoothing_is_a_replicate_padded_moving_average(window, length):
    k = torch.randn(2, 3, length, dtype=torch.float64)
    expected = moving_average(k.numpy(), window)
    np.testing.assert_allclose(smooth_time(k, window).numpy(), expected, rtol=1e-12, atol=1e-12)
    const = torch.full((1, 1, length), 0.25)
    torch.testing.assert_close(smooth_time(const, window), const)


def test_freq_smoothing_is_a_moving_average_of_the_spectrum():
    l_max, window = 40, 5
    k = torch.randn(3, l_max, dtype=torch.float64)
    spec = torch.fft.fft(k, n=2 * l_max)
    r = window // 2
    averaged = sum(torch.roll(spec, s, dims=-1) for s in range(-r, r + 1)) / window
    expected = torch.fft.ifft(averaged).real[..., :l_max]
    torch.testing.assert_close(k * freq_window(window, 2 * l_max, l_max).double(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["time", "freq"])
def test_order_is_smooth_then_squash(mode):
    gen = LongConvKernel(4, 64, squash_lambda=0.5, smooth=5, smooth_mode=mode)
    with torch.no_grad():
        gen.weight.normal_()
    w = gen.weight.detach()
    smoothed = smooth_time(w, 5) if mode == "time" else w * freq_window(5, 128, 64)
    torch.testing.assert_close(gen(64), squash(smoothed, 0.5))


@pytest.mark.parametrize("mode", ["time", "freq"])
@pytest.mark.parametrize("L", [1, 2, 15, 61, 63, 64])
def test_shorter_lengths_use_the_first_taps(mode, L):
    gen = LongConvKernel(3, 64, channels=2, squash_lambda=0.0, smooth_mode=mode).eval()
    k = gen(L)
    assert k.shape == (2, 3, L) and k.dtype == torch.float32
    torch.testing.assert_close(k, gen(64)[..., :L])


@pytest.mark.parametrize("smooth", [0, 1])
def test_smoothing_off(smooth):
    gen = LongConvKernel(3, 32, squash_lambda=0.0, smooth=smooth)
    torch.testing.assert_close(gen(32), gen.weight.detach())


def test_kernel_dropout_only_in_training():
    gen = LongConvKernel(8, 256, squash_lambda=0.0, smooth=0, kernel_dropout=0.3)
    gen.eval()
    torch.testing.assert_close(gen(256), gen.weight.detach())
    gen.train()
    k = gen(256)
    dropped = k == 0
    assert 0.2 < dropped.float().mean().item() < 0.4
    torch.testing.assert_close(k[~dropped], gen.weight.detach()[~dropped] / 0.7)


def test_longer_than_l_max_raises_naming_both():
    gen = LongConvKernel(4, 100)
    with pytest.raises(ValueError, match=r"l_max=100.*got L=101"):
        gen(101)


def test_gradient_reaches_the_kernel():
    gen = LongConvKernel(4, 50, squash_lambda=1e-4)
    (gen(40) * torch.randn(1, 4, 40)).sum().backward()
    assert gen.weight.grad is not None and gen.weight.grad[..., :40].abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs, expected, got",
    [
        ({"smooth": 4}, "smooth must be an odd int window (or 0 / 1 for none)", "got 4"),
        ({"smooth": -3}, "smooth must be an odd int window", "got -3"),
        ({"squash_lambda": -0.001}, "squash_lambda must be a number >= 0", "got -0.001"),
        ({"kernel_dropout": 1.0}, "kernel_dropout must be a probability in [0, 1)", "got 1.0"),
        ({"smooth_mode": "space"}, "['time', 'freq']", "got 'space'"),
        ({"l_max": 0}, "l_max must be a positive int", "got 0"),
    ],
)
def test_bad_arguments_raise_naming_expected_and_received(kwargs, expected, got):
    kwargs = {"l_max": 64, **kwargs}
    with pytest.raises(ValueError) as err:
        LongConvKernel(4, **kwargs)
    assert expected in str(err.value) and got in str(err.value)
