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
* **One pass, one kernel** for ``N <=`` the one-pass limit (:func:`one_pass_limit`, at most
  ``_MAX_ONE_PASS = 4096``). Each program owns one feature ``h`` and a group of batch pairs: it
  transforms ``k`` once (the spectrum, scaled by ``1 / N``, is shared by the group), then loads,
  transforms, multiplies, inverts and stores every pair. ``u`` is read once and ``y`` written
  once. The backward is the same kernel run on ``dy`` with ``conj(K)`` (a correlation) for
  ``du``, and a second kernel that accumulates ``fft(dy) * conj(fft(u))`` over the group and
  inverts it once for ``dk`` (and sums ``u * dy`` for ``dD``).
* **Outer pass through global memory** beyond the one-pass limit: ``N = NO * NI`` with the
  outer size ``NO`` in ``[16, 64]`` (a dense DFT, four ``tl.dot`` of ``(NO, NO) @ (NO, T)``)
  and the inner size ``NI <=`` the one-pass limit (the one-pass DFT blocks above, ``NI >= 256``).
  With ``n = n1 * NI + n2`` and frequency ``k1 + NO * k2``:

  1. *outer pass*: ``S[k1, n2] = w_N^(k1 n2) * sum_n1 z[n1 * NI + n2] w_NO^(n1 k1)``
     (columns of the ``(NO, NI)`` tile of ``z``), written to a float32 scratch
     ``(pairs, H, 2, N)``; the same for ``k`` once per call, ``(1, H, 2, N)``;
  2. *inner pass*: each row ``k1`` of ``S`` is a sequence of length ``NI`` whose one-pass DFT
     gives the frequencies ``k1 + NO * k2``; it is multiplied by the kernel's row spectrum and
     inverted in place, pair by pair (the same ``_filter`` as the one-pass kernel);
  3. *inverse outer pass*: ``z[n1 * NI + n2] = sum_k1 w_NO^(-n1 k1) w_N^(-k1 n2) S[k1, n2]``,
     plus ``D * u``, written to ``y`` in ``u``'s dtype.

  That is **two round trips** of the batch-sized scratch through global memory (written by
  pass 1, read and rewritten by pass 2, read by pass 3) besides reading ``u`` once and writing
  ``y`` once: three kernel launches (plus one small outer pass over ``k``). The backward uses
  one inner kernel for both gradients: it accumulates ``dk``'s spectrum over the batch and
  rewrites ``dy``'s scratch as ``du``'s, so ``dy``'s scratch makes the same two round trips and
  ``u``'s scratch one (written, read); two inverse outer passes write ``du`` and ``dk`` (the
  latter from an ``(H, 2, N)`` spectrum, not batch-sized), and ``dD`` is summed in the outer
  pass of ``dy``. Each scratch buffer is bounded by ``_SCRATCH_BYTES`` (1 GiB): a larger batch
  is processed in chunks of pairs. Largest size ``N <= 64 *`` the one-pass limit (262144 with a
  4096 limit, so ``L + Lk - 1 <= 262144``: ``L <= 131072`` with a full-length kernel); longer
  calls are refused by :func:`plan` with the reason, and ``"auto"`` hands them to
  ``"fft"`` (two outer levels are not implemented). The outer path starts at ``N = 16 * 256 =
  4096`` (a smaller ``N`` above a lowered one-pass limit is padded up to it).
* **Shared memory from the device.** The one-pass limit is the largest ``N`` whose kernels'
  estimated shared memory (:data:`_SMEM_KB`, measured from offline sm_90 compiles of every
  variant and precision with ``num_stages=1``: one-pass forward 4/14/16/56/68 KB, ``dk``
  9/19/33/73/129 KB, the outer path's inner kernels up to 68 and 128 KB, for ``N`` = 256 ...
  4096; outer passes 34/40/68 KB for ``NO`` = 16/32/64) fits the device's opt-in shared memory
  per block: 4096 on A100/H100 (163/227 KB), 2048 on ~100 KB GPUs (consumer Ampere/Ada/
  Blackwell), which then take the outer pass beyond 2048, up to ``N = 131072``; a device too
  small for the outer passes of 64 gets a smaller largest size. Off-GPU (the interpreter) the
  limit is ``_MAX_ONE_PASS``. Launches use ``num_stages=1``: software pipelining would
  multi-buffer the DFT tables loaded in the batch loop (over 224 KB at 64x64).
* **No register spills.** On a GPU the planner also keeps the one-pass (inner) size and the outer
  size within :data:`_SPILL_FREE`, per dot precision: the largest whose kernels compile without
  spills (``ptxas -v``, sm_80/86/90, gated by ``tests/aot``). The 64 x 64 products spilled up to
  130 KB per thread, and fp32 (``"ieee"``) dots spill from 512 on, so float32 results take one
  pass up to 256 and the outer path up to 16 x 256 = 4096 (``"tf32x3"``: 512, 32 x 512; TF32:
  512, 16 x 512); longer calls are refused and ``"auto"`` hands them to ``"fft"``.
* **Precision.** ``input_precision`` of the dots, by default chosen per result from the dtype it
  is returned in (``y`` and ``du``: ``u``'s, ``dk``: ``k``'s): ``"ieee"`` for float32 (plain
  float32 FMAs, within float32 FFT error, about 5e-7 relative RMS on both paths), ``"tf32"`` for
  bfloat16 and float16 (tensor cores; about 5e-4 relative RMS, well below those dtypes' own
  rounding); ``"tf32x3"`` on request (near float32 accuracy at three times the dots). The outer
  backward transforms ``u`` and ``dy`` once for both ``du`` and ``dk``, with the more accurate of
  their two precisions. Every path accumulates in float32 and returns ``u``'s dtype. The
  interpreter computes every dot in float32 whatever is asked.
