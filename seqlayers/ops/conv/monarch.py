"""Causal long convolution through a two-factor Monarch transform with caller-supplied DFT blocks.

The reference (pure PyTorch) path of the learned butterfly of Fu et al. 2023: an FFT convolution
whose FFT of size ``N = N1 * N2`` is factored into two dense blocks and fixed twiddles. A length-N
sequence is held as the ``(N1, N2)`` tile ``X[n1, n2] = x[n1 * N2 + n2]``; with the exact DFT
blocks ``F_n[j, m] = exp(-2 pi i j m / n)`` and twiddles ``T[k1, n2] = exp(-2 pi i k1 n2 / N)``

    forward:  ``S = (F1 @ X * T) @ F2``,       ``S[k1, k2] = fft(x)[k1 + N1 * k2]``
    inverse:  ``x = G1 @ ((S @ G2) * conj(T)) / N`` with ``G1 = conj(F1)``, ``G2 = conj(F2)``.

The blocks ``(F1, F2)`` and ``(G1, G2)`` are arguments, so a module can hold them as trainable
parameters (:class:`seqlayers.layers.LearnedButterfly`); the twiddles and the ``1 / N`` scale stay
fixed. With the exact blocks of :func:`dft_blocks` the result is the causal linear convolution of
:func:`seqlayers.ops.long_conv` to float32 accuracy (zero padding to ``N >= L + Lk - 1``,
truncation to ``L``: never circular). With other blocks it is the bilinear map the blocks define
(the real part of the inverse transform), no longer a convolution nor causal in general.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from ..._validation import is_int
from .. import autograd
from .call import check_long_conv_args
from ..fourier import monarch_factors, roots_of_unity

__all__ = ["monarch_long_conv", "dft_blocks", "monarch_size", "monarch_factors"]


def monarch_size(n_min: int) -> tuple[int, int]:
    """Block sizes ``(N1, N2)`` of the smallest power-of-two FFT size ``N1 * N2 >= n_min``.

    ``N1 = 2 ** floor(log2(N) / 2)`` and ``N2 = N / N1``, so ``N1 <= N2 <= 2 * N1``
    (1024 = 32 x 32, 2048 = 32 x 64, 32768 = 128 x 256).

    Example:
        >>> monarch_size(2 * 1000 - 1)
        (32, 64)
    """
    if not is_int(n_min) or n_min < 1:
        raise ValueError(f"monarch_size: n_min must be a positive int, got {n_min!r}")
    return monarch_factors(1 << (n_min - 1).bit_length())


def dft_blocks(
    n_fft: int, *, dtype: torch.dtype = torch.complex64, device: torch.device | str | None = None
) -> tuple[int, int, Tensor, Tensor]:
    """The exact forward DFT blocks of a power-of-two FFT size ``n_fft = N1 * N2``.

    Returns ``(N1, N2, F1, F2)`` with ``F1 (N1, N1)`` and ``F2 (N2, N2)`` complex ``dtype``
    (computed in float64, then rounded). The exact inverse blocks are ``F1.conj()`` and
    ``F2.conj()``; see :func:`monarch_long_conv` for where each goes.

    Example:
        >>> n1, n2, f1, f2 = dft_blocks(2048)
        >>> y = monarch_long_conv(u, k, None, (f1, f2), (f1.conj(), f2.conj()))
    """
    if not is_int(n_fft) or n_fft < 1 or n_fft & (n_fft - 1):
        raise ValueError(f"dft_blocks: n_fft must be a power of two >= 1, got {n_fft!r}")
    if not dtype.is_complex:
        raise ValueError(f"dft_blocks: dtype must be complex, got {dtype}")
    n1, n2 = monarch_size(n_fft)
    dft1, dft2 = (roots_of_unity(n, n, n).to(dtype=dtype, device=device) for n in (n1, n2))
    return n1, n2, dft1, dft2


@functools.lru_cache(maxsize=None)
def _twiddles(n1: int, n2: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``T[k1, n2] = exp(-2 pi i k1 n2 / (N1 N2))``, ``(N1, N2)``, cached per size and device."""
    return roots_of_unity(n1, n2, n1 * n2).to(dtype=dtype, device=device)


def _check_blocks(name: str, blocks, device: torch.device) -> tuple[Tensor, Tensor]:
    if not (isinstance(blocks, (tuple, list)) and len(blocks) == 2):
        got = type(blocks).__name__
        raise TypeError(f"monarch_long_conv: {name} must be a pair (block1, block2) of tensors, got a {got}")
    for i, block in enumerate(blocks, 1):
        if not isinstance(block, Tensor) or not block.is_complex():
            got = block.dtype if isinstance(block, Tensor) else type(block).__name__
            raise TypeError(f"monarch_long_conv: {name}[{i - 1}] must be a complex tensor, got {got}")
        if block.dim() != 2 or block.shape[0] != block.shape[1] or block.shape[0] == 0:
            raise ValueError(
                f"monarch_long_conv: {name}[{i - 1}] must be a square block (N{i}, N{i}), "
                f"got {tuple(block.shape)}"
            )
        if block.device != device:
            raise ValueError(f"monarch_long_conv: {name}[{i - 1}] is on {block.device} but u is on {device}")
    return blocks[0], blocks[1]


