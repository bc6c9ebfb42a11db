"""Pure, differentiable functions with runtime-selected backends.

* :func:`long_conv`: causal linear convolution ``(B, H, L) * (H, Lk)``.
* :func:`linear_scan`: ``h_t = a_t * h_{t-1} + b_t``.
* :func:`vandermonde`: ``K[..., l] = 2 Re(sum_n v_n z_n^l)``, the kernel of a diagonal SSM.

Backends are listed by :func:`available_backends` and chosen per call (``backend=``), per block
(:func:`use_backend`) or per process (environment variables); see :mod:`seqlayers.ops.dispatch`.
``"auto"`` follows a measured policy (:mod:`seqlayers.ops.policy`): an opt-in one-time timing
per device, dtype and size bucket (:func:`set_autotune`, ``SEQLAYERS_AUTOTUNE=1``), else a table
shipped with the package, else a static priority order. Every op is a ``torch.library`` custom
op (see :mod:`seqlayers.ops.autograd`): it composes with ``torch.compile``, ``torch.export`` and
``torch.func``.
"""

from ..errors import BackendUnavailableError
from .conv import long_conv
from .dispatch import available_backends, unavailable_backends, use_backend
from .policy import autotune_enabled, set_autotune
from .scan import linear_scan
from .vandermonde import vandermonde

__all__ = [
    "long_conv",
    "linear_scan",
    "vandermonde",
    "available_backends",
    "unavailable_backends",
    "use_backend",
    "set_autotune",
    "autotune_enabled",
    "BackendUnavailableError",
]
