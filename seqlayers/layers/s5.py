"""The S5 layer: the MIMO diagonal state space model between its B and C projections."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..kernels.s5 import S5Kernel
from .._validation import check_choice
from .conv_layer import ConvLayer

MODES = ("auto", "conv", "scan")


class S5(ConvLayer):
    """Simplified state space layer (S5) with PTD initialization by default. ``(B, L, H)`` in and out.

    One state of ``d_state`` complex modes is shared by all ``H`` features:
    ``x_t = Lambda_bar x_{t-1} + B_bar u_t``, ``y_t = Re(C_tilde x_t) + D u_t`` (``2 Re`` and
    ``P/2`` modes with ``conj_sym``); then GELU, dropout and ``Linear(H, 2H)`` + GLU from
    :class:`ConvLayer`, which also does the input checks, ``transposed``, ``step`` and
    ``default_state``.

    Modes: ``"scan"`` runs the recurrence with :func:`seqlayers.ops.linear_scan`; ``"conv"``
    convolves ``B_bar u`` with the modal kernel ``Lambda_bar ** l`` through
    :func:`seqlayers.ops.long_conv` (the layer's ``backend``); ``"auto"`` (default) picks ``conv``
    on a GPU, where the FFT convolution backends are fastest, and ``scan`` elsewhere.

    Bidirectional: a second pass over the reversed sequence with the same ``Lambda``, ``B`` and
    step sizes and its own ``C``; the two outputs are summed. As in every bidirectional layer of
    the library, the backward pass sees only the strict future (the present enters once, through
    the forward pass and ``D``).

    ``init="ptd"`` with ``conj_sym=True`` (the default): a complex PTD perturbation has no conjugate
    pairs, so each block holds the PTD of HiPPO-LegS of size ``P/(2J)`` and the ``2 Re`` output
    realizes it with its conjugate. ``conj_sym=False`` is the S5-PTD of Yu et al. (blocks of size
    ``P/J``, ``P`` complex states).

    Args:
        d_model: ``H``.
        d_state: ``P``, complex states (even with ``conj_sym``), 64 by default.
        blocks: ``J``, 8 by default; ``P/J`` must be an integer (even with ``conj_sym``).
        init: ``"ptd"`` (default), ``"legs"``, ``"lin"`` or ``"inv"``.
        ptd_eps: relative size ``||E||_2 / ||A||_2`` of the PTD perturbation, 0.05 by default.
        conj_sym: keep half the modes and output ``2 Re``, True by default.
        mode: ``"auto"`` (default), ``"conv"`` or ``"scan"``.
        disc: ``"zoh"`` (default) or ``"bilinear"``.
        dt_min, dt_max: range of the initial per-state step sizes (log-uniform).
        clip_eigs: keep ``Re(Lambda) <= -1e-4``.
        C_init: ``"lecun"`` (default), ``"trunc_standard"`` or ``"complex_normal"``.
        lr: learning-rate hint for ``Lambda``, step sizes and ``B`` (weight decay 0).
        bidirectional, activation, mixing, dropout, transposed, skip, backend: see
            :class:`ConvLayer`.

    Example:
        >>> layer = seqlayers.S5(64, d_state=64, blocks=8)
        >>> layer(torch.randn(8, 1024, 64)).shape
        torch.Size([8, 1024, 64])
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        *,
        blocks: int = 8,
        init: str = "ptd",
        ptd_eps: float = 0.05,
        conj_sym: bool = True,
        mode: str = "auto",
        disc: str = "zoh",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        clip_eigs: bool = False,
        C_init: str = "lecun",
        lr: float | None = 1e-3,
        bidirectional: bool = False,
        **layer_kwargs,
    ) -> None:
        check_choice("mode", mode, MODES)
        generator = S5Kernel(
            d_model,
            d_state,
            channels=2 if bidirectional else 1,
            blocks=blocks,
            init=init,
            ptd_eps=ptd_eps,
            conj_sym=conj_sym,
            disc=disc,
            dt_min=dt_min,
            dt_max=dt_max,
            clip_eigs=clip_eigs,
            C_init=C_init,
            lr=lr,
        )
        if layer_kwargs.get("conv") is not None:
            raise ValueError("S5 does not take conv=: it convolves per state mode (mode='conv') or scans")
        super().__init__(generator, bidirectional=bidirectional, **layer_kwargs)
        self.mode = mode

    def _resolve_mode(self, u: Tensor) -> str:
        if self.mode != "auto":
            return self.mode
        return "conv" if u.is_cuda else "scan"

    def _convolve(self, u: Tensor) -> Tensor:
        """``u (B, H, L)`` -> ``Re(C_tilde x) + D u`` as ``(B, 1, H, L)`` in ``u``'s dtype."""
        gen, mode = self.kernel, self._resolve_mode(u)
        Bu = gen.project_in(u.float())
        y = gen.project_out(gen.modes(Bu, mode, self.backend), channel=0)
        if self.bidirectional:
            x_bwd = gen.modes(Bu.flip(-1), mode, self.backend).flip(-1)
            y = y + gen.project_out(F.pad(x_bwd[..., 1:], (0, 1)), channel=1)
        if self.D is not None:
            y = y + self.D[0, :, None] * u
        return y.unsqueeze(1).to(u.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode!r}"
