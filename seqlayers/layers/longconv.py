"""The LongConv layer: an explicit, squashed and smoothed kernel inside the shared convolution layer."""

from __future__ import annotations

from ..kernels.longconv import LongConvKernel
from .butterfly import LearnedButterfly
from .conv_layer import ConvLayer


class LongConv(ConvLayer):
    """Long convolution layer with an explicit kernel per feature (Fu et al. 2023). ``(B, L, H)``.

    The kernel is a ``(C, H, l_max)`` parameter, smoothed, squashed and (while training) dropped
    out at each call (see :class:`LongConvKernel`); an input of length ``L <= l_max`` uses its
    first ``L`` taps, a longer one raises ValueError. Then the shared layer: convolution,
    ``D u``, GELU, dropout, ``Linear(C*H, 2H)`` + GLU (see :class:`ConvLayer`).

    Args:
        d_model: ``H``.
        l_max: kernel length, the longest input length.
        squash_lambda: soft threshold of the kernel, ``>= 0`` (0.001 by default, the low end of
            the LRA range 0.001-0.004: with the ``randn * 0.002`` init and 7-tap smoothing, 0.003
            zeroes almost every tap at initialization and with them their gradients).
        smooth: odd moving-average window over the kernel (7 by default); 0 or 1 for none.
        smooth_mode: ``"time"`` (default) or ``"freq"``.
        kernel_dropout: dropout probability of kernel taps in training (0 by default).
        lr: learning-rate hint for the kernel (weight decay 0); None for no hint.
        channels: output channels per feature, 1 by default.
        learned_butterfly: convolve through a :class:`LearnedButterfly` (FFT blocks trainable,
            initialized to the exact DFT, shared by all features and channels of the layer, with
            the ``lr`` hint) instead of :func:`seqlayers.ops.long_conv`; False by default. At
            initialization the layer's output is the same; it adds ``4 * (N1**2 + N2**2)``
            parameters, ``N1 * N2`` the power of two ``>= 2 * l_max - 1`` (20,480 for
            ``l_max = 1024``). The PyTorch reference path: it conflicts with ``backend``
            (ValueError unless ``"auto"``).
        bidirectional, activation, mixing, dropout, transposed, skip, backend: see
            :class:`ConvLayer`.

    Example:
        >>> layer = seqlayers.LongConv(64, l_max=1024, squash_lambda=0.002, kernel_dropout=0.2)
        >>> layer(torch.randn(8, 1024, 64)).shape
        torch.Size([8, 1024, 64])
    """

    def __init__(
        self,
        d_model: int,
        l_max: int,
        *,
        squash_lambda: float = 0.001,
        smooth: int = 7,
        smooth_mode: str = "time",
        kernel_dropout: float = 0.0,
        lr: float | None = 1e-3,
        channels: int = 1,
        bidirectional: bool = False,
        learned_butterfly: bool = False,
        **layer_kwargs,
    ) -> None:
        generator = LongConvKernel(
            d_model,
            l_max,
            channels=channels * (2 if bidirectional else 1),
            squash_lambda=squash_lambda,
            smooth=smooth,
            smooth_mode=smooth_mode,
            kernel_dropout=kernel_dropout,
            lr=lr,
        )
        if learned_butterfly:
            if layer_kwargs.get("conv") is not None:
                raise ValueError("learned_butterfly=True conflicts with conv=: give one of them")
            layer_kwargs["conv"] = LearnedButterfly(l_max, lr=lr)
        super().__init__(generator, bidirectional=bidirectional, **layer_kwargs)
