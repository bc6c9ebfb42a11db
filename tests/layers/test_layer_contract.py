"""What every layer family promises a user: construction-time checks, keywords passed through to
the generator, empty batches, half precision, and S5 in float64."""

import inspect

import pytest
import torch

import seqlayers
from seqlayers.kernels import S4DKernel

from ..helpers import REL_RMS_TOL, rel_rms
from ..stack.layers import CASES, H, L_MAX

FAMILIES = {
    "s4d": (seqlayers.S4D, (H,), {}, "long_conv"),
    "s5": (seqlayers.S5, (H, 8), {"blocks": 2}, "linear_scan"),
    "sgconv": (seqlayers.SGConv, (H, L_MAX), {}, "long_conv"),
    "longconv": (seqlayers.LongConv, (H, L_MAX), {}, "long_conv"),
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("backend", ["bogus", "fft-typo"])
def test_unknown_backend_is_refused_at_construction(family, backend):
    cls, args, kwargs, op = FAMILIES[family]
    with pytest.raises(ValueError, match=rf"unknown backend '{backend}' for {op}"):
        cls(*args, **kwargs, backend=backend)


def test_s5_backend_names_a_scan_backend_and_agrees_with_mode():
    with pytest.raises(ValueError, match="for linear_scan"):
        seqlayers.S5(H, 8, blocks=2, backend="fft")  # a long_conv backend: not what S5's backend names
    with pytest.raises(ValueError, match="mode='conv' conflicts with backend='torch'"):
        seqlayers.S5(H, 8, blocks=2, mode="conv", backend="torch")
    with pytest.raises(ValueError, match="mode='scan' conflicts with backend='conv'"):
        seqlayers.S5(H, 8, blocks=2, mode="scan", backend="conv")
    x = torch.randn(2, 30, H)
    layer = seqlayers.S5(H, 8, blocks=2, backend="conv")
    reference = seqlayers.S5(H, 8, blocks=2, backend="naive", mode="scan")
    reference.load_state_dict(layer.state_dict())
    assert rel_rms(layer(x), reference(x)) <= 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_kernel_keywords_pass_through_and_show_in_help(family):
    cls, args, kwargs, _ = FAMILIES[family]
    generator_keywords = set(inspect.signature(cls.generator_class).parameters) - {"d_model", "channels"}
    shown = set(inspect.signature(cls).parameters)
    assert generator_keywords <= shown and {"bidirectional", "dropout", "backend", "transposed"} <= shown
    assert cls.generator_class.__name__ in cls.__doc__
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['d_stat'\]"):
        cls(*args, **kwargs, d_stat=4)


def test_keywords_reach_the_generator_and_channels_double_once():
    layer = seqlayers.S4D(H, 8, init="lin", dt_min=1e-2, channels=3, bidirectional=True)
    assert layer.kernel.init == "lin" and layer.channels == 3 and layer.kernel.channels == 6
    expected = S4DKernel(H, 8, init="lin", channels=6)
    assert layer.kernel.A_imag.shape == expected.A_imag.shape
    assert torch.equal(layer.kernel.A_imag, expected.A_imag)


@pytest.mark.parametrize("case", CASES)
def test_empty_batch_gives_an_empty_result(case):
    layer = CASES[case]()
    x = torch.randn(0, 20, H, requires_grad=True)
    y = layer(x)
    assert y.shape == (0, 20, H)
    y.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_forward_and_backward_close_to_float32(case, dtype):
    torch.manual_seed(0)
    reference = CASES[case]()
    layer = CASES[case]()
    layer.load_state_dict(reference.state_dict())
    layer.to(dtype)
    assert all(p.dtype == torch.float32 for p in layer.kernel.parameters())  # SSM / kernel params
    assert layer.mixing[0].weight.dtype == dtype
    x = torch.randn(2, 40, H)
    x_half = x.to(dtype).requires_grad_()
    y = layer(x_half)
    assert y.dtype == dtype
    x_ref = x.to(dtype).float().requires_grad_()
    y_ref = reference(x_ref)
    assert rel_rms(y, y_ref) <= REL_RMS_TOL[dtype]
    dy = torch.randn_like(y_ref)
    (y.float() * dy).sum().backward()
    (y_ref * dy).sum().backward()
    assert rel_rms(x_half.grad, x_ref.grad) <= 2 * REL_RMS_TOL[dtype]
    for name, p in layer.kernel.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_casting_back_keeps_the_kernel_parameters_exact():
    layer = seqlayers.S4D(H, 8)
    before = layer.kernel.A_imag.detach().clone()
    assert torch.equal(layer.bfloat16().float().kernel.A_imag, before)


def test_s5_computes_in_float64():
    layer = seqlayers.S5(4, d_state=8, blocks=2, skip=False).double()
    x = torch.randn(1, 20, 4, dtype=torch.float64)
    assert not torch.equal(layer(x), layer(x.float().double()))  # the reproducer
    layer.eval()
    state, steps = layer.default_state(1), []
    for t in range(x.shape[1]):
        y_t, state = layer.step(x[:, t], state)
        steps.append(y_t)
    assert state.dtype == torch.complex128
    assert rel_rms(torch.stack(steps, 1), layer(x)) <= 1e-12


@pytest.mark.parametrize("mode", ["scan", "conv"])
def test_s5_gradcheck_in_float64(mode):
    layer = seqlayers.S5(3, d_state=4, blocks=1, mode=mode, conj_sym=False).double()
    names = [n for n, _ in layer.named_parameters()]
    x = torch.randn(2, 7, 3, dtype=torch.float64, requires_grad=True)
    params = tuple(p.detach().requires_grad_() for p in layer.parameters())
    call = lambda x, *ps: torch.func.functional_call(layer, dict(zip(names, ps)), (x,))  # noqa: E731
    assert torch.autograd.gradcheck(call, (x, *params))


@pytest.mark.parametrize("backend, earlier_outputs_finite", [("torch", False), ("naive", True)])
def test_a_nan_reaches_earlier_outputs_only_through_an_fft(backend, earlier_outputs_finite):
    """The documented behaviour (README, ConvLayer, long_conv): an FFT spreads a NaN over the whole
    row; the direct convolution keeps it causal."""
    layer = seqlayers.S4D(H, 8, backend=backend)
    x = torch.randn(1, 30, H)
    x[0, 20, 0] = float("nan")
    y = layer(x)
    assert bool(torch.isfinite(y[:, :20]).all()) is earlier_outputs_finite
    assert torch.isnan(y[:, 20:]).any()