* DFT matrices and twiddles are float32 tables rounded from float64, cached per size and device.

Works on CUDA GPUs and, for testing, on the CPU under ``TRITON_INTERPRET=1``. ``input_precision``
of ``tl.dot`` exists from Triton 3.0 on, so 3.6 to 3.9 all take it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch
from torch import Tensor

from ...errors import Unsupported
from ..fourier import monarch_factors
from ..triton_utils import (check_call, cmul, interpreting, is_available, load_pair,
                            cmul_add, load_pairs_and_dot, pair_rows, roots,
                            second_row_mask, split_work,
                            store_pair_plus_skip, tl, triton)
from .call import ConvCall

__all__ = ["is_available", "plan", "forward", "backward", "ButterflyPlan", "one_pass_limit", "max_size",
           "PRECISIONS", "PRECISION_ENV"]

_MIN_SIZE = 256
"""Smallest FFT size: 16 x 16, the smallest blocks ``tl.dot`` takes."""

_MAX_ONE_PASS = 4096
"""Largest FFT size (64 x 64) done on chip in one pass; a device with less shared memory gets a
smaller limit (:func:`one_pass_limit`). Tests lower it to exercise the outer pass at small sizes."""

_MIN_OUTER, _MAX_OUTER = 16, 64
"""Outer DFT sizes of the outer pass: dense ``tl.dot`` blocks of 16 to 64."""

_OUTER_TILE = {"ieee": 2048, "tf32": 4096, "tf32x3": 4096}
"""Elements of one ``(NO, T)`` tile of the outer passes (``T = tile / NO`` columns) per dot
precision. Exact fp32 dots hold more registers: at 4096 the forward pass with the ``dD`` dot
spilled 16 B per thread on sm_80 (255 registers); at 2048 it takes 198 (``tests/aot``)."""

_OUTER_WARPS = 8
"""Warps of the outer passes (4 spill at their tiles)."""

_SCRATCH_BYTES = 1 << 30
"""Largest float32 scratch buffer of the outer path; a larger batch is done in chunks of pairs."""

_SMEM_KB = {
    "fwd": {256: 4, 512: 14, 1024: 16, 2048: 56, 4096: 68},
    "dk": {256: 9, 512: 19, 1024: 33, 2048: 73, 4096: 129},
    "inner_conv": {256: 4, 512: 12, 1024: 16, 2048: 48, 4096: 68},
    "inner_grad": {256: 8, 512: 18, 1024: 32, 2048: 72, 4096: 128},
}
"""Shared memory (KB, rounded up) of each kernel at each inner FFT size: the largest over its
variants (``HAS_D``, ``CORRELATE``, ``HAS_DU``) and the three precisions, compiled for sm_90 with
``num_stages=1`` (``triton.compile`` offline, no GPU needed; Triton 3.6 and 3.9 agree where
both were checked, and the sm_80 compiles checked need the same or less)."""

_SMEM_KB_OUTER = {16: 34, 32: 40, 64: 68}
"""Shared memory (KB) of the outer passes (forward and inverse, every variant) at outer size
``NO`` and the tiles of :data:`_OUTER_TILE`, measured as :data:`_SMEM_KB`."""

_SPILL_FREE = {"ieee": (256, 16), "tf32": (512, 16), "tf32x3": (512, 32)}
"""Per dot precision: the largest one-pass (and inner) FFT size and the largest outer DFT size
whose kernels compile without register spills for sm_80, sm_86 and sm_90 (``ptxas -v``, checked
by ``tests/aot``; numbers in ``benchmarks/results/kernels_resources.md``). Beyond them the
``(64, 64)`` complex products do not fit in registers (the float32 FMA dots of ``"ieee"`` hold
whole rows and columns of both operands per thread; ``"tf32x3"`` splits each operand in two),
and spills reached 130 KB per thread. The planner stays within them on a GPU (not under the
interpreter, which has no registers): float32 results (``"ieee"``) get one pass up to 256 and
the outer path up to ``16 x 256 = 4096``, ``"tf32x3"`` up to 512 and ``32 x 512``, TF32 up to
512 and ``16 x 512`` (TF32 at 2048 compiles clean with 8 warps, but 1024 spills with 4 or 8; its
outer passes of 64 spill on sm_80/86, of 32 on sm_80); longer calls go to ``"fft"``."""

PRECISIONS = ("ieee", "tf32", "tf32x3")
"""Accepted values of ``input_precision`` (those Triton 3.6 to 3.9 all understand)."""

PRECISION_ENV = "SEQLAYERS_BUTTERFLY_PRECISION"
"""Environment variable forcing one dot precision of :data:`PRECISIONS` for every result (read
when a call shape is first planned); unset, the default of each result's dtype applies."""

_SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


# ----------------------------------------------------------------------------------------------
# sizes and limits


def _fft_size(n: int) -> int:
    """The FFT size for a linear convolution of total length ``n``: a power of two, >= 256."""
    return max(_MIN_SIZE, 1 << (n - 1).bit_length())


def _smem_need(n: int) -> int:
    """Estimated shared memory in bytes of the most demanding kernel at inner size ``n``."""
    return 1024 * max(table[n] for table in _SMEM_KB.values())


