"""Shared generative priors: masked discrete diffusion (MDLM-style) and its trainer.

Every sequence domain gets a prior by pointing :func:`train_masked_diffusion` at its data;
the reward-guided samplers (SVDD, SMC, DRAKES, best-of-N) work on any such prior.
"""

from .denoisers import ConvDenoiser, build_denoiser
from .masked import MaskedDiffusion, ReverseStep, sample_categorical
from .schedules import LogLinearSchedule
from .training import TrainingResult, train_masked_diffusion

__all__ = ["MaskedDiffusion", "ReverseStep", "ConvDenoiser", "LogLinearSchedule", "build_denoiser",
           "sample_categorical", "train_masked_diffusion", "TrainingResult"]
