"""The S4D layer: the diagonal SSM kernel inside the shared convolution layer."""

from __future__ import annotations

from ..kernels.s4d import S4DKernel
from .conv_layer import ConvLayer, build_generator, layer_family


@layer_family(S4DKernel)
class S4D(ConvLayer):
    """Diagonal state space layer (S4D). Input and output ``(B, L, H)``.

    Each of the ``H`` features has its own SSM with ``d_state / 2`` complex modes
    (:class:`~seqlayers.kernels.S4DKernel`: S4D-Inv initialization, ZOH, learning-rate hint
    1e-3 on ``A`` and ``dt`` by default); the layer computes its kernel for the input length,
    convolves (backend ``"auto"``), adds ``D u``, then applies GELU, dropout and
    ``Linear(C*H, 2H)`` + GLU (see :class:`ConvLayer`). Causal layers also run step by step:
    :meth:`default_state` and :meth:`step`.

    Args:
        d_model: ``H``.
        d_state: ``N`` (even), 64 by default.
        channels: output channels per feature, 1 by default.
        **kwargs: the kernel's keywords (listed below) and :class:`ConvLayer`'s
            (``bidirectional``, ``activation``, ``mixing``, ``dropout``, ``transposed``,
            ``skip``, ``backend``, ``conv``).

    Example:
        >>> layer = seqlayers.S4D(64, d_state=64, dropout=0.1)
        >>> layer(torch.randn(8, 1024, 64)).shape
        torch.Size([8, 1024, 64])
    """

    def __init__(self, d_model: int, d_state: int = 64, **kwargs) -> None:
        generator, layer_kwargs = build_generator(S4DKernel, d_model, d_state, **kwargs)
        super().__init__(generator, **layer_kwargs)
