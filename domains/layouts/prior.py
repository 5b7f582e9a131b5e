"""The layout prior: masked diffusion over the 125 layout tokens (LayoutDM-style), and its corrector.

The denoiser is the core :class:`~workbench.generative.TransformerDenoiser` with one position group per token
kind (class, x, y, w, h): each position may only hold its kind's tokens or PAD, as in LayoutDM's logit masking,
and elements of 5 tokens padded whole (``record=5, pad=PAD``): once one token of an element is known, the prior
never pads a real element's coordinate or gives a padded element a class.
Configurations: ``"full"`` (trained with ``python -m domains.layouts.train_prior --config full``) and ``"tiny"``
(a CPU minute, for tests). The corrector of a configuration (``load_corrector``) is trained on that prior's own
mistakes by ``python -m domains.layouts.train_corrector --config ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from workbench.checkpoints import config_checkpoint, config_of, read_checkpoint
from workbench.generative import Corrector, MaskedDiffusion, TransformerDenoiser

from .tokens import PAD, TOKENS_PER_ELEMENT, Tokenizer, default_tokenizer

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
CONFIGS: dict[str, dict[str, Any]] = {
    "full": {"denoiser": {"hidden": 128, "layers": 4, "heads": 4, "ff": 256, "dropout": 0.1},
             "train": {"steps": 20_000, "batch_size": 48, "lr": 1e-3, "warmup": 200, "ema": 0.998,
                       "eval_every": 250},
             "corrector": {"hidden": 96, "layers": 2, "heads": 4, "steps": 3000, "batch_size": 64}},
    "tiny": {"denoiser": {"hidden": 64, "layers": 2, "heads": 4, "dropout": 0.0},
             "train": {"steps": 400, "batch_size": 64, "lr": 2e-3, "warmup": 50, "ema": 0.99, "eval_every": 200},
             "corrector": {"hidden": 32, "layers": 1, "heads": 4, "steps": 150, "batch_size": 32}},
}


def checkpoint_path(config: str) -> Path:
    return config_checkpoint(CHECKPOINT_DIR, CONFIGS, config)


def corrector_path(config: str) -> Path:
    return config_checkpoint(CHECKPOINT_DIR, CONFIGS, config, prefix="corrector")


def position_groups(tokenizer: Tokenizer) -> tuple[list[int], list[list[int]]]:
    """(group id of each of the 125 positions: 0 class, 1-4 x, y, w, h; the token ids allowed in each group)."""
    allowed = tokenizer.allowed()
    groups = [i % TOKENS_PER_ELEMENT for i in range(tokenizer.length)]
    tokens = [torch.nonzero(allowed[g]).flatten().tolist() for g in range(TOKENS_PER_ELEMENT)]
    return groups, tokens


def new_prior(config: str, tokenizer: Tokenizer | None = None) -> MaskedDiffusion:
    """An untrained prior of configuration ``config``."""
    tokenizer = tokenizer or default_tokenizer()
    groups, tokens = position_groups(tokenizer)
    denoiser = TransformerDenoiser(tokenizer.vocab_size, tokenizer.length, position_groups=groups,
                                   group_tokens=tokens, record=TOKENS_PER_ELEMENT, pad=PAD,
                                   **config_of(CONFIGS, config)["denoiser"])
    return MaskedDiffusion(denoiser, tokenizer.vocab_size, tokenizer.length)


def load_prior(config: str = "full", device: str | torch.device = "cpu") -> MaskedDiffusion:
    """The shipped prior of configuration ``config`` on ``device`` (cached per process)."""
    return MaskedDiffusion.load_shipped(checkpoint_path(config), device,
                                        f"python -m domains.layouts.train_prior --config {config}")


def load_corrector(config: str = "full", device: str | torch.device = "cpu") -> Corrector:
    """The shipped corrector of the prior ``config`` on ``device``."""
    path = corrector_path(config)
    if not path.exists():
        raise FileNotFoundError(f"corrector checkpoint {path} is missing; train it with "
                                f"`python -m domains.layouts.train_corrector --config {config}`")
    return Corrector.from_checkpoint(read_checkpoint(str(path))).to(device)
