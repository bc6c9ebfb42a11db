"""Perturb-then-diagonalize (PTD, Yu et al. 2024) and the S5 block-diagonal initialization.

A non-normal matrix such as HiPPO-LegS has a catastrophically ill-conditioned eigenvector matrix,
so it cannot be diagonalized directly. PTD looks for a small perturbation ``E`` such that
``A + E = V diag(Lambda) V^-1`` with a well-conditioned ``V``, and returns that exact
eigendecomposition.

What "small" means here follows the perturbations released with the paper: they are nearly rank
one (``||E||_F`` within about 1.1x of ``||E||_2``) and leave the spectrum stable. So ``E`` is a
real (for a real ``A``) matrix of rank ``PTD_RANK = 2``, ``E = U W^T`` with ``U, W (N, 2)``,
rescaled to ``||E||_F = eps ||A||_2``; hence ``||E||_2 <= eps ||A||_2 <= sqrt(2) ||E||_2``.
A real ``E`` keeps the spectrum closed under conjugation, which the conjugate-symmetric S5
needs. (A perturbation that fills the ball ``||E||_2 <= eps ||A||_2`` has ``||E||_F`` up to
``sqrt(N)`` times larger and pushes eigenvalues into the right half-plane.)

``U, W`` are found by Adam (cosine step decay) on a smooth surrogate of ``log cond_2(V)`` of the
unit-column eigenvector matrix: ``log ||V||_p + log ||V^-1||_p`` in the Schatten ``p``-norm with
``p = 32`` (``p -> inf`` gives ``log cond_2``, whose gradient only sees the two extreme singular
vectors), plus a barrier ``sum relu(Re(lambda) + 0.05)^2`` against eigenvalues near the imaginary
axis and, when conjugate pairs are requested, a pull ``sum |lambda_2k - lambda_2k+1|`` between
neighbouring real eigenvalues (so that they meet and leave the real axis as a pair). The
derivative goes through ``torch.linalg.eig`` in complex128. The iterate with the smallest true
``cond_2(V)`` among the admissible ones (every ``Re(lambda) < 0``; no real eigenvalue when pairs
are requested) is kept. Nothing is precomputed; results are cached in memory.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from .hippo import hippo_legs, hippo_legs_nplr, legs_normal_diagonal

S5_INITS = ("ptd", "legs", "lin", "inv")
PTD_ITERS = 300
PTD_LR = 0.2  # Adam step, relative to the mean absolute entry of each factor
PTD_RANK = 2
PTD_RESTARTS = 4  # starts for N >= PTD_RESTARTS_FROM (non-convex: N = 64, single starts end between
PTD_RESTARTS_FROM = 32  # cond 7.9 and 14); below that one start (N = 2..16: seeds agree to 1%)
PTD_OBJECTIVES = ("schatten", "cond2")
PTD_SCHATTEN_P = 32.0  # order of the Schatten norms in the surrogate of log cond_2
PTD_MARGIN = 0.05  # the barrier acts on eigenvalues with Re > -PTD_MARGIN
PTD_PAIR_WEIGHT = 10.0  # weight of the pull between real eigenvalues (pairs=True)
START_NOISE = 0.03  # relative size of the random part of a start given a direction
PTD_EXTRA_STARTS = 8  # further seeds tried when no start gives an admissible iterate
# Relative size ||E||_2 / ||A||_2 of the perturbations released with Yu et al. 2024, per N.
RELEASED_EPS = {8: 0.098, 16: 0.051, 32: 0.038, 64: 0.034, 128: 0.032}


def ptd_eps(N: int) -> float:
    """Default relative size of the PTD perturbation for HiPPO-LegS of size ``N``.

    The released values at N = 8, 16, 32, 64, 128; between them linear in ``log2 N``; below 8
    the value of 8 (0.098) and above 128 the value of 128 (0.032).

    Example:
        >>> ptd_eps(64), ptd_eps(2), ptd_eps(256)
        (0.034, 0.098, 0.032)
    """
    sizes = sorted(RELEASED_EPS)
    N = min(max(N, sizes[0]), sizes[-1])
    lo = max(n for n in sizes if n <= N)
    hi = min(n for n in sizes if n >= N)
    if lo == hi:
        return RELEASED_EPS[lo]
    t = (math.log2(N) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
    return round(RELEASED_EPS[lo] + t * (RELEASED_EPS[hi] - RELEASED_EPS[lo]), 4)


def _unit_columns(V: Tensor) -> Tensor:
    return V / torch.linalg.vector_norm(V, dim=0)


def _log_condition_objective(V: Tensor, objective: str) -> tuple[Tensor, float]:
    """The objective (``"schatten"``: ``log ||V||_p ||V^-1||_p`` with ``p = PTD_SCHATTEN_P``;
    ``"cond2"``: ``log cond_2(V)`` itself) and the true ``log cond_2(V)``."""
    log_s = torch.log(torch.linalg.svdvals(V))
    log_cond = log_s[0] - log_s[-1]
    if objective == "cond2":
        return log_cond, log_cond.item()
    p = PTD_SCHATTEN_P
    return (torch.logsumexp(p * log_s, 0) + torch.logsumexp(-p * log_s, 0)) / p, log_cond.item()


def _real_mask(Lambda: Tensor, scale: float) -> Tensor:
    """Eigenvalues on the real axis (LAPACK returns them with an exactly zero imaginary part)."""
    return Lambda.imag.abs() <= 1e-12 * scale


def _penalties(Lambda: Tensor, pairs: bool, scale: float) -> Tensor:
    """Barrier against ``Re(lambda) > -PTD_MARGIN`` plus, with ``pairs``, the pull between real
    eigenvalues sorted and taken two by two."""
    penalty = torch.relu(Lambda.real + PTD_MARGIN).pow(2).sum()
    real = _real_mask(Lambda, scale)
    if pairs and int(real.sum()) >= 2:
        r = torch.sort(Lambda.real[real]).values
        n = (r.shape[0] // 2) * 2
        penalty = penalty + PTD_PAIR_WEIGHT * (r[1:n:2] - r[0:n:2]).abs().sum()
    return penalty


def _admissible(Lambda: Tensor, pairs: bool, scale: float) -> bool:
    if not bool((Lambda.real < 0).all()):
        return False
    return not (pairs and bool(_real_mask(Lambda, scale).any()))


def _optimize(
    A: Tensor, radius: float, gen: torch.Generator, iters: int, objective: str, pairs: bool,
    start: Tensor | None = None,
) -> tuple[float, Tensor | None]:
    """Adam on the factors ``U, W (N, PTD_RANK)`` of ``E = radius * U W^T / ||U W^T||_F``.

    Returns the admissible iterate with the smallest true ``log cond_2`` as ``(log cond, E)``,
    or ``(inf, None)`` when no iterate is admissible.

    Adam is written out (cosine step decay) rather than taken from ``torch.optim``, whose first
    use costs seconds of imports at layer construction.
    """
    N, is_complex = A.shape[0], A.is_complex()
    scale = torch.linalg.matrix_norm(A, 2).item()
    shape = (N, min(PTD_RANK, N)) + ((2,) if is_complex else ())  # complex factors as real pairs
    factors = [torch.randn(shape, dtype=torch.float64, generator=gen) for _ in range(2)]
    if start is not None:  # first factor column along the start direction, the rest small
        for f in factors:
            f.mul_(START_NOISE / math.sqrt(N))
            f[:, 0] += start if not is_complex else torch.view_as_real(start.to(torch.complex128))
    factors = [f.requires_grad_(True) for f in factors]
    as_matrix = torch.view_as_complex if is_complex else (lambda f: f)
    moments = [(torch.zeros_like(f), torch.zeros_like(f)) for f in factors]
    beta1, beta2 = 0.9, 0.999
    best_cond, best_E = math.inf, None
    for it in range(1, iters + 1):
        UW = as_matrix(factors[0]) @ as_matrix(factors[1]).T
        E = UW * (radius / torch.linalg.matrix_norm(UW))
        Lambda, V = torch.linalg.eig(A + E)
        surrogate, log_cond = _log_condition_objective(_unit_columns(V), objective)
        if log_cond < best_cond and _admissible(Lambda, pairs, scale):
            best_cond, best_E = log_cond, E.detach().clone()
        loss = surrogate + _penalties(Lambda, pairs, scale)
        grads = torch.autograd.grad(loss, factors)
        if not all(torch.isfinite(g).all() for g in grads):  # (nearly) repeated eigenvalues
            break
        step = PTD_LR * 0.5 * (1 + math.cos(math.pi * (it - 1) / iters))
        with torch.no_grad():
            for f, g, (m, v) in zip(factors, grads, moments):
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).add_(g * g, alpha=1 - beta2)
                update = (m / (1 - beta1**it)) / ((v / (1 - beta2**it)).sqrt() + 1e-300)
                f.sub_(step * f.abs().mean() * update)
    return best_cond, best_E


@functools.lru_cache(maxsize=128)
def _ptd_cached(
    a_bytes: bytes, N: int, is_complex: bool, eps: float, seed: int, iters: int, restarts: int,
    objective: str, pairs: bool, start_bytes: bytes | None,
) -> tuple[Tensor, Tensor]:
    dtype = torch.complex128 if is_complex else torch.float64
    A = torch.frombuffer(bytearray(a_bytes), dtype=dtype).reshape(N, N)
    start = None if start_bytes is None else torch.frombuffer(bytearray(start_bytes), dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small LAPACK calls: one thread is as fast, and immune to contention
    try:
        gen = torch.Generator().manual_seed(seed)
        radius = eps * torch.linalg.matrix_norm(A, 2).item()
        best_cond, best_E = math.inf, None
        with torch.inference_mode(False), torch.enable_grad():
            for attempt in range(restarts + PTD_EXTRA_STARTS):
                if attempt >= restarts and best_E is not None:
                    break
                log_cond, E = _optimize(A, radius, gen, iters, objective, pairs, start)
                if E is not None and log_cond < best_cond:
                    best_cond, best_E = log_cond, E
    finally:
        torch.set_num_threads(threads)
    if best_E is None:
        need = "stable eigenvalues in conjugate pairs" if pairs else "stable eigenvalues"
        raise RuntimeError(
            f"ptd: no perturbation of relative size eps={eps} with {need} found for N={N} "
            f"({restarts + PTD_EXTRA_STARTS} starts); try a larger eps or more iters"
        )
    Lambda, V = torch.linalg.eig((A + best_E).to(torch.complex128))
    return Lambda, _unit_columns(V)


def ptd(
    A: Tensor,
    eps: float | None = None,
    *,
    seed: int = 0,
    iters: int = PTD_ITERS,
    restarts: int | None = None,
    objective: str = "schatten",
    pairs: bool = False,
    start: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Perturb-then-diagonalize: the eigendecomposition of ``A + E`` with a well-conditioned ``V``.

    ``E`` is a rank-2 perturbation (real for a real ``A``) with ``||E||_F = eps ||A||_2``, so
    ``||E||_2 <= eps ||A||_2 <= sqrt(2) ||E||_2``, found by minimizing a smooth surrogate of
    ``cond_2(V)`` (module docstring). Every eigenvalue of ``A + E`` has a negative real part. The
    result is exact for ``A + E``: ``A + E = V diag(Lambda) V^-1`` up to float64 rounding, so
    ``E`` can be recovered as ``V diag(Lambda) V^-1 - A``.

    Deterministic for a seed (on one machine) and cached in memory on all the arguments;
    callers get fresh copies. cond(V), ``||E||`` and timings per N are in
    ``benchmarks/results/ptd_cond.md``.

    Args:
        A: square ``(N, N)`` real or complex tensor (any float dtype; computed in float64 /
            complex128).
        eps: relative size of ``E``, ``0 < eps < 1``; None (default): :func:`ptd_eps` of ``N``,
            the size of the released perturbations.
        seed: seed of the random starting perturbation.
        iters: gradient steps per start.
        restarts: random starts (drawn in turn from ``seed``); the best result is kept. None
            (default): ``PTD_RESTARTS`` (4) from N = 32 on, else 1. When no
            start yields an admissible iterate, up to ``PTD_EXTRA_STARTS`` more are tried before
            RuntimeError.
        start: optional real direction ``(N,)``: every start then begins from
            ``E ~ s s^T`` plus a small random part. For HiPPO-LegS :func:`s5_block_init` passes
            its rank-one part ``p_n = sqrt(n + 1/2)``: a step of ``E`` towards the normal part,
            stable and with every eigenvalue in a conjugate pair already.
        objective: ``"schatten"`` (default, the smooth surrogate of the module docstring) or
            ``"cond2"`` (``log cond_2`` itself).
        pairs: require every eigenvalue off the real axis, i.e. (for a real ``A``) in conjugate
            pairs, as the conjugate-symmetric S5 needs to keep one of each pair.

    Returns:
        ``Lambda (N,)`` complex128 eigenvalues and ``V (N, N)`` complex128 eigenvectors with unit
        columns.

    Example:
        >>> A, _ = seqlayers.init.hippo_legs(16)
        >>> Lambda, V = seqlayers.init.ptd(A)
        >>> bool(torch.linalg.cond(V) < 20), bool((Lambda.real < 0).all())
        (True, True)
    """
    if not isinstance(A, Tensor) or A.dim() != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
        got = tuple(A.shape) if isinstance(A, Tensor) else type(A).__name__
        raise ValueError(f"ptd: A must be a square (N, N) tensor with N >= 1, got {got}")
    if not (A.is_floating_point() or A.is_complex()):
        raise ValueError(f"ptd: A must be a real or complex floating-point tensor, got dtype {A.dtype}")
    if eps is None:
        eps = ptd_eps(A.shape[0])
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
        raise ValueError(f"ptd: eps must be a number with 0 < eps < 1, got {eps!r}")
    if restarts is None:
        restarts = PTD_RESTARTS if A.shape[0] >= PTD_RESTARTS_FROM else 1
    for name, value in (("iters", iters), ("restarts", restarts)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"ptd: {name} must be a positive int, got {value!r}")
    if objective not in PTD_OBJECTIVES:
        raise ValueError(f"ptd: unknown objective {objective!r}; expected one of {list(PTD_OBJECTIVES)}")
    if not torch.isfinite(torch.view_as_real(A) if A.is_complex() else A).all():
        raise ValueError("ptd: A must be finite")
    if start is not None:
        if not isinstance(start, Tensor) or start.shape != (A.shape[0],) or start.is_complex():
            raise ValueError(f"ptd: start must be a real ({A.shape[0]},) tensor or None")
        start = start.detach().cpu().to(torch.float64)
        start = (start / torch.linalg.vector_norm(start)).contiguous().numpy().tobytes()
    A = A.detach().cpu().to(torch.complex128 if A.is_complex() else torch.float64).contiguous()
    a_bytes = A.numpy().tobytes()
    Lambda, V = _ptd_cached(
        a_bytes, A.shape[0], A.is_complex(), float(eps), int(seed), iters, restarts, objective, bool(pairs), start
    )
    return Lambda.clone(), V.clone()


