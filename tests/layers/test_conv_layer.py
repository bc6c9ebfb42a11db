"""The shared layer, exercised through S4D and a trivial explicit-kernel generator."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import seqlayers
from seqlayers.kernels import KernelGenerator
from seqlayers.layers import ConvLayer, conv_layer


class FixedKernel(KernelGenerator):
    """A fixed random kernel of length l_max, cropped to L: the simplest generator."""

    def __init__(self, d_model, channels=1, l_max=64):
        super().__init__(d_model, channels)
        self.k = torch.nn.Parameter(torch.randn(channels, d_model, l_max) / l_max)

    def kernel(self, L):
        return self.k[..., :L]


def _step_all(layer, x):
    state = layer.default_state(x.shape[0])
    ys = []
    for t in range(x.shape[1]):
        y_t, state = layer.step(x[:, t], state)
        ys.append(y_t)
    return torch.stack(ys, 1)


@pytest.mark.parametrize("init", ["lin", "inv", "legs", "real"])
@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
@pytest.mark.parametrize("channels", [1, 2])
def test_s4d_conv_equals_step(init, disc, channels):
    layer = seqlayers.S4D(6, 16, init=init, disc=disc, channels=channels).eval()
    x = torch.randn(2, 45, 6)
    torch.testing.assert_close(_step_all(layer, x), layer(x), rtol=1e-4, atol=1e-5)


def test_step_equals_forward_float64():
    layer = seqlayers.S4D(4, 8).double().eval()
    x = torch.randn(3, 30, 4, dtype=torch.float64)
    torch.testing.assert_close(_step_all(layer, x), layer(x), rtol=1e-9, atol=1e-9)


@given(t=st.integers(0, 39), seed=st.integers(0, 1000), bidirectional=st.booleans())
def test_causality_and_future_dependence(t, seed, bidirectional):
    torch.manual_seed(seed)
    layer = seqlayers.S4D(4, 8, bidirectional=bidirectional).eval()
    x = torch.randn(2, 40, 4)
    x2 = x.clone()
    x2[:, t:] += 1.0
    y, y2 = layer(x), layer(x2)
    if bidirectional:
        if t > 0:
            assert (y[:, :t] - y2[:, :t]).abs().max() > 1e-6  # the past sees the future
    else:
        torch.testing.assert_close(y[:, :t], y2[:, :t])


def test_bidirectional_is_two_sided_without_wraparound():
    """Explicit kernels: y[t] = sum_s kf[t-s] u[s] (s <= t) + sum_{s>t} kb[s-t-1] u[s]; no wrap."""
    H, L = 2, 10
    gen = FixedKernel(H, channels=2, l_max=L)
    layer = ConvLayer(gen, bidirectional=True, activation="identity", mixing="none", skip=False).eval()
    with torch.no_grad():
        layer.mixing = torch.nn.Identity()
    u = torch.randn(1, L, H, dtype=torch.float32)
    kf, kb = gen.k[0].detach(), gen.k[1].detach()
    expected = torch.zeros(1, L, H)
    for t in range(L):
        for s in range(L):
            if s <= t:
                expected[0, t] += kf[:, t - s] * u[0, s]
            else:
                expected[0, t] += kb[:, s - t - 1] * u[0, s]
    torch.testing.assert_close(layer(u), expected)


def test_impulse_at_end_does_not_wrap_to_start():
    layer = seqlayers.S4D(3, 8).eval()
    x = torch.zeros(1, 50, 3)
    base = layer(x)
    x[:, -1] = 5.0
    torch.testing.assert_close(layer(x)[:, :-1], base[:, :-1])


def test_transposed_and_dtype():
    layer = seqlayers.S4D(5, 8, transposed=True).eval()
    x = torch.randn(2, 5, 33)
    y = layer(x)
    assert y.shape == (2, 5, 33)
    layer_t = seqlayers.S4D(5, 8).eval()
    layer_t.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer_t(x.transpose(1, 2)).transpose(1, 2), y)
    assert seqlayers.S4D(4, 8).double()(torch.randn(1, 9, 4, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("activation", ["identity", "gelu", "silu", "relu", "tanh"])
@pytest.mark.parametrize("mixing", ["glu", "linear", "none"])
def test_activation_and_mixing(activation, mixing):
    layer = conv_layer(FixedKernel(4), activation=activation, mixing=mixing)
    y = layer(torch.randn(2, 20, 4))
    assert y.shape == (2, 20, 4)


def test_dropout_is_tied_over_length_and_off_in_eval():
    layer = seqlayers.S4D(8, 8, dropout=0.5, mixing="none", activation="identity")
    layer.D.data.zero_()
    layer.D.data += 1.0
    x = torch.ones(4, 30, 8)
    layer.train()
    y = layer(x)
    zero = (y == 0).all(dim=1)  # (B, H): dropped features are zero at every position
    assert zero.any() and not (y == 0).all()
    assert torch.equal((y == 0).any(dim=1), zero)
    layer.eval()
    torch.testing.assert_close(layer(x), layer(x))


def test_gradients_reach_every_parameter():
    layer = seqlayers.S4D(4, 8, bidirectional=True, channels=2)
    layer(torch.randn(2, 20, 4)).square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_backend_argument_is_used():
    x = torch.randn(2, 20, 4)
    layer = seqlayers.S4D(4, 8, backend="naive").eval()
    ref = seqlayers.S4D(4, 8).eval()
    ref.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), ref(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unknown backend 'cuda-magic'"):
        seqlayers.S4D(4, 8, backend="cuda-magic")(x)


@pytest.mark.parametrize(
    "x,err,match",
    [
        (torch.randn(2, 10, 5), ValueError, r"\(B, L, H\) with H=4, got \(2, 10, 5\)"),
        (torch.randn(10, 4), ValueError, r"\(B, L, H\)"),
        (torch.randn(2, 0, 4), ValueError, "L >= 1"),
        (torch.randint(0, 3, (2, 10, 4)), TypeError, "real floating-point"),
        (torch.randn(2, 10, 4, dtype=torch.cfloat), TypeError, "complex64"),
    ],
)
def test_bad_input(x, err, match):
    with pytest.raises(err, match=match):
        seqlayers.S4D(4, 8)(x)


def test_bad_configuration():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        seqlayers.S4D(4, 8, activation="swish")
    with pytest.raises(ValueError, match="unknown mixing 'moe'"):
        seqlayers.S4D(4, 8, mixing="moe")
    with pytest.raises(ValueError, match="mixing='none' needs one output channel"):
        seqlayers.S4D(4, 8, mixing="none", channels=2)
    with pytest.raises(ValueError, match="even number of channels"):
        ConvLayer(FixedKernel(4, channels=3), bidirectional=True)
    with pytest.raises(TypeError, match="KernelGenerator"):
        ConvLayer(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\)"):
        seqlayers.S4D(4, 8, dropout=1.5)


def test_step_errors():
    with pytest.raises(RuntimeError, match="bidirectional layer has no recurrent"):
        seqlayers.S4D(4, 8, bidirectional=True).default_state(1)
    with pytest.raises(RuntimeError, match="FixedKernel has no recurrent"):
        conv_layer(FixedKernel(4)).default_state(1)
    layer = seqlayers.S4D(4, 8)
    state = layer.default_state(2)
    with pytest.raises(ValueError, match=r"x_t of shape \(B, H\) with H=4"):
        layer.step(torch.randn(2, 5), state)
    with pytest.raises(ValueError, match=r"state must be complex of shape \(B, H, N/2\) = \(2, 4, 4\)"):
        layer.step(torch.randn(2, 4), torch.zeros(2, 4, 3, dtype=torch.cfloat))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.bfloat16, 3e-2), (torch.float16, 5e-3)])
def test_input_dtype_on_float32_module(dtype, tol):
    """A float32 layer accepts other float inputs, computes in float32 and returns their dtype."""
    layer = seqlayers.S4D(4, 8).eval()
    x = torch.randn(2, 40, 4)
    y = layer(x.to(dtype))
    assert y.dtype == dtype
    ref = layer(x.to(dtype).float())
    assert ((y.float() - ref).norm() / ref.norm()).item() < tol
    state = layer.default_state(2)
    assert layer.step(x[:, 0].to(dtype), state)[0].dtype == dtype
