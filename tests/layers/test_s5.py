"""S5: scan, conv and step modes agree; causality; bidirectional; every init; bad input."""

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import seqlayers
from seqlayers.kernels import S5Kernel
from seqlayers.layers import LAYERS
from tests.helpers import rel_rms

H = 5


def _layer(**kwargs):
    kwargs = {"d_state": 8, "blocks": 2, "init": "legs", **kwargs}
    return seqlayers.S5(H, **kwargs).eval()


def _run(layer, x, mode):
    layer.mode = mode
    return layer(x)


def _step_all(layer, x):
    state = layer.default_state(x.shape[0])
    ys = []
    for t in range(x.shape[1]):
        y_t, state = layer.step(x[:, t], state)
        ys.append(y_t)
    return torch.stack(ys, 1)


@pytest.mark.parametrize("init", ["ptd", "legs", "lin", "inv"])
@pytest.mark.parametrize("conj_sym", [True, False])
def test_scan_conv_step_agree_every_init(init, conj_sym):
    layer = _layer(init=init, conj_sym=conj_sym, ptd_eps=0.1).requires_grad_(False)
    x = torch.randn(2, 37, H)
    y_scan, y_conv = _run(layer, x, "scan"), _run(layer, x, "conv")
    assert y_scan.shape == x.shape and y_scan.dtype == x.dtype
    assert rel_rms(y_conv, y_scan) < 1e-5
    assert rel_rms(_step_all(layer, x), y_scan) < 1e-5
    assert (layer.kernel.Lambda.real < 0).all()


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
@pytest.mark.parametrize("L", [1, 2, 63, 257])
def test_modes_agree_lengths_disc(disc, L):
    layer = _layer(disc=disc, C_init="trunc_standard").requires_grad_(False)
    x = torch.randn(1, L, H)
    y_scan = _run(layer, x, "scan")
    assert rel_rms(_run(layer, x, "conv"), y_scan) < 1e-5
    if L <= 63:
        assert rel_rms(_step_all(layer, x), y_scan) < 1e-5


def test_scan_and_conv_gradients_agree():
    torch.manual_seed(1)
    layer = _layer(init="ptd", conj_sym=False, ptd_eps=0.1, C_init="complex_normal", clip_eigs=True)
    x = torch.randn(2, 40, H, requires_grad=True)
    dy = torch.randn(2, 40, H)
    grads = {}
    for mode in ("scan", "conv"):
        layer.zero_grad()
        x.grad = None
        (_run(layer, x, mode) * dy).sum().backward()
        grads[mode] = [x.grad.clone()] + [p.grad.clone() for p in layer.parameters()]
    for g_scan, g_conv in zip(grads["scan"], grads["conv"]):
        assert rel_rms(g_conv, g_scan) < 1e-4


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradients_reach_every_parameter(bidirectional):
    layer = _layer(bidirectional=bidirectional).train()
    (layer(torch.randn(2, 20, H)) ** 2).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@functools.cache
def _causal_layer():
    return _layer()


@settings(max_examples=10)
@given(t=st.integers(0, 30), mode=st.sampled_from(["scan", "conv"]))
def test_causal(t, mode):
    layer = _causal_layer()
    layer.mode = mode
    x = torch.randn(1, 31, H)
    x2 = x.clone()
    x2[:, t:] = torch.randn_like(x2[:, t:])
    y, y2 = layer(x), layer(x2)
    torch.testing.assert_close(y[:, :t], y2[:, :t])
    assert not torch.allclose(y[:, t:], y2[:, t:])


@pytest.mark.parametrize("mode", ["scan", "conv"])
def test_bidirectional_sees_the_future(mode):
    layer = _layer(bidirectional=True, mode=mode)
    x = torch.randn(1, 30, H)
    x2 = x.clone()
    x2[:, 20:] += 1.0
    assert not torch.allclose(layer(x)[:, :20], layer(x2)[:, :20])
    other = "conv" if mode == "scan" else "scan"
    assert rel_rms(_run(layer, x, other), _run(layer, x, mode)) < 1e-5