def _block_modes(
    size: int, init: str, eps: float | None, seed: int, pairs: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """One block: ``Lambda (size,)``, ``V (size, size)`` and ``V^-1``, complex128."""
    if init == "legs":
        Lambda, V = legs_normal_diagonal(size)
        return Lambda, V, V.conj().T
    if init == "ptd":
        A, _ = hippo_legs(size)
        _, p, _ = hippo_legs_nplr(size)
        Lambda, V = ptd(A, eps, seed=seed, pairs=pairs, start=p)
        return Lambda, V, torch.linalg.inv(V)
    # lin / inv: diagonal modes in the standard basis, in conjugate pairs (+- imag).
    n = torch.arange(size // 2, dtype=torch.float64)
    imag = math.pi * n if init == "lin" else (size / math.pi) * (size / (2 * n + 1) - 1)
    imag = torch.cat([imag, -imag]) if size % 2 == 0 else torch.cat([imag, -imag, imag.new_zeros(1)])
    Lambda = torch.complex(torch.full_like(imag, -0.5), imag)
    eye = torch.eye(size, dtype=torch.complex128)
    return Lambda, eye, eye


def s5_block_init(
    P: int, blocks: int, init: str = "ptd", *, eps: float | None = None, seed: int = 0, pairs: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """The block-diagonal S5 initialization: ``J = blocks`` blocks of ``P / J`` states.

    Every block has the same modes:

    * ``legs``: the normal part of HiPPO-LegS of size ``P/J``, diagonalized exactly
      (``Lambda = -1/2 + i mu``, ``V`` unitary) as in S5;
    * ``ptd``: :func:`ptd` of HiPPO-LegS of size ``P/J`` with ``eps`` (every mode stable by
      construction; a real perturbation, so the spectrum is closed under conjugation);
    * ``lin`` / ``inv``: the S4D-Lin / S4D-Inv modes ``-1/2 +- i pi n`` /
      ``-1/2 +- i (N/pi)(N/(2n+1) - 1)`` with ``V = I``.

    Args:
        P: total state size, divisible by ``blocks``.
        blocks: ``J``.
        init: ``"ptd"`` (default), ``"legs"``, ``"lin"`` or ``"inv"``.
        eps, seed, pairs: passed to :func:`ptd` (``init="ptd"`` only). ``eps=None`` (default):
            :func:`ptd_eps` of the block size ``P/J``. ``pairs=True``: no real eigenvalue, so
            every mode has its conjugate (what the conjugate-symmetric S5 needs).

    Returns:
        ``Lambda (P,)``, block-diagonal ``V (P, P)`` and ``V^-1 (P, P)``, all complex128. For
        every init the spectrum of a block is closed under conjugation; for ``ptd`` with
        ``pairs=True`` (and ``legs``, ``lin``, ``inv`` of even size) it has no real eigenvalue.

    Example:
        >>> Lambda, V, Vinv = seqlayers.init.s5_block_init(16, 2, "legs")
        >>> Lambda.shape, V.shape
        (torch.Size([16]), torch.Size([16, 16]))
    """
    for name, value in (("P", P), ("blocks", blocks)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"s5_block_init: {name} must be a positive int, got {value!r}")
    if P % blocks:
        raise ValueError(f"s5_block_init: P={P} must be divisible by blocks={blocks} (block size P/J)")
    if init not in S5_INITS:
        raise ValueError(f"s5_block_init: unknown init {init!r}; expected one of {list(S5_INITS)}")
    Lambda, V, Vinv = _block_modes(P // blocks, init, eps, seed, pairs)
    return Lambda.repeat(blocks), torch.block_diag(*[V] * blocks), torch.block_diag(*[Vinv] * blocks)
