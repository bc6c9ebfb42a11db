"""The ``"fft"`` backend of long_conv: Triton kernels for FFT convolution, forward and backward.

Design:

* **Size.** One power-of-two FFT size ``N >= L + Lk - 1`` (at least 16) per call, so the
  circular convolution of the zero-padded sequences equals the linear one on ``[0, L)``; the
  padding is done by masked loads inside the kernels, never by copies.
* **Real inputs, two per complex FFT.** Batch rows ``2p`` and ``2p + 1`` are packed as
  ``z = u[2p] + i * u[2p + 1]``. Because the kernel ``k`` is real, ``ifft(fft(z) * K)`` is
  ``y[2p] + i * y[2p + 1]``: one complex FFT of size ``N`` per two real sequences, with no
  post-processing. The same holds for ``du`` (with ``conj(K)``), and
  ``Re(ifft(fft(z_dy) * conj(fft(z_u))))`` is the *sum* of the two rows' correlations, which is
  exactly the batch sum ``dk`` needs.
* **FFTs on chip.** :func:`_fft_rows` is a radix-2 constant-geometry (Pease) FFT along the
  last axis of a ``(ROWS, N)`` tile: every stage has the same shape (``tl.reshape``,
  ``tl.permute``, ``tl.split``, ``tl.join``), so the stages are a runtime loop, which keeps code
  size, registers and compile time small. The forward transform leaves the spectrum in
  bit-reversed order and the inverse takes it in that order, so a convolution never reorders.
  Twiddles come from a table of ``N`` roots of unity rounded from float64.
* **One pass** for ``N <= _MAX_ONE_PASS``: each program owns one feature ``h`` (and a group of
  batch pairs), transforms ``k`` once, then loads, transforms, multiplies, inverts and stores
  every pair of its group. ``u`` is read once and ``y`` written once.
* **Longer sequences** use the four-step factorization ``N = N1 * N2`` (both on chip):
  a column pass (FFTs of size ``N1`` of strided columns, times the twiddles ``w_N^(n2 k1)``)
  writes a float32 complex scratch; a row pass (FFTs of size ``N2``, the pointwise product,
  inverse FFTs, inverse twiddles) rewrites it in place; an inverse column pass writes ``y``.
  That is two round trips of the scratch through global memory (write, read+write, read)
  besides reading ``u`` and writing ``y``. ``N`` up to ``_MAX_SIZE`` (2048 * 2048).
* The kernel's spectrum is computed once per call for the whole batch (per feature, inside the
  program that serves the batch); the backward recomputes it rather than storing it.

Works on CUDA GPUs and, for testing, on the CPU under ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from ...errors import Unsupported
from ..fourier import monarch_factors
from ..triton_utils import (check_call, cmul, is_available, load_pair, cmul_add, load_pairs_and_dot, pair_rows,
                            roots, second_row_mask, split_work,
                            store_pair, store_pair_plus_skip, tl, triton)
from .call import ConvCall

__all__ = ["is_available", "plan", "forward", "backward", "FFTPlan"]

_MIN_SIZE = 16
"""Smallest FFT size used (tiny tiles compile badly and save nothing)."""

_MAX_ONE_PASS = 2048
"""Largest FFT size done in a single on-chip pass; larger sizes use the four-step. At 4096 the
backward kernel spills registers on sm_80-90 whatever the warps (``tests/aot``)."""

_MAX_SIZE = 2048**2
"""Largest FFT size: the four-step's two factors are each at most 2048."""

_TILE = 2048
"""Elements of one ``(ROWS, N)`` float32 tile per program: sets ROWS (pairs or columns at once)."""

_SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

_MAX_REGISTERS = 255
"""The register ceiling (``maxnreg``, PTX ``.maxnreg``) every launch passes.

Without one, ptxas (under the flags Triton passes, e.g. ``--regAllocOptLevel=2`` in Triton 3.9)
held some one-pass variants to round budgets of 40-128 registers and kept a few predicates in
local memory (4-36 B per thread: 32 variants on sm_80, 15 on sm_86, 1 on sm_90); with it none
spills (``tests/aot``). The Triton scan launches without one: with it its float32 backward at 32
states takes all 255 registers and spills 4 B on sm_90, without it none."""


