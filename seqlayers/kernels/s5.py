"""S5: one multi-input multi-output diagonal state space model for all features (Smith et al. 2023).

The generator holds the ``P'`` complex modes (``P' = P/2`` with conjugate symmetry, else ``P``),
their step sizes, and the input/output projections ``B_tilde (P', H)``, ``C_tilde (C, H, P')``.
It is a pure function of its parameters: the discretized modes, the modal (diagonal) kernel
``z_p^l``, the projections, and one recurrent step. The S5 layer runs the modes between ``B`` and
``C`` with :func:`seqlayers.ops.linear_scan` (a scan, or the convolution with ``z_p^l``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._validation import is_int, is_size
from ..init.ptd import S5_INITS, s5_block_init
from ..optim import set_optim_hint
from .base import KernelGenerator
from .s4d import _check_disc, discretize

C_INITS = ("lecun", "trunc_standard", "complex_normal")
CLIP_RE = -1e-4
TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def _initial_modes(
    d_state: int, blocks: int, init: str, conj_sym: bool, ptd_eps: float | None
) -> tuple[Tensor, Tensor, Tensor]:
    """``Lambda (P',)``, ``V (P, P')`` and ``V^-1 (P', P)``, complex128.

    ``J`` blocks of size ``P/J`` (:func:`seqlayers.init.s5_block_init`). Without conjugate
    symmetry ``P' = P``. With it, every block's spectrum consists of conjugate pairs (for ``ptd``
    the perturbation is real and asked for ``pairs``), and the mode with positive imaginary part of
    each pair is kept with its column of ``V`` and row of ``V^-1``: ``P' = P/2`` and ``2 Re``
    restores the dropped conjugates exactly, as in S5 (``lin`` has one real mode per block, kept
    once, as S4D-Lin does).
    """
    Lambda, V, Vinv = s5_block_init(d_state, blocks, init, eps=ptd_eps, pairs=conj_sym)
    if conj_sym:
        # the P/2 largest imaginary parts, in block order (S4D-Lin's mode 0 is real: its twin is dropped)
        keep = torch.argsort(-Lambda.imag, stable=True)[: d_state // 2].sort().values
        Lambda, V, Vinv = Lambda[keep], V[:, keep], Vinv[keep]
    return Lambda, V, Vinv


def _initial_C(channels: int, H: int, P: int, C_init: str) -> Tensor:
    """``C (channels, H, P)`` complex128 before the change of basis ``C_tilde = C V``.

    Both draws are those of the reference S5, whose ``C`` has shape ``(H, P, 2)`` (real and
    imaginary parts): every part a standard normal truncated to ``[-2, 2]`` and rescaled to
    variance ``1 / fan_in`` (the truncated normal of variance one has std 0.87962566 before
    rescaling). ``trunc_standard`` (its ``trunc_standard_normal``, drawn row by row over
    ``(1, P, 2)``): fan-in ``P``. ``lecun`` (its ``lecun_normal`` over the whole ``(H, P, 2)``,
    whose leading ``H`` axis counts as receptive field): fan-in ``P * H``.
    """
    parts = nn.init.trunc_normal_(torch.empty(2, channels, H, P, dtype=torch.float64), a=-2.0, b=2.0)
    fan_in = P * H if C_init == "lecun" else P
    parts = parts / (TRUNC_STD * math.sqrt(fan_in))
    return torch.complex(parts[0], parts[1])


class S5Kernel(KernelGenerator):
    """The modes of S5 and their projections: ``u (B, H, L)`` -> states ``(B, P', L)`` -> ``(B, C, H, L)``.

    Parameters: ``Lambda_re, Lambda_im (P',)``, ``log_step (P',)`` (one step size per state,
    ``log_step ~ U[log dt_min, log dt_max]``), ``B (P', H)`` complex (stored as real pairs,
    ``B_tilde = V^-1 B`` with ``B (P, H)`` LeCun normal, fan-in ``P``: std ``1/sqrt(P)``),
    ``C (channels, H, P')`` complex (``C_tilde = C V`` with ``C (channels, H, P)`` complex).
    ``Lambda``, ``log_step`` and ``B`` carry the hint ``lr``, weight decay 0.

    Discretization (per state): ``zoh``: ``Lambda_bar = exp(dt Lambda)``,
    ``B_bar = (Lambda_bar - 1) / Lambda * B_tilde``; ``bilinear`` as in S4D. Output
    ``y = f Re(C_tilde x)`` with ``f = 2`` under conjugate symmetry, else 1.

    S5 is multi-input multi-output, so there is no per-feature ``(C, H, L)`` kernel: use
    :meth:`project_in`, :meth:`discrete` (the modes' decays ``Lambda_bar``, whose powers are
    :meth:`modal_kernel`) and :meth:`project_out`.

    Args:
        d_model: ``H``.
        d_state: ``P``, the number of complex states (even with ``conj_sym``).
        channels: output projections ``C`` (2 for a bidirectional layer: forward and backward).
        blocks: ``J``; ``P`` split in ``J`` equal blocks of size ``P/J``, each initialized from
            HiPPO-LegS of size ``P/J`` (``conj_sym`` then keeps one mode of each conjugate pair).
        init: ``"ptd"`` (default), ``"legs"``, ``"lin"`` or ``"inv"``; see
            :func:`seqlayers.init.s5_block_init`.
        ptd_eps: relative size of the PTD perturbation; None (default):
            :func:`seqlayers.init.ptd_eps` of the block size (the released sizes).
        conj_sym: keep ``P/2`` modes (one of each conjugate pair) and output ``2 Re``.
        disc: ``"zoh"`` (default) or ``"bilinear"``.
        dt_min, dt_max: range of the initial step sizes (log-uniform).
        clip_eigs: clamp ``Re(Lambda) <= -1e-4`` in every use.
        C_init: ``"trunc_standard"`` (default, the reference S5's default: complex ``C``, each
            part a normal truncated to two standard deviations, variance ``1/P``),
            ``"lecun"`` (the reference's ``lecun_normal`` over ``(H, P, 2)``: the same
            truncated normal with fan-in ``P * H``, variance ``1/(P H)``), both mapped by ``V``
            as in the reference S5; or ``"complex_normal"`` (``C_tilde`` drawn directly,
            ``CN(0, 1)``).
        lr: learning-rate hint for ``Lambda``, ``log_step`` and ``B`` (None: no hint).

    Example:
        >>> gen = S5Kernel(d_model=4, d_state=16, blocks=2, init="legs")
        >>> Bu = gen.project_in(torch.randn(3, 4, 50))               # (3, 50, 8) complex
        >>> x = seqlayers.ops.linear_scan(gen.discrete()[0].view(1, 1, -1), Bu)
        >>> gen.project_out(x).shape
        torch.Size([3, 1, 4, 50])
    """

    recurrent = True

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        *,
        channels: int = 1,
        blocks: int = 8,
        init: str = "ptd",
        ptd_eps: float | None = None,
        conj_sym: bool = True,
        disc: str = "zoh",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        clip_eigs: bool = False,
        C_init: str = "trunc_standard",
        lr: float | None = 1e-3,
    ) -> None:
        super().__init__(d_model, channels)
        _check_disc(disc)
        if not is_int(d_state) or d_state <= 0:
            raise ValueError(f"d_state must be a positive int, got {d_state!r}")
        if not is_int(blocks) or blocks <= 0:
            raise ValueError(f"blocks must be a positive int, got {blocks!r}")
        if d_state % blocks:
            raise ValueError(f"d_state={d_state} must be divisible by blocks={blocks} (blocks of size P/J)")
        if conj_sym and (d_state // blocks) % 2:
            raise ValueError(
                f"conj_sym=True needs an even block size P/J to keep conjugate pairs, got "
                f"d_state={d_state}, blocks={blocks} (P/J={d_state // blocks}); use conj_sym=False"
            )
        if init not in S5_INITS:
            raise ValueError(f"unknown S5 init {init!r}; expected one of {list(S5_INITS)}")
        if C_init not in C_INITS:
            raise ValueError(f"unknown C_init {C_init!r}; expected one of {list(C_INITS)}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        H = d_model
        self.d_state, self.blocks, self.init, self.disc = d_state, blocks, init, disc
        self.conj_sym, self.clip_eigs = conj_sym, clip_eigs
        self.out_factor = 2.0 if conj_sym else 1.0
        Lambda, V, Vinv = _initial_modes(d_state, blocks, init, conj_sym, ptd_eps)
        P = Lambda.shape[0]
        # B LeCun normal over (P, H) with fan-in P, as the reference S5 (std 1/sqrt(P)).
        B = torch.randn(d_state, H, dtype=torch.float64) / math.sqrt(d_state)
        if C_init == "complex_normal":
            C = torch.randn(channels, H, P, dtype=torch.complex128)
        else:
            C = _initial_C(channels, H, d_state, C_init) @ V
        log_step = torch.rand(P) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.Lambda_re = nn.Parameter(Lambda.real.float())
        self.Lambda_im = nn.Parameter(Lambda.imag.float())
        self.log_step = nn.Parameter(log_step)
        self.B = nn.Parameter(torch.view_as_real((Vinv @ B.to(torch.complex128)).to(torch.cfloat)))
        self.C = nn.Parameter(torch.view_as_real(C.to(torch.cfloat)))
        for name in ("Lambda_re", "Lambda_im", "log_step", "B"):
            set_optim_hint(self, name, lr, 0.0)

    @property
    def n_modes(self) -> int:
        """``P'``: complex modes held (``P/2`` with conjugate symmetry, else ``P``)."""
        return self.Lambda_re.shape[0]

    @property
    def Lambda(self) -> Tensor:
        """Complex ``(P',)`` continuous-time eigenvalues (real part clipped if ``clip_eigs``)."""
        re = self.Lambda_re.clamp(max=CLIP_RE) if self.clip_eigs else self.Lambda_re
        return torch.complex(re, self.Lambda_im)

    def discrete(self) -> tuple[Tensor, Tensor]:
        """``Lambda_bar (P',)`` and ``B_bar (P', H)``, complex64 (complex128 for a float64 module)."""
        dA, dB = discretize(self.Lambda.unsqueeze(-1), self.log_step, self.disc)
        return dA.squeeze(-1), dB * torch.view_as_complex(self.B)

    def modal_kernel(self, L: int) -> Tensor:
        """The modal kernel ``K[p, l] = Lambda_bar_p ** l`` for ``l < L``: complex64 ``(P', L)``."""
        if not is_size(L) or L <= 0:
            raise ValueError(f"kernel length L must be a positive int, got {L!r}")
        if self.disc == "zoh":  # exact, and no log(0) when exp(dt Lambda) underflows
            log_z = torch.exp(self.log_step) * self.Lambda
        else:
            log_z = torch.log(self.discrete()[0])
        steps = torch.arange(L, device=log_z.device, dtype=log_z.real.dtype)
        return torch.exp(log_z.unsqueeze(-1) * steps)

    def kernel(self, L: int) -> Tensor:
        raise NotImplementedError(
            "S5 is multi-input multi-output and has no per-feature (C, H, L) kernel; "
            "use modal_kernel(L) between project_in and project_out"
        )

    def project_in(self, u: Tensor) -> Tensor:
        """``B_bar u``: real ``(B, H, L)`` -> complex ``(B, L, P')`` (complex128 for a float64 module)."""
        _, B_bar = self.discrete()
        return torch.einsum("ph,bhl->blp", B_bar, u.to(B_bar.dtype))

    def project_out(self, x: Tensor, channel: int | None = None) -> Tensor:
        """``f Re(C_tilde x)``: complex states ``(B, L, P')`` -> real ``(B, C, H, L)`` (``(B, H, L)``
        for one channel)."""
        C = torch.view_as_complex(self.C)
        if channel is not None:
            return self.out_factor * torch.einsum("hp,blp->bhl", C[channel], x).real
        return self.out_factor * torch.einsum("chp,blp->bchl", C, x).real

    def default_state(self, batch: int, device: torch.device | str | None = None) -> Tensor:
        """Zero state ``(batch, P')``, complex64 (complex128 for a float64 module)."""
        device = self.log_step.device if device is None else device
        return torch.zeros(batch, self.n_modes, dtype=self.Lambda.dtype, device=device)

    def step(self, u_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """``x_t = Lambda_bar x_{t-1} + B_bar u_t``, ``y_t = f Re(C_tilde x_t)``: ``u_t (B, H)`` -> ``(B, C, H)``."""
        expected = (u_t.shape[0], self.n_modes)
        if not isinstance(state, Tensor) or tuple(state.shape) != expected or not state.is_complex():
            got = f"{tuple(state.shape)} {state.dtype}" if isinstance(state, Tensor) else type(state).__name__
            raise ValueError(f"S5 state must be complex of shape (B, P') = {expected}, got {got}")
        dA, B_bar = self.discrete()
        state = dA * state + u_t.to(B_bar.dtype) @ B_bar.T
        y = self.out_factor * torch.einsum("chp,bp->bch", torch.view_as_complex(self.C), state).real
        return y, state

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, d_state={self.d_state}, blocks={self.blocks}, init={self.init!r}, "
            f"conj_sym={self.conj_sym}, disc={self.disc!r}, clip_eigs={self.clip_eigs}"
        )
