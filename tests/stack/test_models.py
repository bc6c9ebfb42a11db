"""SequenceModel with ``lengths`` under torch.compile and torch.export: no data-dependent guard."""

from __future__ import annotations

import pytest
import torch

import seqlayers

from ..helpers import rel_rms


@pytest.mark.parametrize("pool", ["mean", "max", "last", "none"])
def test_lengths_compile_and_export(pool):
    torch.manual_seed(0)
    model = seqlayers.SequenceModel(3, 4, 8, 2, "s4d", pool=pool,
                                    layer_kwargs={"d_state": 8, "bidirectional": True}).eval()
    x, lengths = torch.randn(2, 20, 3), torch.tensor([20, 7])
    assert torch._dynamo.explain(model)(x, lengths).graph_break_count == 0
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    assert rel_rms(compiled(x, lengths), model(x, lengths)) <= 1e-6
    program = torch.export.export(model, (x, lengths),
                                  dynamic_shapes={"x": {1: torch.export.Dim("L", max=100)}, "lengths": None})
    for L, valid in ((33, [5, 33]), (2, [1, 2])):
        x2, l2 = torch.randn(2, L, 3), torch.tensor(valid)
        assert rel_rms(program.module()(x2, l2), model(x2, l2)) <= 1e-6
    with pytest.raises(RuntimeError, match=r"lengths must lie in \[1, L\]"):
        compiled(x, torch.tensor([0, 5]))  # checked as the compiled graph runs
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, L = 20\], got min 0"):
        model(x, torch.tensor([0, 5]))  # eager: the full message