# ----------------------------------------------------------------------------------------------
# device code


@triton.jit
def _fft_rows(re, im, tw_re_ptr, tw_im_ptr, ROWS: tl.constexpr, N: tl.constexpr,
              LOG2N: tl.constexpr, TW_N: tl.constexpr, INVERSE: tl.constexpr):
    """DFT of every row of the ``(ROWS, N)`` complex tile ``(re, im)``, as a runtime loop.

    Forward: natural order in, bit-reversed order out. ``INVERSE``: bit-reversed in, natural
    out, unnormalized (a factor ``N`` too large). Radix-2 with constant geometry (Pease): every
    stage ``s`` pairs ``x[j]`` with ``x[j + N/2]`` and interleaves the results,
    ``y[2j] = a + b``, ``y[2j + 1] = (a - b) * w^((j >> s) << s)`` (``w = exp(-2 pi i / N)``),
    so all stages have one shape and are one loop (small code, fast compiles); the inverse
    undoes the stages in reverse order with conjugate twiddles. Pointwise products of two
    spectra do not care about the order, so convolutions never reorder. The twiddle table
    holds ``exp(-2 pi i t / TW_N)`` for ``t < TW_N`` (``TW_N`` a multiple of ``N``).
    """
    half = tl.arange(0, N // 2)
    for i in tl.range(0, LOG2N):
        s = LOG2N - 1 - i if INVERSE else i
        t = ((half >> s) << s) * (TW_N // N)
        wr = tl.load(tw_re_ptr + t)[None, :]
        wi = tl.load(tw_im_ptr + t)[None, :]
        if INVERSE:
            ar, br = tl.split(tl.reshape(re, (ROWS, N // 2, 2)))
            ai, bi = tl.split(tl.reshape(im, (ROWS, N // 2, 2)))
            br, bi = cmul(br, bi, wr, wi, True)
            re = tl.reshape(tl.permute(tl.join(ar + br, ar - br), (0, 2, 1)), (ROWS, N))
            im = tl.reshape(tl.permute(tl.join(ai + bi, ai - bi), (0, 2, 1)), (ROWS, N))
        else:
            ar, br = tl.split(tl.permute(tl.reshape(re, (ROWS, 2, N // 2)), (0, 2, 1)))
            ai, bi = tl.split(tl.permute(tl.reshape(im, (ROWS, 2, N // 2)), (0, 2, 1)))
            dr, di = cmul(ar - br, ai - bi, wr, wi, False)
            re = tl.reshape(tl.join(ar + br, dr), (ROWS, N))
            im = tl.reshape(tl.join(ai + bi, di), (ROWS, N))
    return re, im


@triton.jit
def _bit_reverse(index, BITS: tl.constexpr):
    """Reverse the low ``BITS`` bits of an integer tensor: the frequency at a spectrum slot."""
    out = index * 0
    for b in tl.static_range(BITS):
        out = out | (((index >> b) & 1) << (BITS - 1 - b))
    return out


@triton.jit
def _kernel_spectrum(k_ptr, cols, Lk, tw_re_ptr, tw_im_ptr, N: tl.constexpr, LOG2N: tl.constexpr):
    """``fft`` of one kernel row ``k[:Lk]`` zero-padded to ``N``, as a ``(1, N)`` tile."""
    kr = tl.load(k_ptr + cols, mask=cols < Lk, other=0.0).to(tl.float32)
    return _fft_rows(kr, tl.zeros((1, N), tl.float32), tw_re_ptr, tw_im_ptr, 1, N, LOG2N, N, False)


@triton.jit
def _times_kernel_inverse(zr, zi, kr, ki, tw_re_ptr, tw_im_ptr, ROWS: tl.constexpr, N: tl.constexpr,
                          LOG2N: tl.constexpr, CONJ: tl.constexpr):
    """``ifft(Z * K) / N`` (``conj(K)`` with ``CONJ``) of the ``(ROWS, N)`` spectra ``Z``."""
    zr, zi = cmul(zr, zi, kr, ki, CONJ)
    zr, zi = _fft_rows(zr, zi, tw_re_ptr, tw_im_ptr, ROWS, N, LOG2N, N, True)
    return zr * (1.0 / N), zi * (1.0 / N)


@triton.jit
def _long_conv_fwd_kernel(u_ptr, k_ptr, d_ptr, y_ptr, tw_re_ptr, tw_im_ptr,
                          B, H, L, Lk, pairs_per_program,
                          N: tl.constexpr, LOG2N: tl.constexpr, ROWS: tl.constexpr,
                          HAS_D: tl.constexpr):
    """One-pass forward. Grid ``(H, groups)``: feature ``h``, pairs ``[g*ppp, (g+1)*ppp)``.

    ``u, y``: ``(B, H, L)``; ``k``: ``(H, Lk)``; ``d``: ``(H,)``. ROWS pairs per iteration.
    """
    h = tl.program_id(0)
    n_pairs = (B + 1) // 2
    p_start = tl.program_id(1) * pairs_per_program
    p_end = tl.minimum(p_start + pairs_per_program, n_pairs)
    cols = tl.arange(0, N)[None, :]
    kr, ki = _kernel_spectrum(k_ptr + h.to(tl.int64) * Lk, cols, Lk, tw_re_ptr, tw_im_ptr, N, LOG2N)
    rows = tl.arange(0, ROWS)[:, None]
    for p0 in tl.range(p_start, p_end, ROWS):
        pair = p0 + rows
        mask_r = (pair < p_end) & (cols < L)
        offs, mask_i = pair_rows(pair, h, H, L, cols, mask_r, B)
        zr, zi = load_pair(u_ptr, offs, H * L, mask_r, mask_i)
        zr, zi = _fft_rows(zr, zi, tw_re_ptr, tw_im_ptr, ROWS, N, LOG2N, N, False)
        zr, zi = _times_kernel_inverse(zr, zi, kr, ki, tw_re_ptr, tw_im_ptr, ROWS, N, LOG2N, False)
        store_pair_plus_skip(y_ptr, u_ptr, d_ptr, h, offs, H * L, zr, zi, mask_r,
                             mask_i, HAS_D)


@triton.jit
def _long_conv_bwd_kernel(u_ptr, k_ptr, d_ptr, dy_ptr, du_ptr, dk_part_ptr, dd_part_ptr,
                          tw_re_ptr, tw_im_ptr, B, H, L, Lk, pairs_per_program,
                          N: tl.constexpr, LOG2N: tl.constexpr, ROWS: tl.constexpr,
                          HAS_D: tl.constexpr):
    """One-pass backward. Grid ``(H, groups)`` as in the forward.

    ``du = corr(dy, k) + D * dy`` per row; the group's partial sums ``dk_part[g, h, :Lk]``
    (``(groups, H, Lk)``, float32) and ``dd_part[g, h]`` (``(groups, H)``) are reduced on the host.
    """
    h = tl.program_id(0)
    g = tl.program_id(1)
    n_pairs = (B + 1) // 2
    p_start = g * pairs_per_program
    p_end = tl.minimum(p_start + pairs_per_program, n_pairs)
    cols = tl.arange(0, N)[None, :]
    kr, ki = _kernel_spectrum(k_ptr + h.to(tl.int64) * Lk, cols, Lk, tw_re_ptr, tw_im_ptr, N, LOG2N)
    acc_r = tl.zeros((ROWS, N), tl.float32)
    acc_i = tl.zeros((ROWS, N), tl.float32)
    dd = 0.0
    rows = tl.arange(0, ROWS)[:, None]
    for p0 in tl.range(p_start, p_end, ROWS):
        pair = p0 + rows
        mask_r = (pair < p_end) & (cols < L)
        offs, mask_i = pair_rows(pair, h, H, L, cols, mask_r, B)
        zr, zi, xr, xi, dd = load_pairs_and_dot(dy_ptr, u_ptr, offs, H * L, mask_r, mask_i, dd, HAS_D)
        zr, zi = _fft_rows(zr, zi, tw_re_ptr, tw_im_ptr, ROWS, N, LOG2N, N, False)
        xr, xi = _fft_rows(xr, xi, tw_re_ptr, tw_im_ptr, ROWS, N, LOG2N, N, False)
        acc_r, acc_i = cmul_add(acc_r, acc_i, zr, zi, xr, xi, True)
        zr, zi = _times_kernel_inverse(zr, zi, kr, ki, tw_re_ptr, tw_im_ptr, ROWS, N, LOG2N, True)
        store_pair_plus_skip(du_ptr, dy_ptr, d_ptr, h, offs, H * L, zr, zi, mask_r,
                             mask_i, HAS_D)
    acc_r = tl.sum(acc_r, axis=0)[None, :]
    acc_i = tl.sum(acc_i, axis=0)[None, :]
    acc_r, acc_i = _fft_rows(acc_r, acc_i, tw_re_ptr, tw_im_ptr, 1, N, LOG2N, N, True)
    dk_offs = (g.to(tl.int64) * H + h) * Lk + cols
    tl.store(dk_part_ptr + dk_offs, acc_r * (1.0 / N), mask=cols < Lk)
    if HAS_D:
        tl.store(dd_part_ptr + g * H + h, dd)


@triton.jit
def _long_conv_col_fft_kernel(x_ptr, s_re_ptr, s_im_ptr, tw_re_ptr, tw_im_ptr, B, H, L,
                              N1: tl.constexpr, N2: tl.constexpr, LOG2N1: tl.constexpr,
                              T: tl.constexpr):
    """Four-step, first pass. Grid ``(pairs * H, N2 // T)``; ``x``: ``(B, H, L)`` real.

    For the ``T`` columns ``n2`` of the tile: ``S[p, h, r * N2 + n2] = w_N^(n2 k1) *
    sum_n1 z[n1 * N2 + n2] w_N1^(n1 k1)`` with ``k1 = bitrev(r)``, ``z = x[2p] + i x[2p + 1]``
    zero-padded; ``S``: ``(pairs, H, N1 * N2)`` float32 planes.
    """
    pid = tl.program_id(0)
    pair = pid // H
    h = pid % H
    n2 = tl.program_id(1) * T + tl.arange(0, T)[:, None]
    n1 = tl.arange(0, N1)[None, :]
    time = n1 * N2 + n2
    mask_r = time < L
    mask_i = second_row_mask(mask_r, pair, B)
    base = (2 * pair.to(tl.int64) * H + h) * L
    zr, zi = load_pair(x_ptr + base, time, H * L, mask_r, mask_i)
    zr, zi = _fft_rows(zr, zi, tw_re_ptr, tw_im_ptr, T, N1, LOG2N1, N1 * N2, False)
    tw = n2 * _bit_reverse(n1, LOG2N1)  # the slot n1 now holds frequency k1 = bitrev(n1)
    zr, zi = cmul(zr, zi, tl.load(tw_re_ptr + tw), tl.load(tw_im_ptr + tw), False)
    offs = pid.to(tl.int64) * (N1 * N2) + n1 * N2 + n2
    tl.store(s_re_ptr + offs, zr)
    tl.store(s_im_ptr + offs, zi)


@triton.jit
def _row_pass_setup(sk_re_ptr, sk_im_ptr, tw_re_ptr, tw_im_ptr, h, N1: tl.constexpr,
                    N2: tl.constexpr, LOG2N1: tl.constexpr, LOG2N2: tl.constexpr, T: tl.constexpr):
    """What both middle passes need for the ``T`` rows of program ``(h, tile)``: the rows'
    offsets in a ``(N1, N2)`` plane, the kernel's spectrum ``K = fft(Sk[h, rows, :])`` and the
    inverse twiddles ``conj(w_N^(n2 k1)) / N`` (``k1 = bitrev(row)``)."""
    row = tl.program_id(1) * T + tl.arange(0, T)[:, None]
    col = tl.arange(0, N2)[None, :]
    offs = row * N2 + col
    k_base = h.to(tl.int64) * (N1 * N2)
    kr, ki = _fft_rows(tl.load(sk_re_ptr + k_base + offs), tl.load(sk_im_ptr + k_base + offs),
                       tw_re_ptr, tw_im_ptr, T, N2, LOG2N2, N1 * N2, False)
    tw = _bit_reverse(row, LOG2N1) * col
    wr = tl.load(tw_re_ptr + tw) * (1.0 / (N1 * N2))
    wi = tl.load(tw_im_ptr + tw) * (-1.0 / (N1 * N2))
    return offs, kr, ki, wr, wi


@triton.jit
def _long_conv_row_fwd_kernel(s_re_ptr, s_im_ptr, sk_re_ptr, sk_im_ptr, tw_re_ptr, tw_im_ptr,
                              H, n_pairs, pairs_per_program,
                              N1: tl.constexpr, N2: tl.constexpr, LOG2N1: tl.constexpr,
                              LOG2N2: tl.constexpr, T: tl.constexpr):
    """Four-step, middle pass of the forward. Grid ``(H, N1 // T, groups)``.

    Rows ``r`` (frequency ``k1 = bitrev(r)``) of the tile: ``K = fft(Sk[h, r, :])`` once, then
    for each pair of the group ``S[p, h, r, :] = conj(w_N^(n2 k1)) / N * ifft(fft(S[p, h, r, :])
    * K)`` in place.
    """
    h = tl.program_id(0)
    p_start = tl.program_id(2) * pairs_per_program
    p_end = tl.minimum(p_start + pairs_per_program, n_pairs)
    offs, kr, ki, wr, wi = _row_pass_setup(sk_re_ptr, sk_im_ptr, tw_re_ptr, tw_im_ptr, h,
                                           N1, N2, LOG2N1, LOG2N2, T)
    for p in tl.range(p_start, p_end):
        base = (p * H + h).to(tl.int64) * (N1 * N2)
        zr, zi = _fft_rows(tl.load(s_re_ptr + base + offs), tl.load(s_im_ptr + base + offs),
                           tw_re_ptr, tw_im_ptr, T, N2, LOG2N2, N1 * N2, False)
        zr, zi = cmul(zr, zi, kr, ki, False)
        zr, zi = _fft_rows(zr, zi, tw_re_ptr, tw_im_ptr, T, N2, LOG2N2, N1 * N2, True)
        zr, zi = cmul(zr, zi, wr, wi, False)
        tl.store(s_re_ptr + base + offs, zr)
        tl.store(s_im_ptr + base + offs, zi)


@triton.jit
def _long_conv_row_bwd_kernel(su_re_ptr, su_im_ptr, sg_re_ptr, sg_im_ptr, sk_re_ptr, sk_im_ptr,
                              tw_re_ptr, tw_im_ptr, H, n_pairs,
                              N1: tl.constexpr, N2: tl.constexpr, LOG2N1: tl.constexpr,
                              LOG2N2: tl.constexpr, T: tl.constexpr):
    """Four-step, middle pass of the backward. Grid ``(H, N1 // T)``.

    With ``K = fft(Sk)``, ``U = fft(Su)``, ``G = fft(Sg)`` on rows ``r``: ``Sg <- ifft(G *
    conj(K))`` (``du``) for every pair, and ``Sk <- ifft(sum_p G_p * conj(U_p))`` (``dk``), each
    times ``conj(w_N^(n2 k1)) / N``, in place.
    """
    h = tl.program_id(0)
    offs, kr, ki, wr, wi = _row_pass_setup(sk_re_ptr, sk_im_ptr, tw_re_ptr, tw_im_ptr, h,
                                           N1, N2, LOG2N1, LOG2N2, T)
    k_base = h.to(tl.int64) * (N1 * N2)
    acc_r = tl.zeros((T, N2), tl.float32)
    acc_i = tl.zeros((T, N2), tl.float32)
    for p in tl.range(0, n_pairs):
        base = (p * H + h).to(tl.int64) * (N1 * N2)
        ur, ui = _fft_rows(tl.load(su_re_ptr + base + offs), tl.load(su_im_ptr + base + offs),
                           tw_re_ptr, tw_im_ptr, T, N2, LOG2N2, N1 * N2, False)
        gr, gi = _fft_rows(tl.load(sg_re_ptr + base + offs), tl.load(sg_im_ptr + base + offs),
                           tw_re_ptr, tw_im_ptr, T, N2, LOG2N2, N1 * N2, False)
        acc_r, acc_i = cmul_add(acc_r, acc_i, gr, gi, ur, ui, True)
        gr, gi = cmul(gr, gi, kr, ki, True)
        gr, gi = _fft_rows(gr, gi, tw_re_ptr, tw_im_ptr, T, N2, LOG2N2, N1 * N2, True)
        gr, gi = cmul(gr, gi, wr, wi, False)
        tl.store(sg_re_ptr + base + offs, gr)
        tl.store(sg_im_ptr + base + offs, gi)
    acc_r, acc_i = _fft_rows(acc_r, acc_i, tw_re_ptr, tw_im_ptr, T, N2, LOG2N2, N1 * N2, True)
    acc_r, acc_i = cmul(acc_r, acc_i, wr, wi, False)
    tl.store(sk_re_ptr + k_base + offs, acc_r)
    tl.store(sk_im_ptr + k_base + offs, acc_i)


@triton.jit
def _long_conv_col_ifft_kernel(s_re_ptr, s_im_ptr, out_ptr, skip_ptr, d_ptr, dot_ptr, dd_part_ptr,
                               tw_re_ptr, tw_im_ptr, B, H, L,
                               N1: tl.constexpr, N2: tl.constexpr, LOG2N1: tl.constexpr,
                               T: tl.constexpr, HAS_D: tl.constexpr, HAS_DOT: tl.constexpr):
    """Four-step, last pass. Grid ``(pairs * H, N2 // T)``.

    Inverse FFTs of size ``N1`` down the columns ``n2`` of ``S`` (``(pairs, H, N1 * N2)``, slot
    ``r`` of a column holding frequency ``bitrev(r)``) give
    time ``n1 * N2 + n2``; the real part goes to ``out[2p]``, the imaginary part to
    ``out[2p + 1]`` (``out``: ``(B, H, L)``, first ``L`` samples), plus ``D[h] * skip``.
    ``HAS_DOT`` also stores this tile's ``sum(skip * dot)`` at ``dd_part[tile, pid]``.
    """
    pid = tl.program_id(0)
    tile = tl.program_id(1)
    pair = pid // H
    h = pid % H
    n2 = tile * T + tl.arange(0, T)[:, None]
    n1 = tl.arange(0, N1)[None, :]
    offs = pid.to(tl.int64) * (N1 * N2) + n1 * N2 + n2
    zr, zi = _fft_rows(tl.load(s_re_ptr + offs), tl.load(s_im_ptr + offs),
                       tw_re_ptr, tw_im_ptr, T, N1, LOG2N1, N1 * N2, True)
    time = n1 * N2 + n2
    mask_r = time < L
    mask_i = second_row_mask(mask_r, pair, B)
    base = (2 * pair.to(tl.int64) * H + h) * L
    if HAS_D:
        d = tl.load(d_ptr + h).to(tl.float32)
        xr, xi = load_pair(skip_ptr + base, time, H * L, mask_r, mask_i)
        zr += d * xr
        zi += d * xi
        if HAS_DOT:
            vr, vi = load_pair(dot_ptr + base, time, H * L, mask_r, mask_i)
            dot = tl.sum(tl.sum(xr * vr + xi * vi, axis=1), axis=0)
            tl.store(dd_part_ptr + tile * tl.num_programs(0) + pid, dot)
    store_pair(out_ptr + base, time, H * L, zr, zi, mask_r, mask_i)


# ----------------------------------------------------------------------------------------------
# host code


@dataclass(frozen=True)
class FFTPlan:
    """How one call runs: FFT size ``n``, ``ROWS`` per tile, batch pairs per program and program
    groups per feature; ``n1 * n2 == n`` and the column-pass tile ``cols`` on the four-step
    (``n1 == 1``: one pass)."""

    n: int
    rows: int
    per_program: int
    groups: int
    n1: int = 1
    n2: int = 1
    cols: int = 0

    @property
    def four_step(self) -> bool:
        return self.n1 > 1


def _fft_size(n: int) -> int:
    """The FFT size for a linear convolution of total length ``n``: a power of two, >= 16."""
    return max(_MIN_SIZE, 1 << (n - 1).bit_length())


@functools.lru_cache(maxsize=1024)  # planned once per call shape (dispatch.clear_plans)
def plan(call: ConvCall, auto: bool) -> FFTPlan:
    """The launch plan of ``call``; raises :class:`Unsupported` with the reason if it cannot run."""
    check_call("fft", call.device, {"u": call.dtype, "k": call.kernel_dtype, "D": call.skip_dtype},
               _SUPPORTED_DTYPES, auto)
    n = _fft_size(call.total)
    if n > _MAX_SIZE:
        raise Unsupported(f"L + Lk - 1 = {call.total} needs an FFT of size {n} > {_MAX_SIZE}; "
                          "use backend='torch'")
    pairs = (call.batch + 1) // 2
    if n <= _MAX_ONE_PASS:
        rows = max(1, min(_TILE // n, 1 << (pairs - 1).bit_length()))
        return FFTPlan(n, rows, *split_work(pairs, rows, call.features, call.device))
    n1, n2 = monarch_factors(n)
    rows = max(1, min(n1, _TILE // n2))
    per_program, groups = split_work(pairs, 1, call.features * (n1 // rows), call.device)
    return FFTPlan(n, rows, per_program, groups, n1, n2, max(1, min(n2, _TILE // n1)))


def _num_warps(elements: int) -> int:
    """Warps for a program whose tiles hold ``elements`` values each: 8 from 512 elements, else 4.

    Measured with ``tests/aot`` (the ``ptxas`` log of Triton's own compile, sm_90): with 4 warps
    the one-pass kernels spilled 4-132 B per thread in 10 of their variants with tiles of 512 or
    1024 elements (the backward keeps about four tiles live: the kernel's spectrum, an
    accumulator and two spectra); with 8 warps from 512 elements, none with the register ceiling
    (:data:`_MAX_REGISTERS`)."""
    return 4 if elements < 512 else 8


def _launch_options(elements: int) -> dict[str, int]:
    """``num_warps`` and ``maxnreg`` of a launch whose tiles hold ``elements`` values each."""
    return {"num_warps": _num_warps(elements), "maxnreg": _MAX_REGISTERS}


@functools.lru_cache(maxsize=None)
def _twiddles(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """``exp(-2 pi i t / n)`` for ``t < n`` as float32 (real, imaginary) vectors."""
    table = roots(2, n, n, device)  # row 1: exp(-2 pi i t / n)
    return table[0, 1], table[1, 1]


def _col_fft(x: Tensor, p: FFTPlan) -> tuple[Tensor, Tensor]:
    """First four-step pass over ``x`` (``(B, H, L)``); returns ``S`` planes ``(pairs, H, n)``."""
    B, H, L = x.shape
    pairs = (B + 1) // 2
    s_re = torch.empty(pairs, H, p.n, device=x.device, dtype=torch.float32)
    s_im = torch.empty_like(s_re)
    _long_conv_col_fft_kernel[(pairs * H, p.n2 // p.cols)](
        x, s_re, s_im, *_twiddles(p.n, x.device), B, H, L, N1=p.n1, N2=p.n2,
        LOG2N1=p.n1.bit_length() - 1, T=p.cols, **_launch_options(p.cols * p.n1),
    )
    return s_re, s_im


def _col_ifft(s: tuple[Tensor, Tensor], out: Tensor, p: FFTPlan, skip: Tensor | None = None,
              D: Tensor | None = None, dot: Tensor | None = None) -> Tensor | None:
    """Last four-step pass into ``out`` (``(B, H, L)``), plus ``D * skip``.

    Returns ``sum(skip * dot)`` over batch and time, ``(H,)`` float32, when ``dot`` is given.
    """
    B, H, L = out.shape
    pairs = (B + 1) // 2
    tiles = p.n2 // p.cols
    dd_part = None
    if dot is not None:
        dd_part = torch.empty(tiles, pairs, H, device=out.device, dtype=torch.float32)
    _long_conv_col_ifft_kernel[(pairs * H, tiles)](
        *s, out, skip, D, dot, dd_part, *_twiddles(p.n, out.device), B, H, L, N1=p.n1, N2=p.n2,
        LOG2N1=p.n1.bit_length() - 1, T=p.cols, HAS_D=D is not None, HAS_DOT=dot is not None,
        **_launch_options(p.cols * p.n1),
    )
    return dd_part.sum((0, 1)) if dot is not None else None


def forward(p: FFTPlan, u: Tensor, k: Tensor, D: Tensor | None) -> Tensor:
    """``y = causal_conv(u, k) + D * u``; ``u (B, H, L)``, ``k (H, Lk)``, ``D (H,)`` or None
    (checked by ``long_conv``); returns ``(B, H, L)`` in ``u``'s dtype."""
    u, k = u.contiguous(), k.contiguous()
    D = D.contiguous() if D is not None else None
    B, H, L = u.shape
    tw = _twiddles(p.n, u.device)
    y = torch.empty_like(u)
    if not p.four_step:
        _long_conv_fwd_kernel[(H, p.groups)](
            u, k, D, y, *tw, B, H, L, k.shape[-1], p.per_program, N=p.n, LOG2N=p.n.bit_length() - 1,
            ROWS=p.rows, HAS_D=D is not None, **_launch_options(p.rows * p.n),
        )
        return y
    su = _col_fft(u, p)
    sk = _col_fft(k.unsqueeze(0), p)
    _long_conv_row_fwd_kernel[(H, p.n1 // p.rows, p.groups)](
        *su, *sk, *tw, H, (B + 1) // 2, p.per_program, N1=p.n1, N2=p.n2, LOG2N1=p.n1.bit_length() - 1,
        LOG2N2=p.n2.bit_length() - 1, T=p.rows, **_launch_options(p.rows * p.n2),
    )
    _col_ifft(su, y, p, skip=u, D=D)
    return y


def backward(p: FFTPlan, dy: Tensor, u: Tensor, k: Tensor, D: Tensor | None,
             needs: list[bool]) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(du, dk, dD)`` of :func:`forward` for the upstream gradient ``dy`` (``(B, H, L)``): ``du``
    in ``u``'s dtype, ``dk`` ``(H, Lk)`` and ``dD`` ``(H,)`` in float32 (None without ``D``); the
    kernels compute all three together, whatever ``needs`` says."""
    u, k, dy = u.contiguous(), k.contiguous(), dy.contiguous()
    D = D.contiguous() if D is not None else None
    B, H, L = u.shape
    Lk = k.shape[-1]
    du = torch.empty_like(u)
    if not p.four_step:
        dk_part = torch.empty(p.groups, H, Lk, device=u.device, dtype=torch.float32)
        dd_part = torch.empty(p.groups, H, device=u.device, dtype=torch.float32)
        _long_conv_bwd_kernel[(H, p.groups)](
            u, k, D, dy, du, dk_part, dd_part, *_twiddles(p.n, u.device), B, H, L, Lk, p.per_program,
            N=p.n, LOG2N=p.n.bit_length() - 1, ROWS=p.rows, HAS_D=D is not None,
            **_launch_options(p.rows * p.n),
        )
        return du, dk_part.sum(0), dd_part.sum(0) if D is not None else None
    su, sg, sk = _col_fft(u, p), _col_fft(dy, p), _col_fft(k.unsqueeze(0), p)
    _long_conv_row_bwd_kernel[(H, p.n1 // p.rows)](
        *su, *sg, *sk, *_twiddles(p.n, u.device), H, (B + 1) // 2, N1=p.n1, N2=p.n2,
        LOG2N1=p.n1.bit_length() - 1, LOG2N2=p.n2.bit_length() - 1, T=p.rows,
        **_launch_options(p.rows * p.n2),
    )
    del su
    dD = _col_ifft(sg, du, p, skip=dy, D=D, dot=u if D is not None else None)
    dk = torch.empty(1, H, Lk, device=u.device, dtype=torch.float32)
    _col_ifft(sk, dk, p)
    return du, dk[0], dD
