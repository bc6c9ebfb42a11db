"""How every op of the package is put together from ``torch.library`` custom ops.

Each op is two custom ops, ``seqlayers::<op>`` and ``seqlayers::<op>_backward``, each with a
fake (meta) implementation that handles symbolic shapes and a vmap rule, bound into a
differentiable function by an autograd Function with ``setup_context`` (:func:`bind`). Custom
ops are opaque to ``torch.compile`` and ``torch.export``: they trace the fake implementations,
and the real ones (backend selection, planning, kernels) run only on real tensors. The Function
form rather than ``register_autograd`` is what ``torch.func.grad`` and ``vmap`` accept.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import torch
from torch import Tensor

_CONJ_KEYS = (torch._C.DispatchKey.Conjugate, torch._C.DispatchKey.Negative)


def kernel(fn: Callable) -> Callable:
    """Mark ``fn`` as the real implementation of a custom op; it runs with the Conjugate and
    Negative dispatch keys enabled.

    Under ``torch.compile`` (torch 2.13) a custom op's implementation is entered with those keys
    in the thread-local exclude set, so a lazily conjugated view (``x.conj()``) would be read as
    if it were not conjugated: a silently wrong complex product. Re-enabling them makes the
    implementations compute in compiled code what they compute in eager mode.
    """

    @functools.wraps(fn)
    def run(*args, **kwargs):
        excluded = torch._C._dispatch_tls_local_exclude_set()
        if not any(excluded.has(key) for key in _CONJ_KEYS):
            return fn(*args, **kwargs)
        for key in _CONJ_KEYS:
            excluded = excluded.remove(key)
        with torch._C._ForceDispatchKeyGuard(torch._C._dispatch_tls_local_include_set(), excluded):
            return fn(*args, **kwargs)

    return run


def bind(name: str, op: str, inputs: int, save_output: bool = False) -> type:
    """The autograd Function of the custom ops ``seqlayers::<op>`` and ``seqlayers::<op>_backward``.

    ``apply(*tensors, *options)`` runs the forward op with the same arguments; the backward runs
    ``<op>_backward(grad, *tensors, [output], *options, needs)``, which returns one gradient per
    tensor input (placeholders where ``needs`` is False). ``inputs``: how many leading arguments
    are tensors (or None, for optional ones); ``save_output``: the backward also needs the output
    (``linear_scan``'s states). ``name``: the class name.
    """
    forward_op = getattr(torch.ops.seqlayers, op).default
    backward_op = getattr(torch.ops.seqlayers, f"{op}_backward").default

    def forward(*args):
        return forward_op(*args)

    def setup_context(ctx, args, output):
        ctx.save_for_backward(*args[:inputs], *((output,) if save_output else ()))
        ctx.options = args[inputs:]

    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        needs = list(ctx.needs_input_grad[:inputs])
        grads = backward_op(grad.contiguous(), *ctx.saved_tensors, *ctx.options, needs)
        return (*(g if need else None for g, need in zip(grads, needs)), *(None,) * len(ctx.options))

    body = {"generate_vmap_rule": True, "forward": staticmethod(forward),
            "setup_context": staticmethod(setup_context), "backward": staticmethod(backward)}
    return type(name, (torch.autograd.Function,), body)


def finish_grads(grads: Sequence[Tensor | None], inputs: Sequence[Tensor | None], needs: Sequence[bool],
                 like: Tensor) -> tuple[Tensor, ...]:
    """The backward op's outputs: each needed gradient contiguous in its input's dtype, an empty
    ``like``-typed placeholder for the others (custom ops cannot return None)."""
    return tuple(g.to(t.dtype).contiguous() if need else like.new_empty(0)
                 for g, t, need in zip(grads, inputs, needs))


def fake_grads(inputs: Sequence[Tensor | None], needs: Sequence[bool], like: Tensor) -> tuple[Tensor, ...]:
    """What :func:`finish_grads` returns, for the fake implementations."""
    return tuple(t.new_empty(t.shape) if need else like.new_empty(0) for t, need in zip(inputs, needs))


def batch_first(info, in_dims: Sequence[int | None], tensors: Sequence[Tensor | None]) -> list[Tensor | None]:
    """For vmap rules: each tensor with its vmapped dim first, expanded to the batch where it has
    none (None stays None)."""
    out = []
    for t, dim in zip(tensors, in_dims):
        if t is not None:
            t = t.movedim(dim, 0) if dim is not None else t.expand(info.batch_size, *t.shape)
        out.append(t)
    return out


def vmap_by_loop(op: Callable) -> Callable:
    """A vmap rule that runs ``op`` once per entry of the vmapped dim and stacks the results: for
    ops whose inputs cannot be folded into a batch dim (shared trainable blocks, say)."""

    def rule(info, in_dims, *args):
        outs = [op(*(a.select(d, i) if isinstance(a, Tensor) and d is not None else a
                     for a, d in zip(args, in_dims)))
                for i in range(info.batch_size)]
        if isinstance(outs[0], tuple):
            return tuple(torch.stack(o) for o in zip(*outs)), (0,) * len(outs[0])
        return torch.stack(outs), 0

    return rule
