"""The S5 layer: the MIMO diagonal state space model between its B and C projections."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_choice
from ..kernels.s5 import S5Kernel
from ..ops.scan import linear_scan
from .conv_layer import ConvLayer, build_generator, layer_family

MODES = ("auto", "conv", "scan")
BIDIRECTIONAL_FORMS = ("sum", "concat")


@layer_family(S5Kernel)
class S5(ConvLayer):
    """Simplified state space layer (S5) with PTD initialization by default. ``(B, L, H)`` in and out.

    One state of ``d_state`` complex modes is shared by all ``H`` features:
    ``x_t = Lambda_bar x_{t-1} + B_bar u_t``, ``y_t = Re(C_tilde x_t) + D u_t`` (``2 Re`` and
    ``P/2`` modes with ``conj_sym``); then GELU, dropout and ``Linear(H, 2H)`` + GLU from
    :class:`ConvLayer`, which also does the input checks, ``transposed``, ``step`` and
    ``default_state``. S5 is multi-input multi-output, so it has no per-feature kernel: the layer
    runs the states with :func:`seqlayers.ops.linear_scan` between the projections of its
    generator (:class:`~seqlayers.kernels.S5Kernel`).

    Modes and backends: the decay ``Lambda_bar`` is the same at every step, and ``backend``
    names a ``linear_scan`` backend, chosen as for every op. ``mode="auto"`` (default) hands
    ``linear_scan`` the shared decay and lets ``backend`` decide: ``"auto"`` takes the
    convolution (backend ``"conv"``: ``B_bar u`` convolved with ``Lambda_bar ** l`` by
    :func:`seqlayers.ops.long_conv`) on CUDA and a scan elsewhere. ``mode="conv"`` is backend
    ``"conv"``; ``mode="scan"`` runs a scan backend (``backend`` then names which). The
    convolution's own backend follows ``use_backend(..., op="long_conv")`` and
    ``SEQLAYERS_CONV_BACKEND``. A ``backend`` that contradicts ``mode`` raises ValueError.

    Bidirectional: a second pass over the reversed sequence with the same ``Lambda``, ``B`` and
    step sizes and its own ``C``. ``bidirectional_form="sum"`` (default): the two outputs are
    summed and, as in every bidirectional layer of the library, the backward pass sees only the
    strict future (the present enters once, through the forward pass and ``D``).
    ``bidirectional_form="concat"``: the form of the reference S5, whose backward scan includes
    the present step and whose two state sequences are concatenated before one ``C (H, 2P')``;
    that equals the sum of the two directions' projections without the one-step delay, so the
    present step enters twice (besides ``D``). Its ``C`` halves are drawn as the one-direction
    ``C``, as the reference draws its ``C1`` and ``C2``; its checkpoints port by splitting ``C`` in
    two along the state axis.

    Args:
        d_model: ``H``.
        d_state: ``P``, complex states (even with ``conj_sym``), 64 by default.
        mode: ``"auto"`` (default), ``"conv"`` or ``"scan"``.
        bidirectional_form: ``"sum"`` (default) or ``"concat"`` (bidirectional layers only;
            see above).
        **kwargs: the kernel's keywords (listed below: ``blocks``, ``init``, ``ptd_eps``,
            ``conj_sym``, ...) and :class:`ConvLayer`'s, except ``conv``.

    Example:
        >>> layer = seqlayers.S5(64, d_state=64, blocks=8)
        >>> layer(torch.randn(8, 1024, 64)).shape
        torch.Size([8, 1024, 64])
    """

    backend_op = "linear_scan"

    def __init__(
        self, d_model: int, d_state: int = 64, *, mode: str = "auto", bidirectional_form: str = "sum", **kwargs
    ) -> None:
        check_choice("mode", mode, MODES)
        check_choice("bidirectional_form", bidirectional_form, BIDIRECTIONAL_FORMS)
        if kwargs.get("conv") is not None:
            raise ValueError("S5 does not take conv=: it runs its states with linear_scan (a scan or "
                             "the 'conv' backend)")
        generator, layer_kwargs = build_generator(S5Kernel, d_model, d_state, **kwargs)
        super().__init__(generator, **layer_kwargs)
        self.mode, self.bidirectional_form = mode, bidirectional_form
        self._scan_backend()

    def _scan_backend(self) -> str:
        """The ``linear_scan`` backend name for the layer's ``mode`` and ``backend``."""
        conflict = (self.mode == "conv" and self.backend not in ("auto", "conv")) or (
            self.mode == "scan" and self.backend == "conv")
        if conflict:
            raise ValueError(f"S5: mode={self.mode!r} conflicts with backend={self.backend!r} (mode 'conv' "
                             f"is linear_scan's 'conv' backend; mode 'scan' any other)")
        return "conv" if self.mode == "conv" else self.backend

    def _states(self, Bu: Tensor) -> Tensor:
        """``x_t = Lambda_bar x_{t-1} + (B_bar u)_t`` from zero: complex ``(B, L, P')`` in and out."""
        decay = self.kernel.discrete()[0]
        a = decay.expand(Bu.shape) if self.mode == "scan" else decay.view(1, 1, -1)
        return linear_scan(a, Bu, backend=self._scan_backend())

    def _convolve(self, u: Tensor) -> Tensor:
        """``u (B, H, L)`` -> ``Re(C_tilde x) + D u`` as ``(B, 1, H, L)`` in ``u``'s dtype."""
        gen = self.kernel
        Bu = gen.project_in(u)
        y = gen.project_out(self._states(Bu), channel=0)
        if self.bidirectional:  # the reversed pass; "sum" delays it one step (strict future only)
            x_bwd = self._states(Bu.flip(1)).flip(1)
            if self.bidirectional_form == "sum":
                x_bwd = torch.cat([x_bwd[:, 1:], torch.zeros_like(x_bwd[:, :1])], dim=1)
            y = y + gen.project_out(x_bwd, channel=1)
        if self.D is not None:
            y = y + self.D[0, :, None] * u
        return y.unsqueeze(1).to(u.dtype)

    def extra_repr(self) -> str:
        form = f", bidirectional_form={self.bidirectional_form!r}" if self.bidirectional else ""
        return f"{super().extra_repr()}, mode={self.mode!r}{form}"
