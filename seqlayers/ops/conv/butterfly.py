"""The ``"butterfly"`` backend of long_conv: FFT convolution as dense DFT matrix products.

Design:

* **Size.** One power-of-two FFT size ``N >= L + Lk - 1``, at least ``_MIN_SIZE = 256``, so the
  circular convolution of the zero-padded sequences equals the linear one on ``[0, L)``. The
  padding is done by masked loads inside the kernels, never by copies.
* **Monarch / four-step factorization.** ``N = N1 * N2`` with ``N1 <= N2`` powers of two in
  ``[16, 64]``: 256 = 16x16, 512 = 16x32, 1024 = 32x32, 2048 = 32x64, 4096 = 64x64. A sequence
  is held as the ``(N1, N2)`` tile ``X[n1, n2] = x[n1 * N2 + n2]``; its DFT is

      ``S = (F1 @ X  *  T) @ F2``,   ``S[k1, k2] = fft(x)[k1 + N1 * k2]``,

  with ``F_n[j, k] = exp(-2 pi i j k / n)`` (symmetric) and the twiddles
  ``T[k1, n2] = exp(-2 pi i k1 n2 / N)``. The inverse undoes it in reverse order with conjugate
  tables, ``x = conj(F1) @ ((S @ conj(F2)) * conj(T))`` (times ``1 / N``), so the spectrum is
  never reordered: a pointwise product of two spectra does not care about the layout.
* **Complex products as real ``tl.dot``.** Real and imaginary parts are separate float32 planes;
  a complex matrix product is four real ``tl.dot`` with float32 accumulation (no Gauss trick: it
  costs accuracy for a 25% saving), so one FFT of size ``N`` is eight dots: ``N1 x N1 x N2`` and
  ``N1 x N2 x N2`` each. Block dimensions are >= 16 as ``tl.dot`` requires.
* **Two real rows per complex FFT.** Batch rows ``2p`` and ``2p + 1`` are packed as
  ``z = u[2p] + i * u[2p + 1]``; because ``k`` is real, ``ifft(fft(z) * K)`` is
  ``y[2p] + i * y[2p + 1]``. A forward convolution costs 16 dots per pair (8 per row). For the
  gradient of ``k``, ``Re(ifft(fft(z_dy) * conj(fft(z_u))))`` is the sum of the two rows'
  correlations, exactly the batch sum ``dk`` needs.
* **One pass, one kernel.** Each program owns one feature ``h`` and a group of batch pairs:
  it transforms ``k`` once (the spectrum, scaled by ``1 / N``, is shared by the group), then
  loads, transforms, multiplies, inverts and stores every pair. ``u`` is read once and ``y``
  written once. The backward is the same kernel run on ``dy`` with ``conj(K)`` (a correlation)
  for ``du``, and a second kernel that accumulates ``fft(dy) * conj(fft(u))`` over the group and
  inverts it once for ``dk`` (and sums ``u * dy`` for ``dD``).
* **One-pass limit** ``N <= _MAX_ONE_PASS = 4096`` (``L + Lk - 1 <= 4096``, so ``L <= 2048``
  for a full-length kernel): larger DFT blocks do not fit in registers. Longer calls are refused
  by :func:`supports` with the reason, and ``"auto"`` hands them to ``"fft"``.
* **Precision.** ``input_precision`` of the dots, by default chosen per result from the dtype it
  is returned in (``y`` and ``du``: ``u``'s, ``dk``: ``k``'s): ``"ieee"`` for float32 (plain
  float32 FMAs, within float32 FFT error, about 5e-7 relative RMS), ``"tf32"`` for bfloat16 and
  float16 (tensor cores; about 5e-4 relative RMS, well below those dtypes' own rounding);
  ``"tf32x3"`` on request (near float32 accuracy at three times the dots). The interpreter
  computes every dot in float32 whatever is asked.
* **Shared memory.** Launches use ``num_stages=1``: software pipelining would multi-buffer the
  DFT tables loaded in the batch loop (over 224 KB at 64x64, more than a GPU has). Unpipelined,
  compiled for sm_90 at N = 4096, the forward kernel stages 64 KB for the dots and the ``dk``
  kernel 128 KB (fits A100/H100; GPUs with about 100 KB per block would fail there).
* DFT matrices and twiddles are float32 tables rounded from float64, cached per size and device.

Works on CUDA GPUs and, for testing, on the CPU under ``TRITON_INTERPRET=1``. ``input_precision``
of ``tl.dot`` exists from Triton 3.0 on, so 3.6 to 3.9 all take it.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError as exc:  # the registry reports this as the reason the backend is unavailable
    raise ImportError(
        f"the 'butterfly' backend needs Triton ({exc}); fix: pip install triton") from exc

from .fft import _split_pairs, check_auto, check_tensors, is_available

__all__ = ["is_available", "supports", "auto_supports", "butterfly_long_conv", "LongConvFunction"]

_MIN_SIZE = 256
"""Smallest FFT size: 16 x 16, the smallest blocks ``tl.dot`` takes."""

_MAX_ONE_PASS = 4096
"""Largest FFT size (64 x 64) done on chip; larger calls belong to the ``"fft"`` backend."""


PRECISIONS = ("ieee", "tf32", "tf32x3")
"""Accepted values of ``input_precision`` (those Triton 3.6 to 3.9 all understand)."""


def supports(u: Tensor, k: Tensor, D: Tensor | None = None) -> tuple[bool, str]:
    """Whether this backend can run ``long_conv(u, k, D)``; ``(False, reason with a fix)`` if not.

    Args:
        u: ``(B, H, L)``; k: ``(H, Lk)``; D: ``(H,)`` or None.
    """
    ok, reason = check_tensors("butterfly", u, k, D)
    if not ok:
        return ok, reason
    total = u.shape[-1] + k.shape[-1] - 1
    if _fft_size(total) > _MAX_ONE_PASS:
        return False, (
            f"L + Lk - 1 = {total} needs an FFT of size {_fft_size(total)}, above the butterfly "
            f"backend's one-pass limit {_MAX_ONE_PASS} (L + Lk - 1 <= {_MAX_ONE_PASS}); "
            "use backend='fft' or backend='torch'"
        )
    return True, ""


def auto_supports(u: Tensor, k: Tensor, D: Tensor | None = None) -> tuple[bool, str]:
    """The check ``backend="auto"`` uses: :func:`supports`, and never interpreted CPU kernels."""
    ok, reason = check_auto("butterfly", u)
    return supports(u, k, D) if ok else (ok, reason)


# ----------------------------------------------------------------------------------------------
# device code


@triton.jit
def _cmatmul(ar, ai, br, bi, CONJ_A: tl.constexpr, CONJ_B: tl.constexpr,
             PRECISION: tl.constexpr):
    """``a @ b`` for complex ``a = ar + i ai``, ``b = br + i bi`` (either conjugated if asked).

    Four real ``tl.dot`` accumulated in float32. Conjugation flips signs of the products, never
    of the operands, so each operand is staged for the dots in one form only.
    """
    rr = tl.dot(ar, br, input_precision=PRECISION)
    ii = tl.dot(ai, bi, input_precision=PRECISION)
    ri = tl.dot(ar, bi, input_precision=PRECISION)
    ir = tl.dot(ai, br, input_precision=PRECISION)
    if CONJ_A == CONJ_B:
        re = rr - ii
    else:
        re = rr + ii
    if CONJ_A:
        ir = -ir
    if CONJ_B:
        ri = -ri
    return re, ri + ir


@triton.jit
def _load_table(ptr, ROWS: tl.constexpr, COLS: tl.constexpr):
    """A ``(ROWS, COLS)`` complex table stored as float32 planes ``(2, ROWS, COLS)``."""
    offs = tl.arange(0, ROWS)[:, None] * COLS + tl.arange(0, COLS)[None, :]
    return tl.load(ptr + offs), tl.load(ptr + ROWS * COLS + offs)


@triton.jit
def _dft(xr, xi, f1_ptr, f2_ptr, tw_ptr, N1: tl.constexpr, N2: tl.constexpr,
         INVERSE: tl.constexpr, PRECISION: tl.constexpr):
    """DFT of size ``N = N1 * N2`` of the ``(N1, N2)`` complex tile ``(xr, xi)``.

    Forward: ``X[n1, n2] = x[n1 * N2 + n2]`` in, ``S[k1, k2] = fft(x)[k1 + N1 * k2]`` out, as
    ``(F1 @ X * T) @ F2``. ``INVERSE``: that layout in, time order out, unnormalized (``N``
    times too large), as ``conj(F1) @ ((S @ conj(F2)) * conj(T))``. Tables: ``F1``
    ``(2, N1, N1)``, ``F2`` ``(2, N2, N2)``, ``T`` ``(2, N1, N2)`` float32 planes. The tables are
    loaded where they are used so they are not live across the caller's loop.
    """
    if INVERSE:
        fr, fi = _load_table(f2_ptr, N2, N2)
        xr, xi = _cmatmul(xr, xi, fr, fi, False, True, PRECISION)
        wr, wi = _load_table(tw_ptr, N1, N2)
        xr, xi = xr * wr + xi * wi, xi * wr - xr * wi
        fr, fi = _load_table(f1_ptr, N1, N1)
        xr, xi = _cmatmul(fr, fi, xr, xi, True, False, PRECISION)
    else:
        fr, fi = _load_table(f1_ptr, N1, N1)
        xr, xi = _cmatmul(fr, fi, xr, xi, False, False, PRECISION)
        wr, wi = _load_table(tw_ptr, N1, N2)
        xr, xi = xr * wr - xi * wi, xr * wi + xi * wr
        fr, fi = _load_table(f2_ptr, N2, N2)
        xr, xi = _cmatmul(xr, xi, fr, fi, False, False, PRECISION)
    return xr, xi


@triton.jit
def _long_conv_fwd_kernel(x_ptr, k_ptr, d_ptr, y_ptr, f1_ptr, f2_ptr, tw_ptr,
                          B, H, L, Lk, pairs_per_program,
                          N1: tl.constexpr, N2: tl.constexpr, HAS_D: tl.constexpr,
                          CORRELATE: tl.constexpr, PRECISION: tl.constexpr):
    """``y = conv(x, k) + D * x`` (or ``corr(x, k) + D * x`` with ``CORRELATE``), one pass.

    Grid ``(H, groups)``: feature ``h``, batch pairs ``[g * ppp, (g + 1) * ppp)``.
    ``x, y``: ``(B, H, L)``; ``k``: ``(H, Lk)``; ``d``: ``(H,)``. ``CORRELATE`` computes
    ``y[t] = sum_j k[j] * x[t + j]``, the ``du`` of the backward (``x = dy``).
    """
    h = tl.program_id(0)
    n_pairs = (B + 1) // 2
    p_start = tl.program_id(1) * pairs_per_program
    p_end = tl.minimum(p_start + pairs_per_program, n_pairs)
    time = tl.arange(0, N1)[:, None] * N2 + tl.arange(0, N2)[None, :]
    kr = tl.load(k_ptr + h.to(tl.int64) * Lk + time, mask=time < Lk, other=0.0).to(tl.float32)
    kr, ki = _dft(kr, tl.zeros((N1, N2), tl.float32), f1_ptr, f2_ptr, tw_ptr, N1, N2, False,
                  PRECISION)
    kr = kr * (1.0 / (N1 * N2))  # the inverse's 1/N, applied once
    ki = ki * ((-1.0 if CORRELATE else 1.0) / (N1 * N2))
    if HAS_D:
        d = tl.load(d_ptr + h).to(tl.float32)
    mask_r = time < L
    for p in tl.range(p_start, p_end):
        offs = (2 * p * H + h.to(tl.int64)) * L + time
        mask_i = time < L - L * ((2 * p + 1) // B)  # row 2p + 1 == B is past the batch
        zr = tl.load(x_ptr + offs, mask=mask_r, other=0.0).to(tl.float32)
        zi = tl.load(x_ptr + offs + H * L, mask=mask_i, other=0.0).to(tl.float32)
        zr, zi = _dft(zr, zi, f1_ptr, f2_ptr, tw_ptr, N1, N2, False, PRECISION)
        zr, zi = zr * kr - zi * ki, zr * ki + zi * kr
        zr, zi = _dft(zr, zi, f1_ptr, f2_ptr, tw_ptr, N1, N2, True, PRECISION)
        if HAS_D:  # reload x (cached) rather than keep it live through the transforms
            zr += d * tl.load(x_ptr + offs, mask=mask_r, other=0.0).to(tl.float32)
            zi += d * tl.load(x_ptr + offs + H * L, mask=mask_i, other=0.0).to(tl.float32)
        tl.store(y_ptr + offs, zr, mask=mask_r)
        tl.store(y_ptr + offs + H * L, zi, mask=mask_i)


@triton.jit
def _long_conv_dk_kernel(u_ptr, dy_ptr, dk_part_ptr, dd_part_ptr, f1_ptr, f2_ptr, tw_ptr,
                         B, H, L, Lk, pairs_per_program,
                         N1: tl.constexpr, N2: tl.constexpr, HAS_D: tl.constexpr,
                         PRECISION: tl.constexpr):
    """Partial gradients of ``k`` and ``D`` over one group of batch pairs. Grid ``(H, groups)``.

    ``dk_part[g, h, j] = sum_{b in group} sum_t dy[b, h, t] * u[b, h, t - j]`` for ``j < Lk``
    (``(groups, H, Lk)`` float32) and ``dd_part[g, h] = sum_{b in group, t} u * dy``
    (``(groups, H)``); ``u, dy``: ``(B, H, L)``. The host sums over the groups.
    """
    h = tl.program_id(0)
    g = tl.program_id(1)
    n_pairs = (B + 1) // 2
    p_start = g * pairs_per_program
    p_end = tl.minimum(p_start + pairs_per_program, n_pairs)
    time = tl.arange(0, N1)[:, None] * N2 + tl.arange(0, N2)[None, :]
    mask_r = time < L
    acc_r = tl.zeros((N1, N2), tl.float32)
    acc_i = tl.zeros((N1, N2), tl.float32)
    dd = 0.0
    for p in tl.range(p_start, p_end):
        offs = (2 * p * H + h.to(tl.int64)) * L + time
        mask_i = time < L - L * ((2 * p + 1) // B)  # row 2p + 1 == B is past the batch
        ur = tl.load(u_ptr + offs, mask=mask_r, other=0.0).to(tl.float32)
        ui = tl.load(u_ptr + offs + H * L, mask=mask_i, other=0.0).to(tl.float32)
        gr = tl.load(dy_ptr + offs, mask=mask_r, other=0.0).to(tl.float32)
        gi = tl.load(dy_ptr + offs + H * L, mask=mask_i, other=0.0).to(tl.float32)
        if HAS_D:
            dd += tl.sum(tl.sum(ur * gr + ui * gi, axis=1), axis=0)
        ur, ui = _dft(ur, ui, f1_ptr, f2_ptr, tw_ptr, N1, N2, False, PRECISION)
        gr, gi = _dft(gr, gi, f1_ptr, f2_ptr, tw_ptr, N1, N2, False, PRECISION)
        acc_r += gr * ur + gi * ui
        acc_i += gi * ur - gr * ui
    acc_r, acc_i = _dft(acc_r, acc_i, f1_ptr, f2_ptr, tw_ptr, N1, N2, True, PRECISION)
    dk_offs = (g.to(tl.int64) * H + h) * Lk + time
    tl.store(dk_part_ptr + dk_offs, acc_r * (1.0 / (N1 * N2)), mask=time < Lk)
    if HAS_D:
        tl.store(dd_part_ptr + g * H + h, dd)


# ----------------------------------------------------------------------------------------------
# host code


def _fft_size(n: int) -> int:
    """The FFT size for a linear convolution of total length ``n``: a power of two, >= 256."""
    return max(_MIN_SIZE, 1 << (n - 1).bit_length())


def _factor(n: int) -> tuple[int, int]:
    """``n = n1 * n2``, powers of two with ``n1 <= n2 <= 2 * n1`` (16x16 ... 64x64)."""
    log2 = n.bit_length() - 1
    return 1 << (log2 // 2), 1 << (log2 - log2 // 2)


def _roots(rows: int, cols: int, n: int) -> Tensor:
    """``exp(-2 pi i r c / n)`` for ``r < rows``, ``c < cols``: float32 planes ``(2, rows, cols)``.

    The exponent is reduced mod ``n`` in integers and the angle taken in float64.
    """
    r = torch.arange(rows, dtype=torch.int64)[:, None]
    c = torch.arange(cols, dtype=torch.int64)[None, :]
    angle = ((r * c) % n).to(torch.float64) * (-2.0 * math.pi / n)
    return torch.stack([torch.cos(angle), torch.sin(angle)]).float()


@functools.lru_cache(maxsize=None)
def _tables(n1: int, n2: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The DFT matrices ``F1`` ``(2, n1, n1)``, ``F2`` ``(2, n2, n2)`` and twiddles ``T``
    ``(2, n1, n2)`` of an FFT of size ``n1 * n2``, on ``device``."""
    n = n1 * n2
    return (_roots(n1, n1, n1).to(device), _roots(n2, n2, n2).to(device),
            _roots(n1, n2, n).to(device))


