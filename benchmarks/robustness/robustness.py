"""Robustness of S5 to high-frequency input noise: diagonal LegS init against PTD.

Reproduces the claim of Yu et al. (2024) on our layers. With normalized ``B`` and ``C`` (real,
unit norm), the transfer function ``G(s) = C (sI - A)^-1 B`` of HiPPO-LegS (size N) is compared
with those of the two S5 initializations, ``C_tilde (sI - Lambda)^-1 B_tilde``:

* ``legs``: the diagonalized normal part (``V`` unitary) -- it drops the rank-one part of ``A``;
* ``ptd``: the eigendecomposition of ``A + E``, ``||E||_2 <= eps ||A||_2`` (positive real parts
  reflected, as in the S5 init).

Then sinusoidal noise is added to a smooth input and the output deviation of S5 layers (scan mode,
``B``/``C`` set to the normalized ones, no skip/activation/mixing) is measured against the
deviation of the true LegS system. Writes ``benchmarks/results/robustness.png`` and
``benchmarks/results/robustness.md``.

    python benchmarks/robustness/robustness.py
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import torch

import seqlayers
from seqlayers.init import hippo_legs, s5_block_init

RESULTS = Path(__file__).resolve().parents[1] / "results"


def transfer(Lambda: torch.Tensor, b: torch.Tensor, c: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """``sum_p c_p b_p / (i omega - Lambda_p)`` for every omega: complex ``(len(omega),)``."""
    return ((c * b) / (1j * omega[:, None] - Lambda)).sum(-1)


def transfer_full(A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    eye = torch.eye(A.shape[0], dtype=torch.complex128)
    Ac = A.to(torch.complex128)
    sol = torch.linalg.solve(1j * omega[:, None, None] * eye - Ac, B.to(torch.complex128).expand(len(omega), -1))
    return sol @ C.to(torch.complex128)


def s5_system(N: int, init: str, eps: float, B: torch.Tensor, C: torch.Tensor):
    Lambda, V, Vinv = s5_block_init(N, 1, init, eps=eps)
    return Lambda, Vinv @ B.to(torch.complex128), C.to(torch.complex128) @ V


def s5_layer(N, init, eps, B, C, dt):
    layer = seqlayers.S5(1, N, blocks=1, init=init, ptd_eps=eps, conj_sym=False, mode="scan", skip=False,
                         mixing="none", activation="identity", dt_min=dt, dt_max=dt).eval()
    _, b, c = s5_system(N, init, eps, B, C)
    with torch.no_grad():
        layer.kernel.B.copy_(torch.view_as_real(b[:, None].to(torch.cfloat)))
        layer.kernel.C.copy_(torch.view_as_real(c[None, None].to(torch.cfloat)))
    return layer


def true_response(A, B, C, u, dt):
    """ZOH simulation of the full LegS system in float64: ``u (L,)`` -> ``y (L,)``."""
    N = A.shape[0]
    M = torch.zeros(N + 1, N + 1, dtype=torch.float64)
    M[:N, :N], M[:N, N] = A, B
    M = torch.matrix_exp(M * dt)  # [[exp(A dt), int_0^dt exp(A s) B ds], [0, 1]]
    Ad, Bd = M[:N, :N], M[:N, N]
    x = torch.zeros(N, dtype=torch.float64)
    ys = []
    for u_t in u.tolist():
        x = Ad @ x + Bd * u_t
        ys.append(C @ x)
    return torch.stack(ys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=64)
    parser.add_argument("--eps", type=float, default=0.05)
    parser.add_argument("--dt", type=float, default=1e-4)
    parser.add_argument("--L", type=int, default=4000)
    args = parser.parse_args()
    start = time.perf_counter()
    torch.manual_seed(0)
    N, eps, dt, L = args.N, args.eps, args.dt, args.L

    A, B = hippo_legs(N)
    B = B / B.norm()
    C = torch.randn(N, dtype=torch.float64)
    C = C / C.norm()
    omega = torch.logspace(-1, math.log10(50 * N**2), 600, dtype=torch.float64)
    G_true = transfer_full(A, B, C, omega)
    G = {init: transfer(*s5_system(N, init, eps, B, C), omega) for init in ("legs", "ptd")}
    err = {init: (g - G_true).abs() for init, g in G.items()}

    # Sinusoidal noise at a few frequencies, including the worst one of the legs init
    # (restricted to below the Nyquist frequency of the simulation).
    nyquist = math.pi / dt
    below = omega < 0.5 * nyquist
    spike = omega[below][err["legs"][below].argmax()].item()
    high = below & (omega >= N**2 / 8)
    high_spike = omega[high][err["legs"][high].argmax()].item()
    t = torch.arange(L, dtype=torch.float64) * dt
    u = sum(torch.sin(2 * math.pi * f * t + f) for f in (3.0, 7.0, 11.0))
    layers = {init: s5_layer(N, init, eps, B, C, dt) for init in ("legs", "ptd")}
    y_ref = true_response(A, B, C, u, dt)
    rows = []
    for w in (100.0, 1000.0, float(N**2), spike, high_spike):
        noise = 0.1 * torch.sin(w * t)
        dev = {"true": true_response(A, B, C, noise, dt)}  # linear: y(u + noise) - y(u) = y(noise)
        with torch.no_grad():
            for init, layer in layers.items():
                run = lambda x: layer(x.float()[None, :, None])[0, :, 0].double()  # noqa: E731
                dev[init] = run(u + noise) - run(u)
        rel = {k: (v.norm() / y_ref.norm()).item() for k, v in dev.items()}
        rows.append((w, rel))
        print(f"omega={w:9.1f}: relative output deviation " + ", ".join(f"{k} {v:.3g}" for k, v in rel.items()))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4))
    ax0.loglog(omega, G_true.abs(), "k", lw=2, label="HiPPO-LegS (true)")
    ax0.loglog(omega, G["legs"].abs(), "C0", label="S5 legs (normal part, diagonal)")
    ax0.loglog(omega, G["ptd"].abs(), "C3--", label=f"S5 ptd (eps={eps})")
    ax0.set(xlabel="omega", ylabel="|G(i omega)|", title=f"transfer functions, N={N}")
    ax0.axvline(N**2, color="gray", ls=":", lw=1)
    ax0.legend(fontsize=8)
    ax1.loglog(omega, err["legs"], "C0", label="legs")
    ax1.loglog(omega, err["ptd"], "C3", label="ptd")
    ax1.axvline(N**2, color="gray", ls=":", lw=1, label="N^2")
    ax1.set(xlabel="omega", ylabel="|G_init - G_true|", title="transfer function error")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "robustness.png", dpi=120)

    machine = f"{platform.processor() or platform.machine()}, torch {torch.__version__}"
    sup = {k: v.max().item() for k, v in err.items()}
    arg = {k: omega[v.argmax()].item() for k, v in err.items()}
    lines = [
        "# Robustness of S5 inits to high-frequency noise (legs vs ptd)",
        "",
        f"Machine: {machine}. `python benchmarks/robustness/robustness.py` "
        f"(N={N}, ptd eps={eps}, dt={dt}, L={L}); {time.perf_counter() - start:.0f} s.",
        "",
        "Transfer functions with unit-norm real B (HiPPO-LegS B) and C (random): ",
        f"omega on [0.1, {50 * N**2}] (600 log-spaced points).",
        "",
        "| init | sup abs(G - G_true) | at omega | max abs(G_true) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {k} | {sup[k]:.3g} | {arg[k]:.3g} | {G_true.abs().max().item():.3g} |" for k in ("legs", "ptd")]
    lines += [
        "",
        "Output deviation ||y(u + noise) - y(u)|| / ||y(u)|| for noise 0.1 sin(omega t) on a smooth",
        "input u (sum of three sinusoids of 3-11 Hz); S5 layers in scan mode, ZOH with step dt; the",
        "true system is HiPPO-LegS simulated exactly (ZOH, float64). The last two rows are the",
        "frequencies of the largest legs error below half the Nyquist frequency, overall and for",
        "omega >= N^2/8 (the high-frequency spike).",
        "",
        "| noise omega | true LegS | S5 legs | S5 ptd |",
        "|---|---|---|---|",
    ]
    lines += [f"| {w:.4g} | {r['true']:.3g} | {r['legs']:.3g} | {r['ptd']:.3g} |" for w, r in rows]
    lines += ["", "![transfer functions](robustness.png)"]
    (RESULTS / "robustness.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'robustness.md'} and robustness.png in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
