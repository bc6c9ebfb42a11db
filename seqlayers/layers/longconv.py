"""The LongConv layer: an explicit, squashed and smoothed kernel inside the shared convolution layer."""

from __future__ import annotations

from ..kernels.longconv import LongConvKernel
from .learned_butterfly import LearnedButterfly
from .conv_layer import ConvLayer, build_generator, layer_family


@layer_family(LongConvKernel)
class LongConv(ConvLayer):
    """Long convolution layer with an explicit kernel per feature (Fu et al. 2023). ``(B, L, H)``.

    The kernel is a ``(C, H, l_max)`` parameter, smoothed, squashed and (while training) dropped
    out at each call (see :class:`~seqlayers.kernels.LongConvKernel`); an input of length
    ``L <= l_max`` uses its first ``L`` taps, a longer one raises ValueError. Then the shared
    layer: convolution, ``D u``, GELU, dropout, ``Linear(C*H, 2H)`` + GLU (see :class:`ConvLayer`).

    Args:
        d_model: ``H``.
        l_max: kernel length, the longest input length.
        learned_butterfly: convolve through a :class:`LearnedButterfly` (FFT blocks trainable,
            initialized to the exact DFT, shared by all features and channels of the layer, with
            the kernel's ``lr`` hint) instead of :func:`seqlayers.ops.long_conv`; False by default.
            At initialization the layer's output is the same; it adds ``4 * (N1**2 + N2**2)``
            parameters, ``N1 * N2`` the power of two ``>= 2 * l_max - 1`` (20,480 for
            ``l_max = 1024``). The PyTorch reference path: it conflicts with ``backend``
            (ValueError unless ``"auto"``) and with ``conv``.
        **kwargs: the kernel's keywords (listed below; ``channels``, output channels per
            feature, 1 by default) and :class:`ConvLayer`'s.

    Example:
        >>> layer = seqlayers.LongConv(64, l_max=1024, squash_lambda=0.002, kernel_dropout=0.2)
        >>> layer(torch.randn(8, 1024, 64)).shape
        torch.Size([8, 1024, 64])
    """

    def __init__(self, d_model: int, l_max: int, *, learned_butterfly: bool = False, **kwargs) -> None:
        generator, layer_kwargs = build_generator(LongConvKernel, d_model, l_max, **kwargs)
        if learned_butterfly:
            if layer_kwargs.get("conv") is not None:
                raise ValueError("learned_butterfly=True conflicts with conv=: give one of them")
            layer_kwargs["conv"] = LearnedButterfly(l_max, lr=generator.lr)
        super().__init__(generator, **layer_kwargs)
