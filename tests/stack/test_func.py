"""torch.func (vmap, grad, per-sample gradients), activation checkpointing and EMA over every layer."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, grad, vmap
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.checkpoint import checkpoint

import seqlayers

from ..helpers import rel_rms
from .layers import CASES, H

TOL = 1e-5
CASES_BI = dict(CASES, s4d_bidirectional=lambda: seqlayers.S4D(H, d_state=8, bidirectional=True))


def _loss(layer, params, x):
    return functional_call(layer, params, (x,)).square().sum()


@pytest.mark.parametrize("case", sorted(CASES_BI))
def test_vmap_grad_and_per_sample_grads(case):
    layer = CASES_BI[case]().eval()
    params = {name: p.detach() for name, p in layer.named_parameters()}
    xs = torch.randn(3, 2, 21, H)
    ys = vmap(lambda x: functional_call(layer, params, (x,)))(xs)
    assert rel_rms(ys, torch.stack([layer(x) for x in xs])) <= TOL
    g = grad(lambda p, x: _loss(layer, p, x))(params, xs[0])
    layer.zero_grad()
    _loss(layer, dict(layer.named_parameters()), xs[0]).backward()
    for name, p in layer.named_parameters():
        assert rel_rms(g[name], p.grad) <= TOL, name
    per_sample = vmap(grad(lambda p, x: _loss(layer, p, x)), in_dims=(None, 0))(params, xs)
    for i in range(len(xs)):
        g_i = grad(lambda p, x: _loss(layer, p, x))(params, xs[i])
        for name in params:
            assert rel_rms(per_sample[name][i], g_i[name]) <= TOL, (i, name)


@pytest.mark.parametrize("case", sorted(CASES))
def test_activation_checkpointing(case):
    layer = CASES[case]().eval()
    x = torch.randn(2, 30, H, requires_grad=True)
    plain = torch.autograd.grad(layer(x).square().sum(), [x, *layer.parameters()])
    recomputed = torch.autograd.grad(checkpoint(layer, x, use_reentrant=False).square().sum(),
                                     [x, *layer.parameters()])
    for a, b in zip(recomputed, plain):
        assert rel_rms(a, b) <= TOL


def test_ema_of_a_model():
    torch.manual_seed(0)
    model = seqlayers.SequenceModel(3, 4, 8, 2, "s4d", layer_kwargs={"d_state": 8})
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    ema.update_parameters(model)  # the first update copies
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update_parameters(model)
    for name, p in ema.module.named_parameters():
        torch.testing.assert_close(p, start[name] + 0.1)  # 0.9 * old + 0.1 * (old + 1)
    x = torch.randn(2, 20, 3)
    assert ema(x).shape == (2, 4)
