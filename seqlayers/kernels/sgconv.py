"""SGConv: the structured global convolution kernel (Li et al. 2022).

The kernel is a concatenation of ``n = 1 + ceil(log2(l_max / kernel_dim))`` pieces. Piece ``i``
is a learned ``(C, H, kernel_dim)`` sub-kernel upsampled by ``2 ** max(0, i - 1)`` and weighted
by ``decay ** i``, so the pieces have lengths ``d, d, 2d, 4d, ...`` and the parameter count grows
with ``log(l_max)`` while the kernel covers ``d * 2 ** (n - 1) >= l_max`` taps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..optim import set_optim_hint
from .._validation import is_int
from .base import KernelGenerator, prefix

SGCONV_INITS = ("randn", "cosine")
INTERPOLATIONS = ("linear", "nearest")
COSINE_TERMS = 4


def num_scales(l_max: int, kernel_dim: int) -> int:
    """Number of parameterized scales: ``1 + ceil(log2(l_max / kernel_dim))``.

    Example:
        >>> num_scales(1024, 64)
        5
    """
    return 1 + (-(-l_max // kernel_dim) - 1).bit_length()


def cosine_init(channels: int, d_model: int, kernel_dim: int, terms: int = COSINE_TERMS) -> Tensor:
    """Random smooth sub-kernels: a sum of ``terms`` random cosines per ``(channel, feature)``.

    ``k[c, h, t] = sum_m a_m cos(2 pi f_m t + phi_m)`` with ``a_m ~ N(0, 2 / terms)`` (so a tap
    has unit variance, like ``randn``), frequencies ``f_m ~ U[0, 1/2)`` cycles per tap (below
    Nyquist) and phases ``phi_m ~ U[0, 2 pi)``, all drawn independently per ``(c, h)``.

    Returns:
        float32 ``(channels, d_model, kernel_dim)``.

    Example:
        >>> k = cosine_init(1, 4, 64)
        >>> k.shape
        torch.Size([1, 4, 64])
    """
    shape = (channels, d_model, terms, 1)
    amplitude = torch.randn(shape) * math.sqrt(2.0 / terms)
    frequency = torch.rand(shape) * 0.5
    phase = torch.rand(shape) * 2 * math.pi
    t = torch.arange(kernel_dim, dtype=torch.float32)
    return (amplitude * torch.cos(2 * math.pi * frequency * t + phase)).sum(dim=2)


class SGConvKernel(KernelGenerator):
    """Kernel generator of SGConv: multi-scale, decaying, upsampled sub-kernels.

    Parameters: ``scales``, a list of ``n = 1 + ceil(log2(l_max / kernel_dim))`` float32
    sub-kernels of shape ``(C, H, kernel_dim)`` (each with the learning-rate hint ``lr``; weight
    decay is left to the optimizer group), and, with ``learn_decay=True``, ``log_decay (C, H, 1)``
    (hint ``lr``, weight decay 0). In all ``n * C * H * kernel_dim`` (+ ``C * H``) parameters:
    O(kernel_dim * log(l_max)) per kernel.

    Kernel for length ``L``: piece ``i`` is sub-kernel ``min(i, n - 1)`` upsampled by
    ``2 ** max(0, i - 1)`` (``interpolate`` mode) and weighted by ``decay ** i``; the pieces are
    concatenated and cropped to ``L``. The ``n`` parameterized pieces cover
    ``d * 2 ** (n - 1) >= l_max`` taps; for a longer ``L`` further pieces are added the same way,
    reusing the last sub-kernel (upsampled 2x more and weighted by ``decay`` once more each time),
    so any ``L`` works and the kernel for ``L`` is always a prefix of the kernel for a longer one.

    Normalization: the L2 norm over length of the ``n`` parameterized pieces of the initial
    sub-kernels (shape ``(C, H, 1)``, independent of any ``L``; at least 1e-12) is stored,
    detached, in the buffer ``kernel_norm`` at construction, and every kernel is divided by it:
    the norm the SGConv reference takes at its first call, from the same parameters, but without
    mutating state inside a forward (so ``torch.compile``, ``torch.func`` and ``vmap`` see a pure
    function). :meth:`reset_norm` takes it again, e.g. after initializing the sub-kernels by hand.
    The buffer lives in the state dict; a state dict saved before any call by an earlier version
    (``norm_ready`` False) gets its norm from the loaded sub-kernels.

    Args:
        d_model: ``H``.
        l_max: longest length the scales are sized for (any ``L`` works, see above).
        channels: ``C``, kernels per feature.
        kernel_dim: ``d``, taps per sub-kernel, ``1 <= kernel_dim <= l_max`` (64 by default).
        decay: weight ratio between consecutive pieces, in ``(0, 1]`` (0.5 by default).
        interpolate: upsampling mode, ``"linear"`` (default) or ``"nearest"``.
        learn_decay: learn the decay per ``(channel, feature)`` in log space (unconstrained while
            training; ``decay`` is its initial value).
        init: sub-kernel init, ``"randn"`` (default) or ``"cosine"`` (see :func:`cosine_init`).
        lr: learning-rate hint for the sub-kernels and the learned decay (None: no hint).

    Example:
        >>> gen = SGConvKernel(d_model=4, l_max=1024, kernel_dim=32)
        >>> gen(1024).shape
        torch.Size([1, 4, 1024])
    """

    def __init__(
        self,
        d_model: int,
        l_max: int,
        *,
        channels: int = 1,
        kernel_dim: int = 64,
        decay: float = 0.5,
        interpolate: str = "linear",
        learn_decay: bool = False,
        init: str = "randn",
        lr: float | None = 1e-3,
    ) -> None:
        super().__init__(d_model, channels)
        if not is_int(l_max) or l_max <= 0:
            raise ValueError(f"l_max must be a positive int, got {l_max!r}")
        if not is_int(kernel_dim) or not 1 <= kernel_dim <= l_max:
            raise ValueError(f"kernel_dim must be an int in [1, l_max={l_max}], got {kernel_dim!r}")
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay <= 1:
            raise ValueError(f"decay must be a number in (0, 1], got {decay!r}")
        if interpolate not in INTERPOLATIONS:
            raise ValueError(f"interpolate must be one of {list(INTERPOLATIONS)}, got {interpolate!r}")
        if init not in SGCONV_INITS:
            raise ValueError(f"init must be one of {list(SGCONV_INITS)}, got {init!r}")
        self.l_max, self.kernel_dim, self.interpolate, self.init = l_max, kernel_dim, interpolate, init
        self.n_scales = num_scales(l_max, kernel_dim)
        make = cosine_init if init == "cosine" else torch.randn
        self.scales = nn.ParameterList(
            nn.Parameter(make(channels, d_model, kernel_dim)) for _ in range(self.n_scales)
        )
        for i in range(len(self.scales)):
            set_optim_hint(self, f"scales.{i}", lr, None)
        log_decay = torch.full((channels, d_model, 1), math.log(decay))
        if learn_decay:
            self.log_decay = nn.Parameter(log_decay)
            set_optim_hint(self, "log_decay", lr, 0.0)
        else:
            self.register_buffer("log_decay", log_decay)
        self.register_buffer("kernel_norm", torch.ones(channels, d_model, 1))
        self.register_buffer("norm_ready", torch.tensor(True))
        self.reset_norm()
        self.register_load_state_dict_post_hook(SGConvKernel._norm_after_load)

    @torch.no_grad()
    def reset_norm(self) -> None:
        """Store the L2 norm over length of the parameterized pieces in ``kernel_norm``."""
        full = self._pieces(self.kernel_dim * 2 ** (self.n_scales - 1))
        self.kernel_norm.copy_(full.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        self.norm_ready.fill_(True)

    @staticmethod
    def _norm_after_load(module: SGConvKernel, _incompatible_keys) -> None:
        """A state dict saved before its first call (``norm_ready`` False) carries no norm yet."""
        if not bool(module.norm_ready):
            module.reset_norm()

    @property
    def decay(self) -> Tensor:
        """Decay per ``(channel, feature)``, float32 ``(C, H, 1)``."""
        return torch.exp(self.log_decay)

    def _pieces(self, length: int) -> Tensor:
        """Unnormalized kernel of at least ``length`` taps: ``(C, H, >= length)``."""
        decay = self.decay
        pieces, total, i = [], 0, 0
        while total < length:
            piece = self.scales[min(i, self.n_scales - 1)]
            factor = 2 ** max(0, i - 1)
            if factor > 1:
                piece = F.interpolate(piece, size=self.kernel_dim * factor, mode=self.interpolate)
            pieces.append(piece * decay**i)
            total += piece.shape[-1]
            i += 1
        return torch.cat(pieces, dim=-1)

    def kernel(self, L: int) -> Tensor:
        covered = self.kernel_dim * 2 ** (self.n_scales - 1)  # what the parameterized pieces cover
        # one length check, not one per piece: a symbolic L (torch.compile, export) stays symbolic
        pieces = self._pieces(covered if L <= covered else L)
        return prefix(pieces, L) / self.kernel_norm

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, l_max={self.l_max}, kernel_dim={self.kernel_dim}, "
            f"n_scales={self.n_scales}, interpolate={self.interpolate!r}, init={self.init!r}"
        )
