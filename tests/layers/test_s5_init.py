"""S5 initialization against the reference S5 (lindermanlab/S5): the scale of C per C_init and
the C halves of the bidirectional 'concat' form. Fast: construction only, no training."""

import inspect

import pytest
import torch

import seqlayers
from seqlayers.kernels import S5Kernel

H, P = 64, 32


def _rms(C):
    return torch.view_as_complex(C).abs().pow(2).mean().sqrt().item()


@pytest.mark.parametrize("C_init, fan_in", [("trunc_standard", P), ("lecun", P * H)])
def test_c_scale_is_the_reference_fan_in(C_init, fan_in):
    """The reference draws C over (H, P, 2): trunc_standard_normal row by row (fan-in P),
    lecun_normal over the whole array, where JAX counts the leading H axis as receptive field
    (fan-in P * H). Each part has variance 1/fan-in, so |C| has rms sqrt(2/fan-in); with the
    unitary LegS basis C_tilde = C V keeps it."""
    torch.manual_seed(0)
    gen = S5Kernel(H, P, blocks=4, init="legs", C_init=C_init)
    assert _rms(gen.C) == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)


def test_c_parts_are_truncated_at_two_standard_deviations():
    """Both draws are truncated normals, as the reference's: with V = I (init='inv') C_tilde is C
    itself, and no part exceeds 2 / (0.8796 sqrt(fan-in))."""
    torch.manual_seed(0)
    for C_init, fan_in in (("trunc_standard", P), ("lecun", P * H)):
        gen = S5Kernel(H, P, blocks=4, init="inv", C_init=C_init)
        assert gen.C.abs().max().item() <= 2 / (0.87962566103423978 * fan_in ** 0.5) * (1 + 1e-6)


def test_default_c_init_is_the_reference_default():
    assert inspect.signature(S5Kernel).parameters["C_init"].default == "trunc_standard"
    torch.manual_seed(0)
    assert _rms(seqlayers.S5(H, P, blocks=4, init="legs").kernel.C) == pytest.approx((2 / P) ** 0.5, rel=0.05)


def test_concat_halves_are_drawn_as_one_direction():
    """The reference's bidirectional S5 draws C1 and C2 each with the one-direction shape
    (H, P, 2), so each half of the concatenated C has the one-direction scale (no 1/sqrt(2))."""
    torch.manual_seed(0)
    layer = seqlayers.S5(H, P, blocks=4, init="legs", bidirectional=True, bidirectional_form="concat")
    for half in layer.kernel.C:
        assert _rms(half) == pytest.approx((2 / P) ** 0.5, rel=0.05)
