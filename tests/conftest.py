"""Test-wide settings.

``TRITON_INTERPRET`` is read when a ``@triton.jit`` function is defined, so it is set here,
before any module with kernels is imported: Triton kernels run under the CPU interpreter unless
told otherwise. ``TRITON_INTERPRET=0 python -m pytest -m "gpu or triton"`` runs the same tests
compiled on a GPU. ``TRITON_F32_DEFAULT=ieee`` keeps fp32 ``tl.dot`` exact enough to compare.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("TRITON_F32_DEFAULT", "ieee")
os.environ["SEQLAYERS_AUTOTUNE"] = "0"  # the suite never times backends into the user's cache

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _fresh_plans():
    """Tests change backends' limits and registries: no plan outlives a test."""
    from seqlayers.ops import dispatch

    dispatch.clear_plans()
    yield
    dispatch.clear_plans()


