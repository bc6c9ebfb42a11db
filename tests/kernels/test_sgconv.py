"""SGConvKernel: scale count, parameter count, decay, normalization, any length, bad input."""

import math

import pytest
import torch

from seqlayers.kernels import SGConvKernel
from seqlayers.kernels.sgconv import cosine_init, num_scales
from seqlayers.optim import param_groups


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "l_max, kernel_dim",
    [(1, 1), (64, 64), (65, 64), (100, 64), (128, 64), (129, 64), (1000, 64), (1024, 64), (1025, 64),
     (4096, 1), (16384, 32), (97, 7)],
)
def test_scale_count_follows_formula(l_max, kernel_dim):
    n = num_scales(l_max, kernel_dim)
    assert n == 1 + math.ceil(math.log2(l_max / kernel_dim))
    # The parameterized pieces (lengths d, d, 2d, ...) cover l_max, with no scale to spare.
    assert kernel_dim * 2 ** (n - 1) >= l_max
    assert n == 1 or kernel_dim * 2 ** (n - 2) < l_max
    gen = SGConvKernel(3, l_max, kernel_dim=kernel_dim, channels=2)
    assert gen.n_scales == n == len(gen.scales)
    assert n_params(gen) == n * 2 * 3 * kernel_dim


def test_parameter_count_grows_with_log_l_max():
    counts = [n_params(SGConvKernel(4, 64 * 2**j, kernel_dim=64)) for j in range(8)]
    steps = {b - a for a, b in zip(counts, counts[1:])}
    assert steps == {4 * 64}  # doubling l_max adds exactly one (H, d) sub-kernel
    assert n_params(SGConvKernel(4, 1024, kernel_dim=64, learn_decay=True)) == counts[4] + 4


def test_pieces_have_lengths_d_d_2d_4d_and_decay_weights():
    d, decay = 4, 0.5
    gen = SGConvKernel(2, 32, kernel_dim=d, decay=decay, interpolate="nearest")
    k = gen(32) * gen.kernel_norm
    bounds = [0, d, 2 * d, 4 * d, 8 * d, 16 * d]
    for i in range(gen.n_scales):
        expected = gen.scales[i].repeat_interleave(2 ** max(0, i - 1), dim=-1) * decay**i
        torch.testing.assert_close(k[..., bounds[i] : bounds[i + 1]], expected)


@pytest.mark.parametrize("interpolate", ["linear", "nearest"])
def test_decay_orders_scale_magnitudes(interpolate):
    gen = SGConvKernel(1, 512, kernel_dim=8, decay=0.7, interpolate=interpolate)
    with torch.no_grad():
        for p in gen.scales:
            p.fill_(1.0)
    k = gen(512)[0, 0]
    levels = [k[0], k[8]] + [k[8 * 2**j] for j in range(1, gen.n_scales - 1)]
    # Upsampling a constant keeps it constant; the pieces are 1, 0.7, 0.49, ... times a constant.
    ratios = torch.stack(levels[1:]) / torch.stack(levels[:-1])
    torch.testing.assert_close(ratios, torch.full_like(ratios, 0.7))


def test_decay_orders_magnitudes_of_random_scales():
    gen = SGConvKernel(256, 256, kernel_dim=16, decay=0.5)
    k = gen(256)
    rms = [k[..., a:b].pow(2).mean().sqrt() for a, b in [(0, 16), (16, 32), (32, 64), (64, 128), (128, 256)]]
    assert all(later < earlier for earlier, later in zip(rms, rms[1:]))


@pytest.mark.parametrize("L", [1, 2, 15, 63, 1000, 1024, 1031, 4099])
def test_any_length_and_prefix_property(L):
    gen = SGConvKernel(3, 1000, kernel_dim=16, channels=2)
    long = gen(5000)
    k = gen(L)
    assert k.shape == (2, 3, L) and k.dtype == torch.float32
    torch.testing.assert_close(k, long[..., :L])


def test_beyond_l_max_extends_with_the_last_scale():
    d, decay = 4, 0.5
    gen = SGConvKernel(2, 16, kernel_dim=d, decay=decay, interpolate="nearest")
    assert gen.n_scales == 3  # native length 16
    k = gen(40) * gen.kernel_norm
    last = gen.scales[-1]
    torch.testing.assert_close(k[..., 16:32], last.repeat_interleave(4, dim=-1) * decay**3)
    torch.testing.assert_close(k[..., 32:40], last.repeat_interleave(8, dim=-1)[..., :8] * decay**4)


def test_normalization_at_construction_is_independent_of_the_length():
    torch.manual_seed(0)
    a = SGConvKernel(3, 200, kernel_dim=8, channels=2)
    b = SGConvKernel(3, 200, kernel_dim=8, channels=2)
    b.load_state_dict(a.state_dict())
    assert a.norm_ready and b.norm_ready  # taken at construction, before any call
    norm = a.kernel_norm.clone()
    a(5)
    b(3000)
    torch.testing.assert_close(a.kernel_norm, norm)
    torch.testing.assert_close(a.kernel_norm, b.kernel_norm)
    native = a(8 * 2 ** (a.n_scales - 1))
    torch.testing.assert_close(native.norm(dim=-1), torch.ones(2, 3))
    assert not a.kernel_norm.requires_grad


