"""The S4D layer: the diagonal SSM kernel inside the shared convolution layer."""

from __future__ import annotations

from ..kernels.s4d import S4DKernel
from .conv_layer import ConvLayer


class S4D(ConvLayer):
    """Diagonal state space layer (S4D). Input and output ``(B, L, H)``.

    Each of the ``H`` features has its own SSM with ``d_state / 2`` complex modes; the layer
    computes its kernel for the input length, convolves (backend ``"auto"``), adds ``D u``, then
    applies GELU, dropout and ``Linear(C*H, 2H)`` + GLU (see :class:`ConvLayer`). Causal layers
    also run step by step: :meth:`default_state` and :meth:`step`.

    Args:
        d_model: ``H``.
        d_state: ``N`` (even), 64 by default.
        init: ``"inv"`` (default), ``"lin"``, ``"legs"`` or ``"real"``.
        disc: ``"zoh"`` (default) or ``"bilinear"``.
        dt_min, dt_max: range of the initial step sizes (log-uniform).
        lr: learning-rate hint for A and dt (weight decay 0); None for no hint.
        channels: output channels per feature, 1 by default.
        bidirectional, activation, mixing, dropout, transposed, skip, backend: see
            :class:`ConvLayer`.

    Example:
        >>> layer = seqlayers.S4D(64, d_state=64, dropout=0.1)
        >>> layer(torch.randn(8, 1024, 64)).shape
        torch.Size([8, 1024, 64])
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        *,
        init: str = "inv",
        disc: str = "zoh",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        lr: float | None = 1e-3,
        channels: int = 1,
        bidirectional: bool = False,
        **layer_kwargs,
    ) -> None:
        generator = S4DKernel(
            d_model,
            d_state,
            channels=channels * (2 if bidirectional else 1),
            init=init,
            disc=disc,
            dt_min=dt_min,
            dt_max=dt_max,
            lr=lr,
        )
        super().__init__(generator, bidirectional=bidirectional, **layer_kwargs)
