"""Recurrent step-mode throughput of the SSM layers, against recomputing the convolution.

Autoregressive generation with a causal layer can either call ``step`` once per new token
(constant work per token, constant-size state) or rerun ``forward`` on the whole prefix for
every token (work growing with the prefix). This prints, for S4D and S5, the time per generated
token of both ways after a prefix of length L, and their ratio, side by side.

    python benchmarks/speed/step.py --d-model 256 --batch 16 --lengths 256 1024 4096
"""

import argparse
import platform
import time

import torch

import seqlayers


def _best_of(fn, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@torch.no_grad()
def measure(layer, batch: int, L: int, d_model: int, steps: int, repeats: int) -> tuple[float, float]:
    """Seconds per token: (step mode, full forward over a prefix of length L)."""
    x = torch.randn(batch, L, d_model)
    tokens = torch.randn(steps, batch, d_model)

    def run_steps():
        state = layer.default_state(batch)
        for t in range(steps):
            layer.step(tokens[t], state)

    per_step = _best_of(run_steps, repeats) / steps
    per_forward = _best_of(lambda: layer(x), repeats)
    return per_step, per_forward


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--d-state", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--steps", type=int, default=64, help="tokens timed in step mode")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layers = {
        "S4D": seqlayers.S4D(args.d_model, args.d_state).eval(),
        "S5": seqlayers.S5(args.d_model, args.d_state, mode="scan").eval(),
    }
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"B={args.batch}, H={args.d_model}, state {args.d_state}"
    )
    print(f"{'layer':6s} {'L':>6s} {'step ms/token':>14s} {'forward ms/token':>17s} {'forward/step':>13s} {'tokens/s (step)':>16s}")
    for name, layer in layers.items():
        for L in args.lengths:
            per_step, per_forward = measure(layer, args.batch, L, args.d_model, args.steps, args.repeats)
            print(
                f"{name:6s} {L:6d} {per_step * 1e3:14.3f} {per_forward * 1e3:17.3f} "
                f"{per_forward / per_step:12.1f}x {args.batch / per_step:16,.0f}"
            )


if __name__ == "__main__":
    main()
