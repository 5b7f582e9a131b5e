"""Reward-guided samplers over a generative prior, generic over domains and prior kinds.

Every sampler uses only the :class:`~workbench.generative.Prior` protocol, so it runs on a masked
discrete prior (DNA, proteins, molecules, layouts) and on a Gaussian one (images, vectors, grids).
Baselines: :class:`Pretrained` (plain sampling), :class:`BestOfN`, :class:`SMC`. Guidance:
:class:`SVDD` (PM and MC values, derivative-free), :class:`DPS` (reward gradient at x0_hat).
Fine-tuning: :class:`DRAKES`.
"""

from .base import PriorSampler, Pretrained
from .best_of_n import BestOfN
from .dps import DPS
from .drakes import DRAKES
from .reward import Reward
from .smc import SMC
from .svdd import SVDD

__all__ = ["PriorSampler", "Pretrained", "BestOfN", "SMC", "SVDD", "DPS", "DRAKES", "Reward"]
