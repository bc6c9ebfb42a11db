"""The SGConv layer: the multi-scale SGConv kernel inside the shared convolution layer."""

from __future__ import annotations

from ..kernels.sgconv import SGConvKernel
from .conv_layer import ConvLayer, build_generator, layer_family


@layer_family(SGConvKernel)
class SGConv(ConvLayer):
    """Structured global convolution layer (SGConv). Input and output ``(B, L, H)``.

    Each feature has a kernel made of ``1 + ceil(log2(l_max / kernel_dim))`` sub-kernels of
    ``kernel_dim`` taps, upsampled to lengths ``d, d, 2d, 4d, ...``, weighted by ``decay ** i``
    and normalized (see :class:`~seqlayers.kernels.SGConvKernel`). The layer computes the kernel
    for the input length (any length, also beyond ``l_max``), convolves, adds ``D u``, then
    applies GELU, dropout and ``Linear(C*H, 2H)`` + GLU (see :class:`ConvLayer`).

    Args:
        d_model: ``H``.
        l_max: the length the scales are sized for.
        channels: output channels per feature, 1 by default.
        **kwargs: the kernel's keywords (listed below) and :class:`ConvLayer`'s.

    Example:
        >>> layer = seqlayers.SGConv(64, l_max=1024, kernel_dim=32)
        >>> layer(torch.randn(8, 1024, 64)).shape
        torch.Size([8, 1024, 64])
    """

    def __init__(self, d_model: int, l_max: int, **kwargs) -> None:
        generator, layer_kwargs = build_generator(SGConvKernel, d_model, l_max, **kwargs)
        super().__init__(generator, **layer_kwargs)
