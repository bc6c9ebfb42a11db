"""Shared test helpers (importable as ``tests.helpers`` or ``helpers``)."""

import torch

# Tolerances per dtype, stated once: relative RMS error against a float64/float32 oracle.
REL_RMS_TOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.bfloat16: 2e-2, torch.float16: 4e-3}


def rel_rms(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Relative RMS error ``||a - e|| / ||e||`` computed in float64 (complex128 for complex)."""
    wide = torch.complex128 if actual.is_complex() or expected.is_complex() else torch.float64
    a, e = actual.detach().to(wide), expected.detach().to(wide)
    return float((a - e).norm() / e.norm().clamp_min(1e-30))