def _transform(x: Tensor, block1: Tensor, block2: Tensor, twiddles: Tensor) -> Tensor:
    """Forward Monarch transform of the ``(..., N1, N2)`` tiles: ``(block1 @ x * T) @ block2``."""
    return (block1 @ x * twiddles) @ block2


def monarch_long_conv(
    u: Tensor,
    k: Tensor,
    D: Tensor | None,
    fwd_blocks: tuple[Tensor, Tensor],
    inv_blocks: tuple[Tensor, Tensor],
) -> Tensor:
    """Causal convolution as an FFT convolution whose transforms are Monarch products of given blocks.

    ``y = Re(G1 @ ((S_u * S_k) @ G2 * conj(T)) / N)[..., :L] + D u`` with
    ``S_x = (F1 @ X * T) @ F2`` for the zero-padded ``(N1, N2)`` tiles of ``u`` and ``k`` (see the
    module docstring). With the exact blocks (:func:`dft_blocks`) this equals
    :func:`seqlayers.ops.long_conv`; the blocks may be anything of the right shapes (trainable).

    Args:
        u: ``(B, H, L)`` input, real float.
        k: ``(H, Lk)`` kernel, ``1 <= Lk <= L``, real float.
        D: ``(H,)`` skip term, or None.
        fwd_blocks: ``(F1, F2)``, complex ``(N1, N1)`` and ``(N2, N2)``, applied to ``u`` and ``k``.
        inv_blocks: ``(G1, G2)``, complex, same shapes as ``fwd_blocks``.
            ``N = N1 * N2`` must be ``>= L + Lk - 1``; any ``N1, N2 >= 1`` work.

    Returns:
        ``(B, H, L)`` in ``u``'s dtype, computed in float32 / complex64 (float64 / complex128 for
        float64 input). Differentiable in ``u``, ``k``, ``D`` and all four blocks.

    Example:
        >>> u, k = torch.randn(2, 4, 1000), torch.randn(4, 1000)
        >>> n1, n2, f1, f2 = dft_blocks(2048)
        >>> y = monarch_long_conv(u, k, torch.ones(4), (f1, f2), (f1.conj(), f2.conj()))
    """
    check_long_conv_args(u, k, D)
    f1, f2 = _check_blocks("fwd_blocks", fwd_blocks, u.device)
    g1, g2 = _check_blocks("inv_blocks", inv_blocks, u.device)
    n1, n2 = f1.shape[0], f2.shape[0]
    if g1.shape != f1.shape or g2.shape != f2.shape:
        raise ValueError(
            f"monarch_long_conv: inv_blocks must have the shapes of fwd_blocks "
            f"({(n1, n1)}, {(n2, n2)}), got ({tuple(g1.shape)}, {tuple(g2.shape)})"
        )
    L, Lk = u.shape[-1], k.shape[-1]
    n = n1 * n2
    if n < L + Lk - 1:
        raise ValueError(
            f"monarch_long_conv: the FFT size N = N1 * N2 = {n1} * {n2} = {n} must be >= "
            f"L + Lk - 1 = {L + Lk - 1} (L = {L}, Lk = {Lk}) for a linear, not circular, convolution"
        )
    f1, f2, g1, g2 = (b.resolve_conj() for b in (f1, f2, g1, g2))
    return MonarchFunction.apply(u, k, D, f1, f2, g1, g2)


def _dtypes(u: Tensor) -> tuple[torch.dtype, torch.dtype]:
    real = torch.promote_types(u.dtype, torch.float32)
    return real, torch.complex128 if real == torch.float64 else torch.complex64


def _tiles(x: Tensor, n1: int, n2: int, real: torch.dtype, cplx: torch.dtype) -> Tensor:
    """``x (..., <= N)`` zero-padded to ``N = n1 * n2`` and held as complex ``(..., n1, n2)`` tiles."""
    x = torch.nn.functional.pad(x.to(real), (0, n1 * n2 - x.shape[-1]))
    return x.reshape(*x.shape[:-1], n1, n2).to(cplx)


def _monarch_reference(u: Tensor, k: Tensor, D: Tensor | None, f1: Tensor, f2: Tensor, g1: Tensor,
                       g2: Tensor) -> Tensor:
    """The computation of :func:`monarch_long_conv` on checked arguments, in plain PyTorch."""
    n1, n2 = f1.shape[0], f2.shape[0]
    n, L = n1 * n2, u.shape[-1]
    real, cplx = _dtypes(u)
    f1, f2, g1, g2 = (b.to(cplx) for b in (f1, f2, g1, g2))
    twiddles = _twiddles(n1, n2, cplx, u.device)
    spectrum = (_transform(_tiles(u, n1, n2, real, cplx), f1, f2, twiddles)
                * _transform(_tiles(k, n1, n2, real, cplx), f1, f2, twiddles))
    y = (g1 @ (spectrum @ g2 * twiddles.conj_physical())).real / n
    y = y.reshape(*u.shape[:-1], n)[..., :L]
    if D is not None:
        y = y + D.to(real).unsqueeze(-1) * u.to(real)
    return y.to(u.dtype)


