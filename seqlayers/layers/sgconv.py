"""The SGConv layer: the multi-scale SGConv kernel inside the shared convolution layer."""

from __future__ import annotations

from ..kernels.sgconv import SGConvKernel
from .conv_layer import ConvLayer


class SGConv(ConvLayer):
    """Structured global convolution layer (SGConv). Input and output ``(B, L, H)``.

    Each feature has a kernel made of ``1 + ceil(log2(l_max / kernel_dim))`` sub-kernels of
    ``kernel_dim`` taps, upsampled to lengths ``d, d, 2d, 4d, ...``, weighted by ``decay ** i``
    and normalized by their norm at the first call (see :class:`SGConvKernel`). The layer computes
    the kernel for the input length (any length, also beyond ``l_max``), convolves, adds ``D u``,
    then applies GELU, dropout and ``Linear(C*H, 2H)`` + GLU (see :class:`ConvLayer`).

    Args:
        d_model: ``H``.
        l_max: the length the scales are sized for.
        kernel_dim: taps per sub-kernel, ``1 <= kernel_dim <= l_max`` (64 by default).
        decay: weight ratio between scales, in ``(0, 1]`` (0.5 by default).
        interpolate: ``"linear"`` (default) or ``"nearest"`` upsampling.
        learn_decay: learn the decay per (channel, feature).
        init: ``"randn"`` (default) or ``"cosine"`` sub-kernels.
        lr: learning-rate hint for the sub-kernels and the learned decay; None for no hint.
        channels: output channels per feature, 1 by default.
        bidirectional, activation, mixing, dropout, transposed, skip, backend: see
            :class:`ConvLayer`.

    Example:
        >>> layer = seqlayers.SGConv(64, l_max=1024, kernel_dim=32)
        >>> layer(torch.randn(8, 1024, 64)).shape
        torch.Size([8, 1024, 64])
    """

    def __init__(
        self,
        d_model: int,
        l_max: int,
        *,
        kernel_dim: int = 64,
        decay: float = 0.5,
        interpolate: str = "linear",
        learn_decay: bool = False,
        init: str = "randn",
        lr: float | None = 1e-3,
        channels: int = 1,
        bidirectional: bool = False,
        **layer_kwargs,
    ) -> None:
        generator = SGConvKernel(
            d_model,
            l_max,
            channels=channels * (2 if bidirectional else 1),
            kernel_dim=kernel_dim,
            decay=decay,
            interpolate=interpolate,
            learn_decay=learn_decay,
            init=init,
            lr=lr,
        )
        super().__init__(generator, bidirectional=bidirectional, **layer_kwargs)
