"""Initializations of state matrices: HiPPO-LegS, its normal part, and PTD."""

from .hippo import hippo_legs, hippo_legs_nplr, legs_half_modes, legs_normal_diagonal
from .ptd import ptd, ptd_eps, s5_block_init

__all__ = ["hippo_legs", "hippo_legs_nplr", "legs_normal_diagonal", "legs_half_modes", "ptd", "ptd_eps", "s5_block_init"]
