"""Reward-guided samplers over a masked-diffusion prior, generic over sequence domains.

Baselines: :class:`Pretrained` (plain sampling), :class:`BestOfN`, :class:`SMC`.
Guidance: :class:`SVDD` (PM and MC values). Fine-tuning: :class:`DRAKES`.
"""

from .base import PriorSampler, Pretrained
from .best_of_n import BestOfN
from .drakes import DRAKES
from .reward import Reward
from .smc import SMC
from .svdd import SVDD

__all__ = ["PriorSampler", "Pretrained", "BestOfN", "SMC", "SVDD", "DRAKES", "Reward"]
