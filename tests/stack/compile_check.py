"""Compile, export and trace one layer in this (fresh) process; print the findings as JSON.

``python -m tests.stack.compile_check <case> <backend>...`` (cases in ``tests/stack/layers.py``).
For the layer, with Inductor: ``torch.compile(fullgraph=True)`` forward and backward against eager
under each backend (``use_backend``); ``torch._dynamo.explain`` graph breaks; ``dynamic=True``
over three lengths (how many graphs it compiles); ``torch.export`` with a dynamic length, run at
three lengths against eager. Errors are reported, not raised, so the test can say which step failed.
"""

from __future__ import annotations

import json
import sys
import traceback

import torch
import torch._dynamo
from torch._dynamo.testing import CompileCounterWithBackend

import seqlayers

from .layers import CASES, H, L_MAX

LENGTHS = (20, 37, 64)  # prime and odd lengths, and the longest the LongConv kernels hold


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))


def forward_backward(layer, x):
    layer.zero_grad(set_to_none=True)
    y = layer(x)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return [y.detach()] + [p.grad.clone() for p in layer.parameters() if p.grad is not None]


def worst(got, want) -> float:
    assert len(got) == len(want), (len(got), len(want))
    return max(rel(g, w) for g, w in zip(got, want))


def graphs(counter) -> int:
    """Graphs compiled with at least one op (Dynamo also hands over empty ones)."""
    return sum(any(n.op == "call_function" for n in g.graph.nodes) for g in counter.graphs)


def step(report, name, fn):
    try:
        report[name] = fn()
    except Exception as exc:  # the test prints which step failed and why
        report[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-3000:]}


def check(case: str, backends: list[str]) -> dict:
    torch.manual_seed(0)
    layer = CASES[case]().eval()  # eval: no dropout, deterministic
    x = torch.randn(2, LENGTHS[0], H)
    report = {}

    def fullgraph():
        compiled = torch.compile(layer, fullgraph=True)
        out = {}
        for backend in backends:
            with seqlayers.ops.use_backend(backend):
                out[backend] = worst(forward_backward(compiled, x), forward_backward(layer, x))
        return out

    def explain():
        return torch._dynamo.explain(layer)(x).graph_break_count

    def dynamic():
        torch._dynamo.reset()
        counter = CompileCounterWithBackend("inductor")
        compiled = torch.compile(layer, fullgraph=True, dynamic=True, backend=counter)
        errors = []
        for n in LENGTHS:
            xn = torch.randn(2, n, H)
            errors.append(worst(forward_backward(compiled, xn), forward_backward(layer, xn)))
        return {"graphs": graphs(counter), "error": max(errors)}

    def export():
        length = torch.export.Dim("L", min=2, max=L_MAX)
        program = torch.export.export(layer, (x,), dynamic_shapes={"x": {1: length}})
        out = {}
        for backend in backends:
            with seqlayers.ops.use_backend(backend):
                out[backend] = max(rel(program.module()(xn := torch.randn(2, n, H)), layer(xn)) for n in LENGTHS)
        return out

    for name, fn in (("fullgraph", fullgraph), ("explain", explain), ("dynamic", dynamic), ("export", export)):
        step(report, name, fn)
    return report


if __name__ == "__main__":
    print(json.dumps(check(sys.argv[1], sys.argv[2:])))