def test_bidirectional_backward_pass_is_the_reversed_forward_pass():
    layer = _layer(bidirectional=True, skip=False, mixing="none", activation="identity")
    C = layer.kernel.C.data
    C[1] = C[0]
    x = torch.randn(1, 25, H)
    y = layer(x)
    layer.kernel.C.data[1] = 0
    y_fwd = layer(x)
    y_bwd = y - y_fwd  # backward part at t: forward layer on the reversed input at L-2-t
    torch.testing.assert_close(y_bwd[:, :-1].flip(1), layer(x.flip(1))[:, :-1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(y_bwd[:, -1], torch.zeros_like(y_bwd[:, -1]))


def test_shared_layer_features():
    layer = _layer(transposed=True, dropout=0.5, mixing="linear", activation="silu")
    x = torch.randn(3, H, 17)
    assert layer(x).shape == x.shape
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(3, 17, H + 1))
    layer.train()
    assert not torch.equal(layer(x), layer(x))


def test_conj_sym_halves_the_modes_and_registry():
    assert _layer(conj_sym=True).kernel.n_modes == 4
    assert _layer(conj_sym=False).kernel.n_modes == 8
    assert LAYERS["s5"] is seqlayers.S5 and "S5" in seqlayers.__all__
    assert isinstance(_layer().kernel, S5Kernel)


def test_legs_conj_sym_equals_full():
    """With the unitary LegS basis and real B, C the half-mode 2 Re output is the full system."""
    torch.manual_seed(3)
    full = seqlayers.S5(H, 8, blocks=2, init="legs", conj_sym=False, skip=False, mixing="none",
                        activation="identity", dt_min=0.05, dt_max=0.05).eval()
    half = seqlayers.S5(H, 8, blocks=2, init="legs", conj_sym=True, skip=False, mixing="none",
                        activation="identity", dt_min=0.05, dt_max=0.05).eval()
    im = full.kernel.Lambda_im
    keep = torch.argsort(-im, stable=True)[:4].sort().values  # the kept modes, in block order
    # each kept mode's conjugate in its own block of 4
    drop = torch.stack([4 * (k // 4) + torch.argmin((im[4 * (k // 4):4 * (k // 4) + 4] + im[k]).abs()) for k in keep])
    with torch.no_grad():
        half.kernel.B.copy_(full.kernel.B[keep])
        half.kernel.C.copy_(full.kernel.C[:, :, keep])
        # the dropped half must be the conjugates of the kept one for the full system to be real
        full.kernel.B[drop] = half.kernel.B * torch.tensor([1.0, -1.0])
        full.kernel.C[:, :, drop] = full.kernel.C[:, :, keep] * torch.tensor([1.0, -1.0])
    torch.testing.assert_close(full.kernel.Lambda_im[drop], -half.kernel.Lambda_im)
    x = torch.randn(2, 30, H)
    assert rel_rms(half(x), full(x)) < 1e-5


def test_fast_modes_do_not_underflow_to_nan():
    layer = _layer(mode="conv").requires_grad_(False)
    layer.kernel.Lambda_re.fill_(-5000.0)
    assert torch.isfinite(layer(torch.randn(1, 20, H))).all()


def test_optim_hints():
    gen = _layer(lr=2e-3).kernel
    for p in (gen.Lambda_re, gen.Lambda_im, gen.log_step, gen.B):
        assert p._optim == {"lr": 2e-3, "weight_decay": 0.0}
    assert not hasattr(gen.C, "_optim")


def test_clip_and_step_sizes():
    gen = _layer(clip_eigs=True, dt_min=1e-3, dt_max=1e-1).kernel
    with torch.no_grad():
        gen.Lambda_re.fill_(1.0)
    assert (gen.Lambda.real <= -1e-4).all()
    steps = gen.log_step.exp()
    assert ((steps >= 1e-3) & (steps <= 1e-1)).all() and steps.shape == (gen.n_modes,)


def test_bad_input():
    with pytest.raises(ValueError, match="divisible"):
        seqlayers.S5(H, 10, blocks=3, conj_sym=False)
    with pytest.raises(ValueError, match="even"):
        seqlayers.S5(H, 7, blocks=1)
    with pytest.raises(ValueError, match="even block size"):
        seqlayers.S5(H, 12, blocks=4)
    with pytest.raises(ValueError, match="mode"):
        seqlayers.S5(H, 8, mode="fft")
    with pytest.raises(ValueError, match="init"):
        seqlayers.S5(H, 8, blocks=2, init="hippo")
    with pytest.raises(ValueError, match="C_init"):
        seqlayers.S5(H, 8, blocks=2, init="legs", C_init="zeros")
    with pytest.raises(ValueError, match="disc"):
        seqlayers.S5(H, 8, blocks=2, init="legs", disc="euler")
    with pytest.raises(NotImplementedError, match="modal_kernel"):
        _layer().kernel(10)
    with pytest.raises(RuntimeError, match="bidirectional"):
        _layer(bidirectional=True).default_state(1)
    layer = _layer()
    with pytest.raises(ValueError, match="state"):
        layer.step(torch.randn(2, H), torch.zeros(2, 3, dtype=torch.cfloat))


def test_default_construction():
    layer = seqlayers.S5(16)
    assert layer.kernel.n_modes == 32 and layer.kernel.init == "ptd"
    assert layer(torch.randn(2, 50, 16)).shape == (2, 50, 16)


def test_s5_rejects_a_custom_conv():
    with pytest.raises(ValueError, match="does not take conv="):
        seqlayers.S5(8, d_state=8, blocks=2, conv=torch.nn.Identity())