def _sum_to(x: Tensor, shape: torch.Size) -> Tensor:
    """``x`` summed over its leading dims down to ``shape`` (the gradient of a broadcast)."""
    return x.reshape(-1, *shape).sum(0) if x.shape != shape else x


def _matmul_grads(grad: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of ``a @ b`` (PyTorch's complex convention), each summed to its operand's shape."""
    return (_sum_to(grad @ b.mH, a.shape), _sum_to(a.mH @ grad, b.shape))


def _monarch_grads(grad: Tensor, u: Tensor, k: Tensor, D: Tensor | None, f1: Tensor, f2: Tensor, g1: Tensor,
                   g2: Tensor) -> list[Tensor | None]:
    """Gradients of :func:`_monarch_reference` wrt ``(u, k, D, f1, f2, g1, g2)``, written out.

    Forward: ``S_x = (F1 @ X * T) @ F2``, ``P = S_u * S_k``, ``Z = G1 @ ((P @ G2) * conj(T))``,
    ``y = Re(Z) / N`` cropped, plus ``D u``. Backward, for a complex product ``a @ b`` with
    upstream ``g``: ``g @ b^H`` and ``a^H @ g``; for ``a * b``: ``g * conj(b)``.
    """
    n1, n2 = f1.shape[0], f2.shape[0]
    n, L, Lk = n1 * n2, u.shape[-1], k.shape[-1]
    real, cplx = _dtypes(u)
    blocks = [b.to(cplx) for b in (f1, f2, g1, g2)]
    f1c, f2c, g1c, g2c = blocks
    tw = _twiddles(n1, n2, cplx, u.device)
    x_u, x_k = _tiles(u, n1, n2, real, cplx), _tiles(k, n1, n2, real, cplx)
    v_u, v_k = f1c @ x_u, f1c @ x_k
    w_u, w_k = v_u * tw, v_k * tw
    s_u, s_k = w_u @ f2c, w_k @ f2c
    spectrum = s_u * s_k
    r = spectrum @ g2c
    q = r * tw.conj_physical()
    g_z = _tiles(grad.to(real) / n, n1, n2, real, cplx)  # Re() passes a real gradient through
    grad_g1, grad_q = _matmul_grads(g_z, g1c, q)
    grad_p, grad_g2 = _matmul_grads(grad_q * tw, spectrum, g2c)
    grads_f1, grads_f2, grads_x = [], [], []
    for s_x, w_x, v_x, x, other in ((s_u, w_u, v_u, x_u, s_k), (s_k, w_k, v_k, x_k, s_u)):
        grad_s = _sum_to(grad_p * other.conj_physical(), s_x.shape)
        grad_w, grad_f2 = _matmul_grads(grad_s, w_x, f2c)
        grad_f1, grad_x = _matmul_grads(grad_w * tw.conj_physical(), f1c, x)
        grads_f1.append(grad_f1)
        grads_f2.append(grad_f2)
        grads_x.append(grad_x.real.reshape(*grad_x.shape[:-2], n))
    grad_u = grads_x[0][..., :L]
    grad_d = None
    if D is not None:
        grad_u = grad_u + D.to(real).unsqueeze(-1) * grad.to(real)
        grad_d = torch.einsum("bhl,bhl->h", u.to(real), grad.to(real))
    block_grads = [grads_f1[0] + grads_f1[1], grads_f2[0] + grads_f2[1], grad_g1, grad_g2]
    return [grad_u, grads_x[1][..., :Lk], grad_d, *block_grads]


@torch.library.custom_op("seqlayers::monarch_long_conv", mutates_args=())
@autograd.kernel
def _monarch(u: Tensor, k: Tensor, D: Tensor | None, f1: Tensor, f2: Tensor, g1: Tensor, g2: Tensor) -> Tensor:
    return _monarch_reference(u, k, D, f1, f2, g1, g2).contiguous()


@_monarch.register_fake
def _(u, k, D, f1, f2, g1, g2):
    return u.new_empty(u.shape)


@torch.library.custom_op("seqlayers::monarch_long_conv_backward", mutates_args=())
@autograd.kernel
def _monarch_backward(grad: Tensor, u: Tensor, k: Tensor, D: Tensor | None, f1: Tensor, f2: Tensor,
                      g1: Tensor, g2: Tensor, needs: list[bool]) -> tuple[Tensor, Tensor, Tensor, Tensor,
                                                                      Tensor, Tensor, Tensor]:
    inputs = (u, k, D, f1, f2, g1, g2)
    return autograd.finish_grads(_monarch_grads(grad, *inputs), inputs, needs, u)


@_monarch_backward.register_fake
def _(grad, u, k, D, f1, f2, g1, g2, needs):
    return autograd.fake_grads((u, k, D, f1, f2, g1, g2), needs, u)


_monarch.register_vmap(autograd.vmap_by_loop(_monarch))
_monarch_backward.register_vmap(autograd.vmap_by_loop(_monarch_backward))
MonarchFunction = autograd.bind("MonarchFunction", "monarch_long_conv", inputs=7)
