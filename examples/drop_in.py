"""Drop-in: swap the self-attention of a small Transformer block for an S4D layer.

Both blocks map (B, L, H) -> (B, L, H), so the swap is one line. S4D costs O(L log L) in time and
O(L) in memory where attention costs O(L^2); this script prints both blocks' output shapes,
parameter counts and a forward+backward time at a length where the difference shows.

    python examples/drop_in.py --length 4096
"""

import argparse
import time

import torch
from torch import nn

import seqlayers


class Block(nn.Module):
    """Pre-norm residual block: x + mixer(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, d_model: int, mixer: nn.Module):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.mixer = mixer
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x):
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int = 4):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


def timed(block, x):
    start = time.perf_counter()
    block(x).sum().backward()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--d-model", type=int, default=64)
    args = parser.parse_args()
    x = torch.randn(2, args.length, args.d_model)

    transformer = Block(args.d_model, SelfAttention(args.d_model))
    ssm = Block(args.d_model, seqlayers.S4D(args.d_model, d_state=64))  # the one-line swap

    for name, block in (("attention", transformer), ("S4D", ssm)):
        params = sum(p.numel() for p in block.parameters())
        seconds = timed(block, x)
        print(f"{name:10s} output {tuple(block(x).shape)}  params {params:7,d}  fwd+bwd {seconds * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