def one_pass_limit(smem_per_block: int | None) -> int:
    """Largest one-pass FFT size whose kernels fit ``smem_per_block`` bytes of shared memory.

    ``None`` (no GPU: the interpreter) gives ``_MAX_ONE_PASS``; 0 means no size fits. The outer
    pass uses the same limit for its inner size, so the largest FFT size is 64 times it.

    Example:
        >>> one_pass_limit(232448), one_pass_limit(101376), one_pass_limit(None)
        (4096, 2048, 4096)
    """
    n = _MAX_ONE_PASS
    if smem_per_block is None:
        return n
    while n >= _MIN_SIZE and _smem_need(n) > smem_per_block:
        n //= 2
    return n if n >= _MIN_SIZE else 0


def _max_outer(smem_per_block: int | None) -> int:
    """Largest outer DFT size whose passes fit ``smem_per_block`` bytes (all on ``None``)."""
    fits = [n for n, kb in _SMEM_KB_OUTER.items()
            if smem_per_block is None or 1024 * kb <= smem_per_block]
    return max(fits, default=1)


def max_size(smem_per_block: int | None) -> int:
    """Largest FFT size (``>= L + Lk - 1``) served with ``smem_per_block`` bytes; 0 if none.

    Example:
        >>> max_size(232448), max_size(101376)  # H100, a ~100 KB GPU
        (262144, 131072)
    """
    return _max_outer(smem_per_block) * one_pass_limit(smem_per_block)


@functools.lru_cache(maxsize=None)
def _cuda_smem(index: int) -> int:
    """Opt-in shared memory per block of CUDA device ``index`` in bytes."""
    props = torch.cuda.get_device_properties(index)
    smem = getattr(props, "shared_memory_per_block_optin", None)
    if smem is None:
        smem = triton.runtime.driver.active.utils.get_device_properties(index)["max_shared_mem"]
    return int(smem)


def _smem_per_block(device: torch.device) -> int | None:
    """The device's opt-in shared memory per block in bytes; None off-GPU (the interpreter)."""
    if device.type != "cuda" or interpreting():
        return None
    return _cuda_smem(device.index if device.index is not None else torch.cuda.current_device())


