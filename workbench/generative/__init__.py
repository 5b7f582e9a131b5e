"""Shared generative priors and their one training loop.

- :class:`MaskedDiffusion`: masked discrete diffusion (MDLM) over token sequences;
- :class:`GaussianDiffusion`: DDPM / DDIM over dense tensors (images, vectors, voxel grids).

Both implement the :class:`Prior` protocol, so the reward-guided samplers (SVDD, SMC, DPS, DRAKES,
best-of-N) run on either. Every domain gets a prior by pointing :func:`train_prior` at its data.
"""

from .denoisers import ConvDenoiser, MLPDenoiser, UNet, build_denoiser
from .gaussian import GaussianDiffusion, GaussianStep
from .masked import MaskedDiffusion, ReverseStep, sample_categorical
from .protocol import Partial, Prior, StepDistribution
from .schedules import CosineSchedule, LogLinearSchedule
from .training import TrainingResult, train_prior

__all__ = ["MaskedDiffusion", "ReverseStep", "GaussianDiffusion", "GaussianStep", "Prior", "StepDistribution",
           "Partial", "ConvDenoiser", "UNet", "MLPDenoiser", "LogLinearSchedule", "CosineSchedule", "build_denoiser",
           "sample_categorical", "train_prior", "TrainingResult"]
