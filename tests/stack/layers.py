"""The layer cases the PyTorch-stack tests run: small sizes, every family and mode."""

import seqlayers

H = 8
L_MAX = 64

CASES = {
    "s4d": lambda: seqlayers.S4D(H, d_state=8),
    "s5_scan": lambda: seqlayers.S5(H, d_state=8, blocks=2, mode="scan"),
    "s5_conv": lambda: seqlayers.S5(H, d_state=8, blocks=2, mode="conv"),
    "sgconv": lambda: seqlayers.SGConv(H, L_MAX, kernel_dim=8),
    "longconv": lambda: seqlayers.LongConv(H, L_MAX),
    "longconv_learned_butterfly": lambda: seqlayers.LongConv(H, L_MAX, learned_butterfly=True),
}