def test_reset_norm_and_an_old_never_run_state_dict():
    gen = SGConvKernel(2, 64, kernel_dim=8)
    with torch.no_grad():
        for p in gen.scales:
            p.mul_(3.0)
    gen.reset_norm()
    torch.testing.assert_close(gen(64).norm(dim=-1), torch.ones(1, 2))
    state = gen.state_dict()
    state["norm_ready"] = torch.tensor(False)  # saved by an earlier version before its first call
    state["kernel_norm"] = torch.ones_like(state["kernel_norm"])
    fresh = SGConvKernel(2, 64, kernel_dim=8)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh(64), gen(64))


def test_normalization_is_frozen_after_first_call():
    gen = SGConvKernel(2, 64, kernel_dim=8)
    before = gen(64)
    with torch.no_grad():
        for p in gen.scales:
            p.mul_(3.0)
    torch.testing.assert_close(gen(64), 3 * before)


def test_state_dict_round_trip_into_fresh_module():
    src = SGConvKernel(4, 300, kernel_dim=16, channels=2, learn_decay=True)
    expected = src(300)
    state = src.state_dict()
    assert {"kernel_norm", "norm_ready", "log_decay"} <= set(state)
    fresh = SGConvKernel(4, 300, kernel_dim=16, channels=2, learn_decay=True)
    fresh.load_state_dict(state)  # never ran: must use the loaded norm, not recompute one
    torch.testing.assert_close(fresh(300), expected)
    used = SGConvKernel(4, 300, kernel_dim=16, channels=2, learn_decay=True)
    used(300)
    used.load_state_dict(state)
    torch.testing.assert_close(used(300), expected)


def test_state_dict_of_a_never_run_module_normalizes_on_first_call():
    src = SGConvKernel(4, 300, kernel_dim=16)
    fresh = SGConvKernel(4, 300, kernel_dim=16)
    fresh.load_state_dict(src.state_dict())
    torch.testing.assert_close(fresh(300), src(300))


def test_lr_hints_and_gradients():
    gen = SGConvKernel(3, 128, kernel_dim=8, learn_decay=True, lr=5e-4)
    for p in gen.scales:
        assert p._optim == {"lr": 5e-4}  # FACTS gives the sub-kernels' lr only: group weight decay
    assert gen.log_decay._optim == {"lr": 5e-4, "weight_decay": 0.0}
    (gen(300) * torch.randn(1, 3, 300)).sum().backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    groups = param_groups(gen, lr=1e-2, weight_decay=0.05)
    assert sorted((g["lr"], g["weight_decay"], len(g["params"])) for g in groups) == [
        (5e-4, 0.0, 1),
        (5e-4, 0.05, gen.n_scales),
    ]


def test_cosine_init_is_a_sum_of_cosines_with_unit_variance():
    torch.manual_seed(0)
    k = cosine_init(2, 500, 64)
    assert k.shape == (2, 500, 64) and k.dtype == torch.float32
    assert 0.8 < k.var().item() < 1.2
    gen = SGConvKernel(3, 256, kernel_dim=32, init="cosine")
    assert torch.isfinite(gen(256)).all()


@pytest.mark.parametrize(
    "kwargs, expected, got",
    [
        ({"kernel_dim": 0}, "kernel_dim must be an int in [1, l_max=64]", "got 0"),
        ({"kernel_dim": -3}, "kernel_dim must be an int in [1, l_max=64]", "got -3"),
        ({"kernel_dim": 65}, "kernel_dim must be an int in [1, l_max=64]", "got 65"),
        ({"kernel_dim": 8.0}, "kernel_dim must be an int", "got 8.0"),
        ({"decay": 0.0}, "decay must be a number in (0, 1]", "got 0.0"),
        ({"decay": 1.5}, "decay must be a number in (0, 1]", "got 1.5"),
        ({"decay": -0.5}, "decay must be a number in (0, 1]", "got -0.5"),
        ({"interpolate": "cubic"}, "['linear', 'nearest']", "got 'cubic'"),
        ({"init": "zeros"}, "['randn', 'cosine']", "got 'zeros'"),
    ],
)
def test_bad_arguments_raise_naming_expected_and_received(kwargs, expected, got):
    with pytest.raises(ValueError) as err:
        SGConvKernel(4, 64, **kwargs)
    assert expected in str(err.value) and got in str(err.value)


def test_bad_l_max_and_length():
    with pytest.raises(ValueError, match="l_max must be a positive int, got 0"):
        SGConvKernel(4, 0)
    with pytest.raises(ValueError, match="positive int, got 0"):
        SGConvKernel(4, 64, kernel_dim=8)(0)