def _plan(total: int, limit: int, max_outer: int = _MAX_OUTER) -> tuple[int, int] | None:
    """``(NO, NI)`` for a convolution of total length ``total`` under one-pass limit ``limit``.

    ``NO == 1``: one pass of size ``NI``. Otherwise the outer path with ``N = NO * NI``, ``NO`` in
    ``[16, max_outer]``, ``256 <= NI <= limit``. None when ``total`` needs more than
    ``max_outer * limit``.
    """
    n = _fft_size(total)
    if n <= limit:
        return 1, n
    if limit < _MIN_SIZE:
        return None
    n = max(n, _MIN_OUTER * _MIN_SIZE)
    n_outer = max(_MIN_OUTER, n // limit)
    return (n_outer, n // n_outer) if n_outer <= max_outer else None


def _spill_free(precisions) -> tuple[int, int]:
    """``(largest one-pass size, largest outer size)`` without spills for every precision given."""
    return (min(_SPILL_FREE[p][0] for p in precisions), min(_SPILL_FREE[p][1] for p in precisions))


def _device_plan(device: torch.device, total: int) -> tuple[int, int] | None:
    """:func:`_plan` under the limits of ``device``'s shared memory."""
    smem = _smem_per_block(device)
    return _plan(total, one_pass_limit(smem), _max_outer(smem))


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
def _load_planes(ptr, offs, PLANE: tl.constexpr):
    """Real and imaginary parts stored as float32 planes ``PLANE`` elements apart."""
    return tl.load(ptr + offs), tl.load(ptr + PLANE + offs)


@triton.jit
def _load_table(ptr, ROWS: tl.constexpr, COLS: tl.constexpr):
    """A ``(ROWS, COLS)`` complex table stored as float32 planes ``(2, ROWS, COLS)``."""
    offs = tl.arange(0, ROWS)[:, None] * COLS + tl.arange(0, COLS)[None, :]
    return _load_planes(ptr, offs, ROWS * COLS)


@triton.jit
def _times_table(xr, xi, f_ptr, ROWS: tl.constexpr, COLS: tl.constexpr, RIGHT: tl.constexpr,
                 CONJ: tl.constexpr, PRECISION: tl.constexpr):
    """``F @ x`` (or ``x @ F`` with ``RIGHT``) for the ``(ROWS, COLS)`` DFT table at ``f_ptr``,
    conjugated with ``CONJ``; the table is loaded here so it is not live across a caller's loop."""
    fr, fi = _load_table(f_ptr, ROWS, COLS)
    # if/else, not an early return: the compiler type-checks the code after a constexpr-taken
    # return too, and F @ x does not typecheck where x @ F is meant (N1 != N2)
    if RIGHT:
        yr, yi = _cmatmul(xr, xi, fr, fi, False, CONJ, PRECISION)
    else:
        yr, yi = _cmatmul(fr, fi, xr, xi, CONJ, False, PRECISION)
    return yr, yi


@triton.jit
def _twiddle(xr, xi, tw_ptr, N1: tl.constexpr, N2: tl.constexpr, CONJ: tl.constexpr):
    """``x * T`` (or ``x * conj(T)``) for the ``(N1, N2)`` twiddles at ``tw_ptr``."""
    wr, wi = _load_table(tw_ptr, N1, N2)
    return cmul(xr, xi, wr, wi, CONJ)


@triton.jit
def _dft(xr, xi, f1_ptr, f2_ptr, tw_ptr, N1: tl.constexpr, N2: tl.constexpr,
         INVERSE: tl.constexpr, PRECISION: tl.constexpr):
    """DFT of size ``N = N1 * N2`` of the ``(N1, N2)`` complex tile ``(xr, xi)``.

    Forward: ``X[n1, n2] = x[n1 * N2 + n2]`` in, ``S[k1, k2] = fft(x)[k1 + N1 * k2]`` out, as
    ``(F1 @ X * T) @ F2``. ``INVERSE``: that layout in, time order out, unnormalized (``N``
    times too large), as ``conj(F1) @ ((S @ conj(F2)) * conj(T))``. Tables: ``F1``
    ``(2, N1, N1)``, ``F2`` ``(2, N2, N2)``, ``T`` ``(2, N1, N2)`` float32 planes.
    """
    if INVERSE:  # x = conj(F1) @ ((S @ conj(F2)) * conj(T))
        xr, xi = _times_table(xr, xi, f2_ptr, N2, N2, True, True, PRECISION)
        xr, xi = _twiddle(xr, xi, tw_ptr, N1, N2, True)
        return _times_table(xr, xi, f1_ptr, N1, N1, False, True, PRECISION)
    xr, xi = _times_table(xr, xi, f1_ptr, N1, N1, False, False, PRECISION)  # S = (F1 @ X * T) @ F2
    xr, xi = _twiddle(xr, xi, tw_ptr, N1, N2, False)
    return _times_table(xr, xi, f2_ptr, N2, N2, True, False, PRECISION)


@triton.jit
def _spectrum(kr, ki, f1_ptr, f2_ptr, tw_ptr, N1: tl.constexpr, N2: tl.constexpr,
              N: tl.constexpr, CORRELATE: tl.constexpr, PRECISION: tl.constexpr):
    """The kernel's spectrum: the forward :func:`_dft` of the ``(N1, N2)`` tile ``(kr, ki)``,
    divided by ``N`` (the whole FFT size: the inverse's normalization, applied once) and
    conjugated when ``CORRELATE``."""
    kr, ki = _dft(kr, ki, f1_ptr, f2_ptr, tw_ptr, N1, N2, False, PRECISION)
    return kr * (1.0 / N), ki * ((-1.0 if CORRELATE else 1.0) / N)


@triton.jit
def _filter(zr, zi, kr, ki, f1_ptr, f2_ptr, tw_ptr, N1: tl.constexpr, N2: tl.constexpr,
            PRECISION: tl.constexpr):
    """``ifft(fft(z) * K)`` of the ``(N1, N2)`` tile ``z`` for a spectrum ``K`` in the layout of
    :func:`_dft` (which carries the normalization): 16 dots."""
    zr, zi = _dft(zr, zi, f1_ptr, f2_ptr, tw_ptr, N1, N2, False, PRECISION)
    zr, zi = cmul(zr, zi, kr, ki, False)
    return _dft(zr, zi, f1_ptr, f2_ptr, tw_ptr, N1, N2, True, PRECISION)


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
    kr, ki = _spectrum(kr, tl.zeros((N1, N2), tl.float32), f1_ptr, f2_ptr, tw_ptr, N1, N2,
                       N1 * N2, CORRELATE, PRECISION)
    mask_r = time < L
    for p in tl.range(p_start, p_end):
        offs, mask_i = pair_rows(p, h, H, L, time, mask_r, B)
        zr, zi = load_pair(x_ptr, offs, H * L, mask_r, mask_i)
        zr, zi = _filter(zr, zi, kr, ki, f1_ptr, f2_ptr, tw_ptr, N1, N2, PRECISION)
        store_pair_plus_skip(y_ptr, x_ptr, d_ptr, h, offs, H * L, zr, zi, mask_r,
                             mask_i, HAS_D)


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
        offs, mask_i = pair_rows(p, h, H, L, time, mask_r, B)
        ur, ui, gr, gi, dd = load_pairs_and_dot(u_ptr, dy_ptr, offs, H * L, mask_r, mask_i, dd, HAS_D)
        ur, ui = _dft(ur, ui, f1_ptr, f2_ptr, tw_ptr, N1, N2, False, PRECISION)
        gr, gi = _dft(gr, gi, f1_ptr, f2_ptr, tw_ptr, N1, N2, False, PRECISION)
        acc_r, acc_i = cmul_add(acc_r, acc_i, gr, gi, ur, ui, True)
    acc_r, acc_i = _dft(acc_r, acc_i, f1_ptr, f2_ptr, tw_ptr, N1, N2, True, PRECISION)
    dk_offs = (g.to(tl.int64) * H + h) * Lk + time
    tl.store(dk_part_ptr + dk_offs, acc_r * (1.0 / (N1 * N2)), mask=time < Lk)
    if HAS_D:
        tl.store(dd_part_ptr + g * H + h, dd)


@triton.jit
def _outer_dft_kernel(x_ptr, s_ptr, dot_ptr, dd_part_ptr, fo_ptr, tw_ptr, B, H, L,
                      NO: tl.constexpr, NI: tl.constexpr, T: tl.constexpr,
                      HAS_DOT: tl.constexpr, PRECISION: tl.constexpr):
    """Outer pass 1: DFTs of size ``NO`` down ``T`` columns. Grid ``(pairs * H, NI // T)``.

    ``S[p, h, k1, n2] = w_N^(k1 n2) * sum_n1 z[n1 * NI + n2] w_NO^(n1 k1)`` for the columns
    ``n2`` of tile ``j = program_id(1)``, as ``(F_NO @ Z) * Tw``, where ``z = x[2p, h] +
    i x[2p + 1, h]`` zero-padded to ``N = NO * NI``. ``x``: ``(B, H, L)``; ``S``:
    ``(pairs, H, 2, N)`` float32 planes; tables ``F_NO`` ``(2, NO, NO)``, ``Tw`` ``(2, NO, NI)``.
    ``HAS_DOT`` also stores this tile's ``sum(x * dot)`` at ``dd_part[j, p * H + h]``.
    """
    pid = tl.program_id(0)
    pair = pid // H
    h = pid % H
    time = tl.arange(0, NO)[:, None] * NI + tl.program_id(1) * T + tl.arange(0, T)[None, :]
    base = (2 * pair.to(tl.int64) * H + h) * L
    mask_r = time < L
    mask_i = second_row_mask(mask_r, pair, B)
    zr, zi = load_pair(x_ptr + base, time, H * L, mask_r, mask_i)
    if HAS_DOT:
        vr, vi = load_pair(dot_ptr + base, time, H * L, mask_r, mask_i)
        dot = tl.sum(tl.sum(zr * vr + zi * vi, axis=1), axis=0)
        tl.store(dd_part_ptr + tl.program_id(1) * tl.num_programs(0) + pid, dot)
    fr, fi = _load_table(fo_ptr, NO, NO)
    zr, zi = _cmatmul(fr, fi, zr, zi, False, False, PRECISION)
    wr, wi = _load_planes(tw_ptr, time, NO * NI)
    zr, zi = cmul(zr, zi, wr, wi, False)
    out = s_ptr + pid.to(tl.int64) * (2 * NO * NI) + time
    tl.store(out, zr)
    tl.store(out + NO * NI, zi)


@triton.jit
def _inner_conv_kernel(s_ptr, sk_ptr, f1_ptr, f2_ptr, tw_ptr, H, n_pairs, pairs_per_program,
                       NO: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr,
                       CORRELATE: tl.constexpr, PRECISION: tl.constexpr):
    """Outer pass 2 of the forward: one-pass filtering of the rows. Grid ``(H, NO, groups)``.

    Row ``k1 = program_id(1)`` of ``S`` (``(pairs, H, 2, N)``, rows of ``NI = N1 * N2``) holds
    a sequence whose DFT of size ``NI`` gives the frequencies ``k1 + NO * k2``: with
    ``K = fft_NI(Sk[0, h, k1]) / N`` (conjugated if ``CORRELATE``) computed once, every pair
    ``p`` of the group becomes ``S[p, h, k1] = ifft_NI(fft_NI(S[p, h, k1]) * K)``, in place.
    """
    h = tl.program_id(0)
    p_start = tl.program_id(2) * pairs_per_program
    p_end = tl.minimum(p_start + pairs_per_program, n_pairs)
    offs = tl.program_id(1) * (N1 * N2) + tl.arange(0, N1)[:, None] * N2 + tl.arange(0, N2)[None, :]
    kr, ki = _load_planes(sk_ptr + h.to(tl.int64) * (2 * NO * N1 * N2), offs, NO * N1 * N2)
    kr, ki = _spectrum(kr, ki, f1_ptr, f2_ptr, tw_ptr, N1, N2, NO * N1 * N2, CORRELATE,
                       PRECISION)
    for p in tl.range(p_start, p_end):
        row = s_ptr + (p * H + h).to(tl.int64) * (2 * NO * N1 * N2) + offs
        zr, zi = _load_planes(row, 0, NO * N1 * N2)
        zr, zi = _filter(zr, zi, kr, ki, f1_ptr, f2_ptr, tw_ptr, N1, N2, PRECISION)
        tl.store(row, zr)
        tl.store(row + NO * N1 * N2, zi)


@triton.jit
def _inner_grad_kernel(su_ptr, sg_ptr, sk_ptr, sdk_ptr, f1_ptr, f2_ptr, tw_ptr,
                       H, n_pairs, pairs_per_program,
                       NO: tl.constexpr, N1: tl.constexpr, N2: tl.constexpr,
                       HAS_DU: tl.constexpr, PRECISION: tl.constexpr):
    """Outer pass 2 of the backward. Grid ``(H, NO, groups)``; rows as in the forward.

    With ``U = fft_NI(Su[p, h, k1])``, ``G = fft_NI(Sg[p, h, k1])``: the group's ``dk``
    spectrum ``Sdk[g, h, k1] = ifft_NI(sum_p G * conj(U)) / N`` (``(groups, H, 2, N)``), and
    with ``HAS_DU`` ``Sg[p, h, k1] = ifft_NI(G * conj(fft_NI(Sk[0, h, k1]))) / N`` in place.
    """
    h = tl.program_id(0)
    g = tl.program_id(2)
    p_start = g * pairs_per_program
    p_end = tl.minimum(p_start + pairs_per_program, n_pairs)
    offs = tl.program_id(1) * (N1 * N2) + tl.arange(0, N1)[:, None] * N2 + tl.arange(0, N2)[None, :]
    if HAS_DU:
        kr, ki = _load_planes(sk_ptr + h.to(tl.int64) * (2 * NO * N1 * N2), offs, NO * N1 * N2)
        kr, ki = _spectrum(kr, ki, f1_ptr, f2_ptr, tw_ptr, N1, N2, NO * N1 * N2, True, PRECISION)
    acc_r = tl.zeros((N1, N2), tl.float32)
    acc_i = tl.zeros((N1, N2), tl.float32)
    for p in tl.range(p_start, p_end):
        start = (p * H + h).to(tl.int64) * (2 * NO * N1 * N2)
        ur, ui = _load_planes(su_ptr + start, offs, NO * N1 * N2)
        gr, gi = _load_planes(sg_ptr + start, offs, NO * N1 * N2)
        ur, ui = _dft(ur, ui, f1_ptr, f2_ptr, tw_ptr, N1, N2, False, PRECISION)
        gr, gi = _dft(gr, gi, f1_ptr, f2_ptr, tw_ptr, N1, N2, False, PRECISION)
        acc_r, acc_i = cmul_add(acc_r, acc_i, gr, gi, ur, ui, True)
        if HAS_DU:
            gr, gi = cmul(gr, gi, kr, ki, False)
            gr, gi = _dft(gr, gi, f1_ptr, f2_ptr, tw_ptr, N1, N2, True, PRECISION)
            tl.store(sg_ptr + start + offs, gr)
            tl.store(sg_ptr + start + NO * N1 * N2 + offs, gi)
    acc_r, acc_i = _dft(acc_r, acc_i, f1_ptr, f2_ptr, tw_ptr, N1, N2, True, PRECISION)
    out = sdk_ptr + (g * H + h).to(tl.int64) * (2 * NO * N1 * N2) + offs
    tl.store(out, acc_r * (1.0 / (NO * N1 * N2)))
    tl.store(out + NO * N1 * N2, acc_i * (1.0 / (NO * N1 * N2)))


@triton.jit
def _outer_idft_kernel(s_ptr, out_ptr, skip_ptr, d_ptr, fo_ptr, tw_ptr, B, H, L,
                       NO: tl.constexpr, NI: tl.constexpr, T: tl.constexpr,
                       HAS_D: tl.constexpr, PRECISION: tl.constexpr):
    """Outer pass 3: inverse DFTs of size ``NO`` down ``T`` columns. Grid ``(pairs * H, NI // T)``.

    ``z[n1 * NI + n2] = sum_k1 w_NO^(-n1 k1) * w_N^(-k1 n2) * S[p, h, k1, n2]`` as
    ``conj(F_NO) @ (S * conj(Tw))`` (``S`` already carries ``1 / N``); ``out[2p, h]`` gets the
    real part and ``out[2p + 1, h]`` the imaginary part (first ``L`` samples, ``out``:
    ``(B, H, L)``), plus ``D[h] * skip``.
    """
    pid = tl.program_id(0)
    pair = pid // H
    h = pid % H
    time = tl.arange(0, NO)[:, None] * NI + tl.program_id(1) * T + tl.arange(0, T)[None, :]
    sr, si = _load_planes(s_ptr + pid.to(tl.int64) * (2 * NO * NI), time, NO * NI)
    wr, wi = _load_planes(tw_ptr, time, NO * NI)
    sr, si = cmul(sr, si, wr, wi, True)
    fr, fi = _load_table(fo_ptr, NO, NO)
    zr, zi = _cmatmul(fr, fi, sr, si, True, False, PRECISION)
    base = (2 * pair.to(tl.int64) * H + h) * L
    mask_r = time < L
    mask_i = second_row_mask(mask_r, pair, B)
    store_pair_plus_skip(out_ptr, skip_ptr, d_ptr, h, base + time, H * L, zr, zi, mask_r, mask_i, HAS_D)


# ----------------------------------------------------------------------------------------------
# host code


@dataclass(frozen=True)
class ButterflyPlan:
    """How one call runs.

    ``n_outer`` x ``n_inner`` is the FFT size (``n_outer == 1``: one pass), ``n1`` x ``n2`` the
    inner DFT blocks; one pass: ``per_program`` batch pairs per program, ``groups`` programs per
    feature; outer path: ``chunks``, the batch ranges ``(b0, b1, per_program, groups)`` whose
    scratch fits ``_SCRATCH_BYTES``. ``precision_u`` / ``precision_k``: the dot precisions of the
    results in ``u``'s dtype (``y``, ``du``) and in ``k``'s (``dk``).
    """

    n_outer: int
    n_inner: int
    n1: int
    n2: int
    per_program: int
    groups: int
    chunks: tuple[tuple[int, int, int, int], ...]
    precision_u: str
    precision_k: str


def _precision(requested: str | None, result_dtype: torch.dtype) -> str:
    """The dot precision for a result of ``result_dtype``: ``requested``, or by default
    ``"ieee"`` for float32 results and ``"tf32"`` for bfloat16/float16 ones."""
    if requested is not None:
        return requested
    return "ieee" if result_dtype == torch.float32 else "tf32"


def _more_accurate(a: str, b: str) -> str:
    """The more accurate of two dot precisions (``"ieee"`` > ``"tf32x3"`` > ``"tf32"``)."""
    return min(a, b, key=("ieee", "tf32x3", "tf32").index)


def _batch_chunks(B: int, H: int, n: int) -> list[tuple[int, int]]:
    """Batch ranges ``[b0, b1)`` (even sizes but the last) whose scratch ``(pairs, H, 2, n)``
    stays within ``_SCRATCH_BYTES``."""
    pairs = max(1, _SCRATCH_BYTES // (H * 2 * n * 4))
    return [(b0, min(B, b0 + 2 * pairs)) for b0 in range(0, B, 2 * pairs)]


@functools.lru_cache(maxsize=1024)  # planned once per call shape (dispatch.clear_plans)
def plan(call: ConvCall, auto: bool) -> ButterflyPlan:
    """The launch plan of ``call``; raises :class:`Unsupported` with the reason if it cannot run."""
    check_call("butterfly", call.device, {"u": call.dtype, "k": call.kernel_dtype, "D": call.skip_dtype},
               _SUPPORTED_DTYPES, auto)
    requested = os.environ.get(PRECISION_ENV, "").strip() or None
    if requested is not None and requested not in PRECISIONS:
        raise Unsupported(f"${PRECISION_ENV}={requested!r} is not one of {PRECISIONS}")
    smem = _smem_per_block(call.device)
    precisions = (_precision(requested, call.dtype), _precision(requested, call.kernel_dtype))
    limit = one_pass_limit(smem)
    if limit == 0:
        raise Unsupported(f"the device has {smem // 1024} KB of shared memory per block, less than the "
                          f"{_smem_need(_MIN_SIZE) // 1024} KB the smallest butterfly kernel needs; "
                          "use backend='fft' or backend='torch'")
    max_outer = _max_outer(smem)
    if smem is not None:  # compiled: stay where kernels do not spill (the interpreter has no registers)
        spill_limit, spill_outer = _spill_free(precisions)
        limit, max_outer = min(limit, spill_limit), min(max_outer, spill_outer)
    sizes = _plan(call.total, limit, max_outer)
    if sizes is None:
        raise Unsupported(f"L + Lk - 1 = {call.total} needs an FFT of size {_fft_size(call.total)}, above "
                          f"the butterfly backend's largest size {max_outer * limit} (outer DFT of at most "
                          f"{max_outer} times its one-pass limit {limit} on this device with "
                          f"{'/'.join(dict.fromkeys(precisions))} dots, the largest that do not spill "
                          "registers); use backend='fft' or backend='torch'")
    n_outer, n_inner = sizes
    B, H = call.batch, call.features
    per_program, groups = split_work((B + 1) // 2, 1, H, call.device)
    chunks = tuple((b0, b1, *split_work((b1 - b0 + 1) // 2, 1, H * n_outer, call.device))
                   for b0, b1 in _batch_chunks(B, H, n_outer * n_inner)) if n_outer > 1 else ()
    return ButterflyPlan(n_outer, n_inner, *monarch_factors(n_inner), per_program, groups, chunks,
                         *precisions)


@functools.lru_cache(maxsize=None)
def _tables(n1: int, n2: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The DFT matrices ``F1`` ``(2, n1, n1)``, ``F2`` ``(2, n2, n2)`` and twiddles ``T``
    ``(2, n1, n2)`` of an FFT of size ``n1 * n2``, on ``device``."""
    return roots(n1, n1, n1, device), roots(n2, n2, n2, device), roots(n1, n2, n1 * n2, device)


def _outer_tables(n_outer: int, n_inner: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """The outer DFT matrix ``(2, NO, NO)`` and twiddles ``(2, NO, NI)`` of size ``NO * NI``."""
    return roots(n_outer, n_outer, n_outer, device), roots(n_outer, n_inner, n_outer * n_inner, device)


def _num_warps(n: int) -> int:
    """Warps of a one-pass or inner kernel whose tiles hold ``n`` elements: 8, but 4 at 1024 and
    2048 (measured with ``ptxas``: with 4 warps fp32 dots spill at 256 and ``tf32x3`` at 512 under
    Triton 3.6)."""
    return 4 if 512 < n < 4096 else 8


def _one_pass_conv(p: ButterflyPlan, x: Tensor, k: Tensor, D: Tensor | None, correlate: bool,
                   precision: str) -> Tensor:
    """``conv(x, k) + D * x``, or ``corr(x, k) + D * x`` when ``correlate`` (the ``du``), on chip."""
    B, H, L = x.shape
    y = torch.empty_like(x)
    _long_conv_fwd_kernel[(H, p.groups)](
        x, k, D, y, *_tables(p.n1, p.n2, x.device), B, H, L, k.shape[-1], p.per_program,
        N1=p.n1, N2=p.n2, HAS_D=D is not None, CORRELATE=correlate, PRECISION=precision,
        num_warps=_num_warps(p.n_inner), num_stages=1,
    )
    return y


def _one_pass_dk(p: ButterflyPlan, u: Tensor, dy: Tensor, Lk: int, with_d: bool) -> tuple[Tensor, Tensor | None]:
    """``dk`` (``(H, Lk)`` float32) and, if ``with_d``, ``dD`` (``(H,)`` float32), on chip."""
    B, H, L = u.shape
    dk_part = torch.empty(p.groups, H, Lk, device=u.device, dtype=torch.float32)
    dd_part = torch.empty(p.groups, H, device=u.device, dtype=torch.float32) if with_d else None
    _long_conv_dk_kernel[(H, p.groups)](
        u, dy, dk_part, dd_part, *_tables(p.n1, p.n2, u.device), B, H, L, Lk, p.per_program,
        N1=p.n1, N2=p.n2, HAS_D=with_d, PRECISION=p.precision_k, num_warps=_num_warps(p.n_inner),
        num_stages=1,
    )
    return dk_part.sum(0), dd_part.sum(0) if with_d else None


def _outer_dft(p: ButterflyPlan, x: Tensor, precision: str,
               dot: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """Outer pass 1 over ``x`` (``(B, H, L)`` real rows): the scratch ``(pairs, H, 2, N)``
    float32, and with ``dot`` (``(B, H, L)``) also ``sum(x * dot)`` over batch and time (``(H,)``)."""
    B, H, L = x.shape
    pairs, cols = (B + 1) // 2, _OUTER_TILE[precision] // p.n_outer
    s = torch.empty(pairs, H, 2, p.n_outer * p.n_inner, device=x.device, dtype=torch.float32)
    dd_part = None
    if dot is not None:
        dd_part = torch.empty(p.n_inner // cols, pairs, H, device=x.device, dtype=torch.float32)
    _outer_dft_kernel[(pairs * H, p.n_inner // cols)](
        x, s, dot, dd_part, *_outer_tables(p.n_outer, p.n_inner, x.device), B, H, L,
        NO=p.n_outer, NI=p.n_inner, T=cols, HAS_DOT=dot is not None, PRECISION=precision,
        num_warps=_OUTER_WARPS, num_stages=1,
    )
    return s, dd_part.sum((0, 1)) if dot is not None else None


def _outer_idft(p: ButterflyPlan, s: Tensor, out: Tensor, precision: str, skip: Tensor | None = None,
                D: Tensor | None = None) -> None:
    """Outer pass 3: ``out`` (``(B, H, L)``) from the scratch ``s`` (``(pairs, H, 2, N)``),
    plus ``D * skip`` when ``D`` is given."""
    B, H, L = out.shape
    cols = _OUTER_TILE[precision] // p.n_outer
    _outer_idft_kernel[(s.shape[0] * H, p.n_inner // cols)](
        s, out, skip, D, *_outer_tables(p.n_outer, p.n_inner, out.device), B, H, L,
        NO=p.n_outer, NI=p.n_inner, T=cols, HAS_D=D is not None, PRECISION=precision,
        num_warps=_OUTER_WARPS, num_stages=1,
    )


def _outer_conv(p: ButterflyPlan, x: Tensor, k: Tensor, D: Tensor | None, correlate: bool,
                precision: str) -> Tensor:
    """:func:`_one_pass_conv` on the outer path: passes 1, 2 and 3, batch chunk by chunk."""
    H = x.shape[1]
    sk, _ = _outer_dft(p, k.unsqueeze(0), precision)
    y = torch.empty_like(x)
    for b0, b1, per_program, groups in p.chunks:
        s, _ = _outer_dft(p, x[b0:b1], precision)
        _inner_conv_kernel[(H, p.n_outer, groups)](
            s, sk, *_tables(p.n1, p.n2, x.device), H, s.shape[0], per_program,
            NO=p.n_outer, N1=p.n1, N2=p.n2, CORRELATE=correlate, PRECISION=precision,
            num_warps=_num_warps(p.n_inner), num_stages=1,
        )
        _outer_idft(p, s, y[b0:b1], precision, skip=x[b0:b1], D=D)
    return y


def _outer_grads(p: ButterflyPlan, u: Tensor, k: Tensor, D: Tensor | None, dy: Tensor,
                 want_du: bool) -> tuple[Tensor | None, Tensor, Tensor | None]:
    """``du`` (``u``'s dtype, if ``want_du``), ``dk`` (``(H, Lk)`` float32) and ``dD`` (``(H,)``
    float32, with ``D``) on the outer path. The transforms of ``u`` and ``dy`` serve both ``du``
    and ``dk``, with the more accurate of their two precisions."""
    H, Lk = u.shape[1], k.shape[-1]
    shared = _more_accurate(p.precision_u, p.precision_k) if want_du else p.precision_k
    sk = _outer_dft(p, k.unsqueeze(0), shared)[0] if want_du else None
    du = torch.empty_like(dy) if want_du else None
    sdk = dD = None
    for b0, b1, per_program, groups in p.chunks:
        su, _ = _outer_dft(p, u[b0:b1], shared)
        sg, dd = _outer_dft(p, dy[b0:b1], shared, dot=u[b0:b1] if D is not None else None)
        part = torch.empty(groups, H, 2, p.n_outer * p.n_inner, device=u.device, dtype=torch.float32)
        _inner_grad_kernel[(H, p.n_outer, groups)](
            su, sg, sk, part, *_tables(p.n1, p.n2, u.device), H, su.shape[0], per_program,
            NO=p.n_outer, N1=p.n1, N2=p.n2, HAS_DU=want_du, PRECISION=shared,
            num_warps=_num_warps(p.n_inner), num_stages=1,
        )
        del su
        part = part.sum(0, keepdim=True) if groups > 1 else part
        sdk = part if sdk is None else sdk.add_(part)
        if D is not None:
            dD = dd if dD is None else dD + dd
        if want_du:
            _outer_idft(p, sg, du[b0:b1], p.precision_u, skip=dy[b0:b1], D=D)
    dk = torch.empty(1, H, Lk, device=u.device, dtype=torch.float32)
    _outer_idft(p, sdk, dk, p.precision_k)
    return du, dk[0], dD


def forward(p: ButterflyPlan, u: Tensor, k: Tensor, D: Tensor | None) -> Tensor:
    """``causal_conv(u, k) + D * u`` (checked by ``long_conv``) in ``u``'s dtype."""
    u, k = u.contiguous(), k.contiguous()
    D = D.contiguous() if D is not None else None
    conv = _outer_conv if p.n_outer > 1 else _one_pass_conv
    return conv(p, u, k, D, False, p.precision_u)


def backward(p: ButterflyPlan, dy: Tensor, u: Tensor, k: Tensor, D: Tensor | None,
             needs: list[bool]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """``(du, dk, dD)`` of :func:`forward`; None where ``needs`` says it is not wanted."""
    u, k, dy = u.contiguous(), k.contiguous(), dy.contiguous()
    D = D.contiguous() if D is not None else None
    want_du, want_dk = needs[0], needs[1] or needs[2]
    du = dk = dD = None
    if want_dk and p.n_outer > 1:
        du, dk, dD = _outer_grads(p, u, k, D, dy, want_du)
    else:
        if want_du:
            conv = _outer_conv if p.n_outer > 1 else _one_pass_conv
            du = conv(p, dy, k, D, True, p.precision_u)
        if want_dk:
            dk, dD = _one_pass_dk(p, u, dy, k.shape[-1], D is not None)
    return du, dk, dD
