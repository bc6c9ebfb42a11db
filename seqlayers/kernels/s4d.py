"""S4D: the diagonal state space kernel (Gu et al. 2022)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._validation import is_int
from ..init.hippo import legs_half_modes
from ..ops.vandermonde import vandermonde
from ..optim import set_optim_hint
from .base import KernelGenerator

S4D_INITS = ("lin", "inv", "legs", "real")
DISCRETIZATIONS = ("zoh", "bilinear")


def _check_disc(disc: str) -> None:
    if disc not in DISCRETIZATIONS:
        raise ValueError(f"unknown discretization disc={disc!r}; expected one of {list(DISCRETIZATIONS)}")


def discretize(A: Tensor, log_dt: Tensor, disc: str = "zoh") -> tuple[Tensor, Tensor]:
    """Discretize diagonal ``A (H, N2)`` with step ``exp(log_dt) (H,)``: returns ``(dA, dB)``.

    * ``zoh``: ``dA = exp(dt A)``, ``dB = (dA - 1) / A``
    * ``bilinear``: ``dA = (1 + dt A / 2) / (1 - dt A / 2)``, ``dB = dt / (1 - dt A / 2)``

    ``dB`` is the input matrix for ``B = 1`` (B is folded into C).
    """
    _check_disc(disc)
    dt = torch.exp(log_dt).unsqueeze(-1)
    dtA = dt * A
    if disc == "zoh":
        dA = torch.exp(dtA)
        return dA, (dA - 1) / A
    denom = 1 - dtA / 2
    return (1 + dtA / 2) / denom, dt / denom


def s4d_kernel(A: Tensor, C: Tensor, log_dt: Tensor, L: int, disc: str = "zoh") -> Tensor:
    """The convolution kernel of a diagonal SSM with ``N/2`` conjugate-pair modes per feature.

    ``K[..., h, l] = 2 Re(sum_n C[..., h, n] * dB[h, n] * dA[h, n] ** l)`` with ``(dA, dB)`` from
    :func:`discretize`. Memory is O(H * L) (no ``(H, N/2, L)`` tensor is kept).

    Args:
        A: complex ``(H, N2)`` diagonal state matrix (``Re(A) < 0`` for a stable kernel).
        C: complex ``(..., H, N2)`` output matrix with B folded in; leading dims are channels.
        log_dt: real ``(H,)`` log step sizes.
        L: kernel length, ``>= 1``.
        disc: ``"zoh"`` (default) or ``"bilinear"``.

    Returns:
        real ``(..., H, L)``: float32 for complex64 inputs, float64 for complex128.

    Example:
        >>> A = torch.complex(-0.5 * torch.ones(4, 8), torch.pi * torch.arange(8.0).expand(4, 8))
        >>> C = torch.randn(4, 8, dtype=torch.cfloat)
        >>> seqlayers.kernels.s4d_kernel(A, C, torch.full((4,), -3.0), 100).shape
        torch.Size([4, 100])
    """
    _check_disc(disc)
    if not (isinstance(A, Tensor) and A.is_complex() and A.dim() == 2):
        got = f"{tuple(A.shape)} {A.dtype}" if isinstance(A, Tensor) else type(A).__name__
        raise ValueError(f"s4d_kernel: A must be a complex (H, N2) tensor, got {got}")
    H, N2 = A.shape
    if not (isinstance(C, Tensor) and C.is_complex() and C.dim() >= 2 and tuple(C.shape[-2:]) == (H, N2)):
        got = f"{tuple(C.shape)} {C.dtype}" if isinstance(C, Tensor) else type(C).__name__
        raise ValueError(f"s4d_kernel: C must be a complex (..., H, N2) = (..., {H}, {N2}) tensor, got {got}")
    if not (isinstance(log_dt, Tensor) and not log_dt.is_complex() and tuple(log_dt.shape) == (H,)):
        got = tuple(log_dt.shape) if isinstance(log_dt, Tensor) else type(log_dt).__name__
        raise ValueError(f"s4d_kernel: log_dt must be a real (H,) = ({H},) tensor, got {got}")
    dA, dB = discretize(A, log_dt.to(A.real.dtype), disc)
    return vandermonde(C * dB, dA, L)


def s4d_init_A(d_state: int, init: str) -> tuple[Tensor, Tensor]:
    """Initial modes of S4D: ``A (N/2,)`` complex128 and the folded input ``B (N/2,)`` complex128.

    * ``lin``: ``-1/2 + i pi n``;  ``inv``: ``-1/2 + i (N / pi) (N / (2n + 1) - 1)``;
    * ``legs``: the eigenvalues of the normal part of HiPPO-LegS, ``B = V^* B_legs``;
    * ``real``: ``-(n + 1)``.
    """
    if init not in S4D_INITS:
        raise ValueError(f"unknown S4D init {init!r}; expected one of {list(S4D_INITS)}")
    if not is_int(d_state) or d_state < 2 or d_state % 2:
        raise ValueError(f"d_state must be an even int >= 2 (modes come in conjugate pairs), got {d_state!r}")
    N = d_state
    n = torch.arange(N // 2, dtype=torch.float64)
    ones = torch.ones(N // 2, dtype=torch.complex128)
    if init == "legs":
        return legs_half_modes(N)
    if init == "real":
        return torch.complex(-(n + 1), torch.zeros_like(n)), ones
    imag = math.pi * n if init == "lin" else (N / math.pi) * (N / (2 * n + 1) - 1)
    return torch.complex(torch.full_like(n, -0.5), imag), ones


class S4DKernel(KernelGenerator):
    """Kernel generator of S4D: ``H`` independent diagonal SSMs with ``d_state / 2`` complex modes.

    Parameters: ``log_dt (H,)``, ``log_A_real (H, N/2)`` (``Re A = -exp(log_A_real) < 0`` always),
    ``A_imag (H, N/2)``, and ``C (channels, H, N/2)`` complex (stored as real pairs) with B folded
    in. ``log_dt``, ``log_A_real`` and ``A_imag`` carry the hint ``lr``, weight decay 0.

    Args:
        d_model: ``H``.
        d_state: ``N`` (even); ``N/2`` modes are kept, their conjugates are implicit.
        channels: ``C``, kernels per feature.
        init: ``"inv"`` (default), ``"lin"``, ``"legs"`` or ``"real"``.
        disc: ``"zoh"`` (default) or ``"bilinear"``.
        dt_min, dt_max: ``log_dt ~ U[log dt_min, log dt_max]``.
        lr: learning-rate hint for the SSM parameters, with weight decay 0 (None: no hints).

    Example:
        >>> gen = S4DKernel(d_model=4, d_state=16, channels=2)
        >>> gen(50).shape
        torch.Size([2, 4, 50])
    """

    recurrent = True

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        *,
        channels: int = 1,
        init: str = "inv",
        disc: str = "zoh",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        lr: float | None = 1e-3,
    ) -> None:
        super().__init__(d_model, channels)
        _check_disc(disc)
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        A, B = s4d_init_A(d_state, init)
        H, N2 = d_model, d_state // 2
        self.d_state, self.init, self.disc = d_state, init, disc
        log_dt = torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        C = torch.randn(channels, H, N2, dtype=torch.cfloat) * B.to(torch.cfloat)
        self.log_dt = nn.Parameter(log_dt)
        self.log_A_real = nn.Parameter(torch.log(-A.real).float().expand(H, N2).clone())
        self.A_imag = nn.Parameter(A.imag.float().expand(H, N2).clone())
        self.C = nn.Parameter(torch.view_as_real(C))
        if lr is not None:
            for name in ("log_dt", "log_A_real", "A_imag"):
                set_optim_hint(self, name, lr, 0.0)

    @property
    def A(self) -> Tensor:
        """Complex ``(H, N/2)`` state matrix diagonal; its real part is always negative."""
        return torch.complex(-torch.exp(self.log_A_real), self.A_imag)

    def kernel(self, L: int) -> Tensor:
        return s4d_kernel(self.A, torch.view_as_complex(self.C), self.log_dt, L, self.disc)

    def default_state(self, batch: int, device: torch.device | str | None = None) -> Tensor:
        """Zero state ``(batch, H, N/2)``, complex64 (complex128 for a float64 module)."""
        device = self.log_dt.device if device is None else device
        dtype = torch.complex(self.log_dt[:1], self.log_dt[:1]).dtype
        return torch.zeros(batch, self.d_model, self.d_state // 2, dtype=dtype, device=device)

    def step(self, u_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """``x_t = dA x_{t-1} + dB u_t``, ``y_t = 2 Re(C x_t)``: ``u_t (B, H)`` -> ``y_t (B, C, H)``."""
        expected = (u_t.shape[0], self.d_model, self.d_state // 2)
        if not isinstance(state, Tensor) or tuple(state.shape) != expected or not state.is_complex():
            got = f"{tuple(state.shape)} {state.dtype}" if isinstance(state, Tensor) else type(state).__name__
            raise ValueError(f"S4D state must be complex of shape (B, H, N/2) = {expected}, got {got}")
        dA, dB = discretize(self.A, self.log_dt, self.disc)
        state = dA * state + dB * u_t.unsqueeze(-1).to(dA.real.dtype)
        y = 2 * torch.einsum("chn,bhn->bch", torch.view_as_complex(self.C), state).real
        return y, state

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, d_state={self.d_state}, init={self.init!r}, disc={self.disc!r}"
