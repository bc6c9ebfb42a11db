"""``long_conv``: causal linear convolution of long sequences, with runtime-selected backends.

The op is the custom op ``seqlayers::long_conv`` and its backward ``seqlayers::long_conv_backward``
(see :mod:`seqlayers.ops.autograd`); the backends are ``torch`` (:mod:`.torch_fft`), ``naive``
(:mod:`.naive`), ``fft`` (Triton FFTs, :mod:`.fft`) and ``butterfly`` (Triton Monarch DFT
products, :mod:`.butterfly`). :func:`monarch_long_conv` is the learned-butterfly convolution, an
op of its own (:mod:`.monarch`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor

from .. import autograd
from ..dispatch import Backend, Op, check_name, define_op, register, resolve
from ..policy import ShippedTable
from .call import ConvCall, check_long_conv_args
from .monarch import dft_blocks, monarch_long_conv
from .naive import naive_long_conv
from .torch_fft import next_fast_len, torch_fft_long_conv

__all__ = [
    "long_conv", "naive_long_conv", "torch_fft_long_conv", "next_fast_len", "check_long_conv_args",
    "monarch_long_conv", "dft_blocks", "ConvCall",
]


def long_conv(u: Tensor, k: Tensor, D: Tensor | None = None, *, backend: str = "auto") -> Tensor:
    """Causal linear (not circular) convolution of every feature of ``u`` with its kernel.

    ``y[b, h, t] = sum_{s <= t, t - s < Lk} k[h, t - s] * u[b, h, s] + D[h] * u[b, h, t]``

    Args:
        u: ``(B, H, L)`` input, float32/float64/bfloat16/float16; ``B = 0`` gives an empty result.
        k: ``(H, Lk)`` kernel with ``1 <= Lk <= L``; any real float dtype (float32 is typical).
        D: ``(H,)`` skip term, or None.
        backend: ``"auto"`` (default) or a name from :func:`seqlayers.ops.available_backends`;
            see :mod:`seqlayers.ops.dispatch`. ``"auto"`` follows the measured policy of
            :mod:`seqlayers.ops.policy`, then the priority order ``butterfly`` > ``fft`` > ``torch``.

    Returns:
        ``(B, H, L)`` in ``u``'s dtype; accumulated in float32 (float64 for float64 input).
        Differentiable once in ``u``, ``k`` and ``D``; works under ``torch.compile``,
        ``torch.export`` (symbolic ``L``) and ``torch.func`` transforms.

    Non-finite inputs: the FFT backends (``torch``, ``fft``, ``butterfly``) mix every position
    into every frequency, so a NaN or Inf anywhere in ``u`` or ``k`` makes the whole output row
    NaN, earlier positions included; only ``naive`` keeps causality for non-finite values.

    Example:
        >>> u, k = torch.randn(2, 4, 1000), torch.randn(4, 1000)
        >>> seqlayers.ops.long_conv(u, k, torch.ones(4)).shape
        torch.Size([2, 4, 1000])
    """
    check_long_conv_args(u, k, D)
    check_name("long_conv", backend)
    return LongConvFunction.apply(u, k, D, backend)


@torch.library.custom_op("seqlayers::long_conv", mutates_args=())
@autograd.kernel
def _long_conv(u: Tensor, k: Tensor, D: Tensor | None, backend: str) -> Tensor:
    if u.shape[0] == 0:
        return u.new_empty(u.shape)
    chosen, plan = resolve("long_conv", backend, u, k, D)
    return chosen.module.forward(plan, u, k, D).contiguous()


@_long_conv.register_fake
def _(u, k, D, backend):
    return u.new_empty(u.shape)


@torch.library.custom_op("seqlayers::long_conv_backward", mutates_args=())
@autograd.kernel
def _long_conv_backward(grad: Tensor, u: Tensor, k: Tensor, D: Tensor | None, backend: str,
                        needs: list[bool]) -> tuple[Tensor, Tensor, Tensor]:
    if u.shape[0] == 0:
        grads = (torch.zeros_like(u), torch.zeros_like(k), None if D is None else torch.zeros_like(D))
    else:
        chosen, plan = resolve("long_conv", backend, u, k, D)
        grads = chosen.module.backward(plan, grad, u, k, D, needs)
    return autograd.finish_grads(grads, (u, k, D), needs, u)


@_long_conv_backward.register_fake
def _(grad, u, k, D, backend, needs):
    return autograd.fake_grads((u, k, D), needs, u)


def _fold_features(info, in_dims, tensors):
    """``(u-like..., k, D)`` with the vmapped dim folded into the features: ``(B, V * H, L)``,
    ``(V * H, Lk)``, ``(V * H,)``."""
    *signals, k, D = autograd.batch_first(info, in_dims, tensors)
    V, H = k.shape[:2]
    signals = [s.transpose(0, 1).reshape(s.shape[1], V * H, s.shape[-1]) for s in signals]
    return signals, k.reshape(V * H, -1), None if D is None else D.reshape(V * H)


def _long_conv_vmap(info, in_dims, u, k, D, backend):
    if in_dims[1] is None and in_dims[2] is None:  # one kernel: the vmapped dim joins the batch
        u = u.movedim(in_dims[0], 0)
        y = _long_conv(u.reshape(-1, *u.shape[2:]), k, D, backend)
        return y.view(u.shape), 0
    (u,), k, D = _fold_features(info, in_dims[:3], (u, k, D))
    return _long_conv(u, k, D, backend).view(u.shape[0], info.batch_size, -1, u.shape[-1]), 1


def _long_conv_backward_vmap(info, in_dims, grad, u, k, D, backend, needs):
    (grad, u), k, D = _fold_features(info, in_dims[:4], (grad, u, k, D))
    du, dk, dD = _long_conv_backward(grad, u, k, D, backend, needs)
    V = info.batch_size
    return ((du.view(u.shape[0], V, -1, u.shape[-1]) if needs[0] else du,
             dk.view(V, -1, k.shape[-1]) if needs[1] else dk,
             dD.view(V, -1) if needs[2] else dD),
            (1 if needs[0] else None, 0 if needs[1] else None, 0 if needs[2] else None))


_long_conv.register_vmap(_long_conv_vmap)
_long_conv_backward.register_vmap(_long_conv_backward_vmap)
LongConvFunction = autograd.bind("LongConvFunction", "long_conv", inputs=3)

define_op(Op("long_conv", "SEQLAYERS_CONV_BACKEND", ConvCall.of,
             ShippedTable(Path(__file__).with_name("policy.json"))))
register(Backend("long_conv", "torch", "seqlayers.ops.conv.torch_fft", priority=0,
                 description="torch.fft rfft/irfft, zero-padded to a 2-3-5-7-smooth size >= L + Lk - 1"))
register(Backend("long_conv", "naive", "seqlayers.ops.conv.naive", priority=-100, auto=False,
                 description="direct O(L * Lk) convolution via conv1d; the test oracle"))
register(Backend("long_conv", "fft", "seqlayers.ops.conv.fft", priority=20,
                 description="Triton radix-2 Stockham FFTs, two real rows per complex FFT; one pass up "
                 "to FFT size 2048, a three-pass four-step beyond (to 2^22); CUDA (CPU only via TRITON_INTERPRET=1)"))
register(Backend("long_conv", "butterfly", "seqlayers.ops.conv.butterfly", priority=30,
                 description="Triton, FFTs as dense DFT-matrix products (tl.dot, Monarch N = N1 x N2 up "
                 "to 64 x 64): the whole convolution on chip up to 256-512 on a GPU (the sizes whose "
                 "kernels do not spill registers), an outer pass through global memory up to 16-32x that; CUDA "
                 "(CPU only via TRITON_INTERPRET=1)"))


def __getattr__(name: str):
    if name == "fft_long_conv":  # the torch backend's former name, easily read as the Triton one
        warnings.warn("seqlayers.ops.conv.fft_long_conv is now torch_fft_long_conv", DeprecationWarning,
                      stacklevel=2)
        return torch_fft_long_conv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
