"""The LongConv settings of the LRA configs start with live kernels, as the reference code does.

With the ``randn * 0.002`` initialization and no smoothing, the soft threshold lambda leaves a
fraction ``2 * (1 - Phi(lambda / 0.002))`` of the taps non-zero: 61.7% at 0.001, 31.7% at 0.002,
13.4% at 0.003, 4.6% at 0.004. Seven-tap smoothing divides the spread of the taps by sqrt(7) first
and would leave 0.8% / 0.007% / 0% at 0.002 / 0.003 / 0.004, so the presets turn it off.
"""

import math
from pathlib import Path

import pytest
import torch

from seqlayers.kernels import LongConvKernel

yaml = pytest.importorskip("yaml", reason="the LRA configs need PyYAML: pip install -e '.[lra]'")

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "lra" / "configs").glob("*.yaml"))


def _longconv_kwargs(path):
    return yaml.safe_load(path.read_text())["models"]["longconv"]["model"]["layer_kwargs"]


def _live_fraction(kwargs, H=64, L=2048):
    torch.manual_seed(0)
    keep = {k: v for k, v in kwargs.items() if k in ("channels", "squash_lambda", "smooth")}
    gen = LongConvKernel(H, L, **keep).eval()
    return (gen(L) != 0).float().mean().item()


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_presets_start_with_live_taps(path):
    kwargs = _longconv_kwargs(path)
    assert kwargs["channels"] == 2 and kwargs["smooth"] == 0  # as the reference configs
    lam = kwargs["squash_lambda"]
    expected = math.erfc(lam / 0.002 / math.sqrt(2))  # P(|N(0, 0.002^2)| > lam)
    live = _live_fraction(kwargs)
    assert live == pytest.approx(expected, abs=0.01)
    assert live >= 0.04


@pytest.mark.parametrize("lam, expected", [(0.002, 0.317), (0.003, 0.134), (0.004, 0.0455)])
def test_stated_fractions(lam, expected):
    assert _live_fraction({"channels": 2, "squash_lambda": lam, "smooth": 0}) == pytest.approx(expected, abs=0.01)


def test_smoothing_would_kill_the_kernel():
    """The same thresholds after the kernel's default 7-tap smoothing: almost nothing is left."""
    assert _live_fraction({"squash_lambda": 0.002, "smooth": 7}) < 0.02
    assert _live_fraction({"squash_lambda": 0.004, "smooth": 7}) < 1e-4
