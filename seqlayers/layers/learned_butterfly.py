"""Learned butterfly: the DFT blocks of a Monarch FFT convolution as trainable parameters."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._validation import is_int
from ..kernels.base import Float32Parameters
from ..ops.conv.monarch import dft_blocks, monarch_long_conv
from ..optim import set_optim_hint


class LearnedButterfly(Float32Parameters):
    """A long convolution whose FFTs use trainable DFT blocks, initialized to the exact DFT.

    The learned-butterfly extension of Fu et al. 2023: the FFT of size ``N`` of an FFT convolution
    is factored as ``N = N1 * N2`` into two dense DFT blocks and fixed twiddles
    (:func:`~seqlayers.ops.conv.monarch.monarch_long_conv`), and the four blocks (forward ``F1``,
    ``F2`` and inverse ``G1``, ``G2``) are parameters. One set per module, shared by every
    feature and channel of the layer that holds it. At initialization the output equals
    :func:`seqlayers.ops.long_conv` to float32 accuracy; training moves the transform away from
    the DFT, and the map is then no longer guaranteed to be a causal convolution.

    ``N`` is fixed at construction: the smallest power of two ``>= 2 * l_max - 1``, the linear
    convolution size of a length-``l_max`` input with a full-length kernel. Any shorter input
    (``L + Lk - 1 <= N``) is zero-padded to ``N`` and goes through the same blocks, so the
    parameters do not depend on ``L``; a longer one raises ValueError naming the limit.

    Parameters: ``fwd_block1``, ``inv_block1`` ``(N1, N1, 2)`` and ``fwd_block2``, ``inv_block2``
    ``(N2, N2, 2)``, float32 (real and imaginary parts, read with ``torch.view_as_complex``), so
    every optimizer, ``.double()``, state dicts and :func:`seqlayers.optim.param_groups` handle
    them; they stay float32 when the module is cast to float16/bfloat16 (the DFT needs the bits); ``4 * (N1**2 + N2**2)`` real numbers (20,480 for ``l_max = 1024``). They carry the
    hints ``lr`` and weight decay 0 (decay would shrink the transform towards zero).

    Args:
        l_max: longest input length.
        lr: learning-rate hint for the blocks; None (default) for the group default.

    ``forward(u, k, D=None)``: ``u (B, H, L)``, ``k (H, Lk)``, ``D (H,)`` or None, as
    :func:`seqlayers.ops.long_conv`; returns ``(B, H, L)`` in ``u``'s dtype.

    Example:
        >>> conv = LearnedButterfly(l_max=1024)
        >>> conv(torch.randn(2, 4, 1000), torch.randn(4, 1000)).shape
        torch.Size([2, 4, 1000])
    """

    def __init__(self, l_max: int, *, lr: float | None = None) -> None:
        super().__init__()
        if not is_int(l_max) or l_max <= 0:
            raise ValueError(f"l_max must be a positive int, got {l_max!r}")
        self.l_max = l_max
        self.n_fft = 1 << (2 * l_max - 2).bit_length()
        n1, n2, dft1, dft2 = dft_blocks(self.n_fft)
        self.block_sizes = (n1, n2)
        exact = {"fwd_block1": dft1, "fwd_block2": dft2, "inv_block1": dft1.conj(), "inv_block2": dft2.conj()}
        for name, block in exact.items():
            param = nn.Parameter(torch.view_as_real(block.resolve_conj()).clone())
            setattr(self, name, param)
            set_optim_hint(self, name, lr, 0.0)

    def blocks(self) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """The complex ``((F1, F2), (G1, G2))`` blocks (views of the parameters)."""
        as_complex = torch.view_as_complex
        return (
            (as_complex(self.fwd_block1), as_complex(self.fwd_block2)),
            (as_complex(self.inv_block1), as_complex(self.inv_block2)),
        )

    def forward(self, u: Tensor, k: Tensor, D: Tensor | None = None) -> Tensor:
        if isinstance(u, Tensor) and isinstance(k, Tensor) and u.dim() == 3 and k.dim() == 2:
            L, Lk = u.shape[-1], k.shape[-1]
            if L + Lk - 1 > self.n_fft:
                raise ValueError(
                    f"{type(self).__name__}(l_max={self.l_max}) has FFT size N={self.n_fft}: "
                    f"inputs need L + Lk - 1 <= {self.n_fft} (L <= {self.l_max} with a full-length "
                    f"kernel), got L={L}, Lk={Lk}"
                )
        fwd_blocks, inv_blocks = self.blocks()
        return monarch_long_conv(u, k, D, fwd_blocks, inv_blocks)

    def extra_repr(self) -> str:
        n1, n2 = self.block_sizes
        return f"l_max={self.l_max}, n_fft={self.n_fft} = {n1} x {n2}"
