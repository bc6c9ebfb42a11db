"""``long_conv``: causal linear convolution of long sequences, with selectable backends."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from ..dispatch import Backend, register, register_lazy, select, set_policy
from .naive import naive_long_conv
from .torch_fft import fft_long_conv, next_fast_len

__all__ = [
    "long_conv", "naive_long_conv", "fft_long_conv", "next_fast_len", "check_long_conv_args",
    "monarch_long_conv", "dft_blocks",
]


def _is_real_float(t: Tensor) -> bool:
    return t.is_floating_point() and not t.is_complex()


def check_long_conv_args(u: Tensor, k: Tensor, D: Tensor | None) -> None:
    """Validate the arguments of :func:`long_conv`; raise ValueError/TypeError naming the problem."""
    for name, t in (("u", u), ("k", k), ("D", D)):
        if t is None and name == "D":
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"long_conv: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not _is_real_float(t):
            raise TypeError(f"long_conv: {name} must be a real floating-point tensor, got dtype {t.dtype}")
    if u.dim() != 3:
        raise ValueError(f"long_conv: u must have shape (B, H, L), got {tuple(u.shape)}")
    B, H, L = u.shape
    if L == 0 or H == 0:
        raise ValueError(f"long_conv: u must have H >= 1 and L >= 1, got shape (B, H, L) = {tuple(u.shape)}")
    if k.dim() != 2 or k.shape[0] != H:
        raise ValueError(f"long_conv: k must have shape (H, Lk) = ({H}, Lk), got {tuple(k.shape)}")
    Lk = k.shape[1]
    if not 1 <= Lk <= L:
        raise ValueError(f"long_conv: kernel length Lk must satisfy 1 <= Lk <= L = {L}, got Lk = {Lk}")
    if D is not None and tuple(D.shape) != (H,):
        raise ValueError(f"long_conv: D must have shape (H,) = ({H},) or be None, got {tuple(D.shape)}")
    for name, t in (("k", k), ("D", D)):
        if t is not None and t.device != u.device:
            raise ValueError(f"long_conv: {name} is on {t.device} but u is on {u.device}")


def long_conv(u: Tensor, k: Tensor, D: Tensor | None = None, *, backend: str = "auto") -> Tensor:
    """Causal linear (not circular) convolution of every feature of ``u`` with its kernel.

    ``y[b, h, t] = sum_{s <= t, t - s < Lk} k[h, t - s] * u[b, h, s] + D[h] * u[b, h, t]``

    Args:
        u: ``(B, H, L)`` input, float32/float64/bfloat16/float16.
        k: ``(H, Lk)`` kernel with ``1 <= Lk <= L``; any real float dtype (float32 is typical).
        D: ``(H,)`` skip term, or None.
        backend: ``"auto"`` (default) or a name from
            :func:`seqlayers.ops.available_backends`; see :mod:`seqlayers.ops.dispatch`.
            ``"auto"`` uses the measured policy of :mod:`seqlayers.ops.policy` (opt-in timing
            cache, shipped table), then the priority order ``butterfly`` > ``fft`` > ``torch``.

    Returns:
        ``(B, H, L)`` in ``u``'s dtype; accumulated in float32 (float64 for float64 input).
        Differentiable in ``u``, ``k`` and ``D``.

    Example:
        >>> u, k = torch.randn(2, 4, 1000), torch.randn(4, 1000)
        >>> y = seqlayers.ops.long_conv(u, k, torch.ones(4))
        >>> y.shape
        torch.Size([2, 4, 1000])
    """
    check_long_conv_args(u, k, D)
    return select("long_conv", backend, u, k, D).fn(u, k, D)


register(
    Backend(
        "long_conv",
        "torch",
        fft_long_conv,
        priority=0,
        description="torch.fft rfft/irfft, zero-padded to a 2-3-5-7-smooth size >= L + Lk - 1",
    )
)
register(
    Backend(
        "long_conv",
        "naive",
        naive_long_conv,
        auto=False,
        priority=-100,
        description="direct O(L * Lk) convolution via conv1d; the test oracle",
    )
)
register_lazy(
    "long_conv",
    "fft",
    "seqlayers.ops.conv.fft",
    "triton_fft_long_conv",
    priority=20,
    description="Triton radix-2 Stockham FFTs, two real rows per complex FFT; one pass up to "
    "FFT size 4096, a three-pass four-step beyond; CUDA (CPU only via TRITON_INTERPRET=1)",
)
register_lazy(
    "long_conv",
    "butterfly",
    "seqlayers.ops.conv.butterfly",
    "butterfly_long_conv",
    priority=30,
    description="Triton, FFTs as dense DFT-matrix products (tl.dot, Monarch N = N1 x N2 up to "
    "64 x 64): the whole convolution on chip for L + Lk - 1 <= 4096 (less on GPUs with little "
    "shared memory), an outer pass through global memory up to 64x that; CUDA (CPU only via "
    "TRITON_INTERPRET=1)",
)


def _policy_shape(u: Tensor, k: Tensor, D: Tensor | None) -> tuple:
    """What the measured policy of ``"auto"`` keys a call by: device, dtype, L and width B * H."""
    return u.device, u.dtype, u.shape[-1], u.shape[0] * u.shape[1]


set_policy("long_conv", _policy_shape, table=Path(__file__).with_name("policy.json"))

from .monarch import dft_blocks, monarch_long_conv  # noqa: E402  (needs check_long_conv_args above)
