"""What every ``long_conv`` backend receives: the checked arguments, described by a :class:`ConvCall`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ConvCall:
    """The shape, dtypes and device of one ``long_conv(u, k, D)`` call; plans are keyed by it.

    ``batch, features, length``: ``u``'s ``(B, H, L)``; ``kernel_length``: ``Lk``; ``skip_dtype``
    is None without ``D``.
    """

    batch: int
    features: int
    length: int
    kernel_length: int
    dtype: torch.dtype
    kernel_dtype: torch.dtype
    skip_dtype: torch.dtype | None
    device: torch.device

    @classmethod
    def of(cls, u: Tensor, k: Tensor, D: Tensor | None) -> ConvCall:
        B, H, L = u.shape
        return cls(B, H, L, k.shape[-1], u.dtype, k.dtype, None if D is None else D.dtype, u.device)

    @property
    def width(self) -> int:
        """The parallel width ``B * H`` (what ``"auto"``'s policy buckets besides the length)."""
        return self.batch * self.features

    @property
    def total(self) -> int:
        """``L + Lk - 1``: the length of the linear convolution, the least FFT size."""
        return self.length + self.kernel_length - 1


def _is_real_float(t: Tensor) -> bool:
    return t.is_floating_point() and not t.is_complex()


def check_long_conv_args(u: Tensor, k: Tensor, D: Tensor | None, op: str = "long_conv") -> None:
    """Validate ``(u, k, D)`` of a long convolution; raise TypeError/ValueError naming the problem.

    ``u (B, H, L)`` with ``H, L >= 1`` (``B = 0`` is an empty batch), ``k (H, Lk)`` with
    ``1 <= Lk <= L``, ``D (H,)`` or None; all real floating point, on ``u``'s device.
    """
    for name, t in (("u", u), ("k", k), ("D", D)):
        if t is None and name == "D":
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not _is_real_float(t):
            raise TypeError(f"{op}: {name} must be a real floating-point tensor, got dtype {t.dtype}")
    if u.dim() != 3:
        raise ValueError(f"{op}: u must have shape (B, H, L), got {tuple(u.shape)}")
    B, H, L = u.shape
    if L == 0 or H == 0:
        raise ValueError(f"{op}: u must have H >= 1 and L >= 1, got shape (B, H, L) = {tuple(u.shape)}")
    if k.dim() != 2 or k.shape[0] != H:
        raise ValueError(f"{op}: k must have shape (H, Lk) = ({H}, Lk), got {tuple(k.shape)}")
    Lk = k.shape[1]
    if not 1 <= Lk <= L:
        raise ValueError(f"{op}: kernel length Lk must satisfy 1 <= Lk <= L = {L}, got Lk = {Lk}")
    if D is not None and tuple(D.shape) != (H,):
        raise ValueError(f"{op}: D must have shape (H,) = ({H},) or be None, got {tuple(D.shape)}")
    for name, t in (("k", k), ("D", D)):
        if t is not None and t.device != u.device:
            raise ValueError(f"{op}: {name} is on {t.device} but u is on {u.device}")
