"""Shared generative priors and their one training loop.

- :class:`MaskedDiffusion`: masked discrete diffusion (MDLM) over token sequences;
- :class:`GaussianDiffusion`: DDPM / DDIM over dense tensors (images, vectors, voxel grids).

A :class:`Corrector` (:class:`Correction`) re-masks implausible tokens while a masked prior samples.
Both priors implement the :class:`Prior` protocol, so the reward-guided samplers (SVDD, SMC, DPS, DRAKES,
best-of-N) run on either. Every domain gets a prior by pointing :func:`train_prior` at its data.
"""

from .corrector import Correction, Corrector, train_corrector
from .denoisers import ConvDenoiser, MLPDenoiser, TransformerDenoiser, UNet, build_denoiser
from .gaussian import GaussianDiffusion, GaussianStep
from .masked import MaskedDiffusion, ReverseStep, sample_categorical
from .protocol import Partial, Prior, StepDistribution
from .schedules import CosineSchedule, LogLinearSchedule
from .training import TrainingResult, train_prior

__all__ = ["MaskedDiffusion", "ReverseStep", "GaussianDiffusion", "GaussianStep", "Prior", "StepDistribution",
           "Partial", "ConvDenoiser", "TransformerDenoiser", "UNet", "MLPDenoiser", "LogLinearSchedule", "CosineSchedule",
           "build_denoiser",
           "sample_categorical", "train_prior", "TrainingResult", "Corrector", "Correction", "train_corrector"]