def _num_warps(n: int) -> int:
    return 8 if n >= 4096 else 4


def _precision(requested: str | None, result_dtype: torch.dtype) -> str:
    """The dot precision for a result of ``result_dtype``: ``requested``, or by default
    ``"ieee"`` for float32 results and ``"tf32"`` for bfloat16/float16 ones."""
    if requested is not None:
        return requested
    return "ieee" if result_dtype == torch.float32 else "tf32"


def _launch_config(x: Tensor, Lk: int) -> tuple[int, int, int, int]:
    """``(n1, n2, pairs_per_program, groups)`` for ``x`` ``(B, H, L)`` and kernel length ``Lk``."""
    B, H, L = x.shape
    n1, n2 = _factor(_fft_size(L + Lk - 1))
    per_program, groups = _split_pairs((B + 1) // 2, 1, H, x.device)
    return n1, n2, per_program, groups


def _long_conv_fwd(x: Tensor, k: Tensor, D: Tensor | None, correlate: bool,
                   precision: str) -> Tensor:
    """``conv(x, k) + D * x``, or ``corr(x, k) + D * x`` when ``correlate`` (the ``du``).

    ``x``: ``(B, H, L)``, ``k``: ``(H, Lk)``, ``D``: ``(H,)`` or None, all contiguous; returns
    ``(B, H, L)`` in ``x``'s dtype.
    """
    B, H, L = x.shape
    n1, n2, per_program, groups = _launch_config(x, k.shape[-1])
    y = torch.empty_like(x)
    _long_conv_fwd_kernel[(H, groups)](
        x, k, D, y, *_tables(n1, n2, x.device), B, H, L, k.shape[-1], per_program,
        N1=n1, N2=n2, HAS_D=D is not None, CORRELATE=correlate, PRECISION=precision,
        num_warps=_num_warps(n1 * n2), num_stages=1,
    )
    return y


def _long_conv_dk(u: Tensor, dy: Tensor, Lk: int, with_d: bool,
                  precision: str) -> tuple[Tensor, Tensor | None]:
    """``dk`` (``(H, Lk)`` float32) and, if ``with_d``, ``dD`` (``(H,)`` float32).

    ``u, dy``: ``(B, H, L)`` contiguous.
    """
    B, H, L = u.shape
    n1, n2, per_program, groups = _launch_config(u, Lk)
    dk_part = torch.empty(groups, H, Lk, device=u.device, dtype=torch.float32)
    dd_part = torch.empty(groups, H, device=u.device, dtype=torch.float32) if with_d else None
    _long_conv_dk_kernel[(H, groups)](
        u, dy, dk_part, dd_part, *_tables(n1, n2, u.device), B, H, L, Lk, per_program,
        N1=n1, N2=n2, HAS_D=with_d, PRECISION=precision, num_warps=_num_warps(n1 * n2),
        num_stages=1,
    )
    return dk_part.sum(0), dd_part.sum(0) if with_d else None


class LongConvFunction(torch.autograd.Function):
    """Autograd Function over the butterfly kernels: ``(u, k, D) -> causal_conv(u, k) + D * u``.

    ``u``: ``(B, H, L)``; ``k``: ``(H, Lk)``; ``D``: ``(H,)`` or None; all contiguous, on one
    device, float32/bfloat16/float16; ``precision``: the ``tl.dot`` input precision, one of
    :data:`PRECISIONS`, or None for the default of each result's dtype (``y`` and ``du``:
    ``u``'s, ``dk``: ``k``'s). Returns ``(B, H, L)`` in ``u``'s dtype.
    """

    @staticmethod
    def forward(ctx, u: Tensor, k: Tensor, D: Tensor | None, precision: str | None) -> Tensor:
        ctx.save_for_backward(u, k, D)
        ctx.precision = precision
        return _long_conv_fwd(u, k, D, False, _precision(precision, u.dtype))

    @staticmethod
    def backward(ctx, dy: Tensor):
        u, k, D = ctx.saved_tensors
        dy = dy.contiguous()
        du = dk = dD = None
        if ctx.needs_input_grad[0]:
            du = _long_conv_fwd(dy, k, D, True, _precision(ctx.precision, u.dtype))
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            dk, dD = _long_conv_dk(u, dy, k.shape[-1], D is not None,
                                   _precision(ctx.precision, k.dtype))
            dk = dk.to(k.dtype) if ctx.needs_input_grad[1] else None
            dD = dD.to(D.dtype) if ctx.needs_input_grad[2] else None
        return du, dk, dD, None


def butterfly_long_conv(u: Tensor, k: Tensor, D: Tensor | None = None, *,
                        input_precision: str | None = None) -> Tensor:
    """Causal linear convolution with on-chip Monarch (DFT-matrix) FFTs; the ``"butterfly"``
    backend of ``long_conv``.

    ``y[b, h, t] = sum_{s <= t, t - s < Lk} k[h, t - s] * u[b, h, s] + D[h] * u[b, h, t]``

    Args:
        u: ``(B, H, L)``, float32/bfloat16/float16, any strides (copied once if not contiguous).
        k: ``(H, Lk)`` with ``1 <= Lk <= L`` and ``L + Lk - 1 <= 4096``; float32/bfloat16/float16.
        D: ``(H,)`` or None.
        input_precision: precision of the ``tl.dot`` products, one of :data:`PRECISIONS`;
            by default chosen per result: ``"ieee"`` where it is float32 (``y`` and ``du``
            follow ``u``'s dtype, ``dk`` ``k``'s), ``"tf32"`` where it is bfloat16/float16.

    Returns:
        ``(B, H, L)`` in ``u``'s dtype, computed with float32 spectra; differentiable in all three.

    Example:
        >>> u, k = torch.randn(2, 4, 1000, device="cuda"), torch.randn(4, 1000, device="cuda")
        >>> butterfly_long_conv(u, k, torch.ones(4, device="cuda")).shape
        torch.Size([2, 4, 1000])
    """
    from . import check_long_conv_args

    check_long_conv_args(u, k, D)
    ok, reason = supports(u, k, D)
    if not ok:
        raise ValueError(f"long_conv backend 'butterfly' cannot run this call: {reason}")
    if input_precision is not None and input_precision not in PRECISIONS:
        raise ValueError(
            f"input_precision must be one of {PRECISIONS} or None, got {input_precision!r}")
    return LongConvFunction.apply(u.contiguous(), k.contiguous(),
                                  D.contiguous() if D is not None else None, input_precision)
