"""A differentiable surrogate of the RDKit scores, for gradient-based samplers (DRAKES, DPS).

RDKit cannot differentiate, so ``Molecules.evaluate_soft`` asks this small 1-D CNN instead: it maps one-hot (or
relaxed, probability) token rows ``[n, L, V]`` (V = the SELFIES alphabet plus padding) to ``TARGETS``, trained by
``python -m domains.molecules.train_surrogate`` to regress RDKit's values on MOSES molecules, mutated MOSES rows and
prior samples. Every number a
study stores comes from RDKit (``evaluate``); the surrogate only steers the gradients.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.checkpoints import Checkpointed, read_checkpoint

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
#: model sizes and training recipes: "tiny" (trained on a CPU, shipped) and "full" (a GPU minute or two)
CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"model": {"hidden": 96, "kernel": 5, "dilations": [1, 2, 4, 1]}, "epochs": 10, "batch_size": 256,
             "lr": 2e-3, "relaxed_epochs": 2, "relaxed_lr": 5e-4},
    "full": {"model": {"hidden": 256, "kernel": 5, "dilations": [1, 2, 4, 8, 1, 2, 4, 8]}, "epochs": 60,
             "batch_size": 512, "lr": 1e-3, "relaxed_epochs": 3, "relaxed_lr": 2e-4},
}
#: what the surrogate predicts (names as in ``objectives.SCORES``). Not similarity (it depends on the lead) and
#: not PAINS: MOSES was filtered to exclude PAINS hits, so there is nothing to learn them from
TARGETS = ("qed", "sa", "logp", "mw", "tpsa", "brenk", "large_rings")


class ConvBlock(nn.Module):
    """Pre-norm residual block: LayerNorm, dilated conv, GELU, pointwise conv."""

    def __init__(self, hidden: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.mix = nn.Conv1d(hidden, hidden, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = nn.functional.gelu(self.conv(self.norm(h).transpose(1, 2)))
        return h + self.mix(z).transpose(1, 2)


class Surrogate(Checkpointed):
    """Token and position embeddings, dilated residual conv blocks, mean and max pooling, an MLP head per target
    set; outputs in the targets' own units (the standardization is part of the model).

    config: ``vocab_size`` (with padding), ``length``, ``hidden``, ``dilations`` (one block each), ``kernel``,
    ``targets``; training adds ``mean``, ``std`` (per target) and ``metrics``.
    """

    checkpoint_format = "molecule-surrogate/1"
    checkpoint_kind = "molecule surrogate"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        hidden, targets = int(config["hidden"]), list(config["targets"])
        self.targets = targets
        self.embed = nn.Linear(int(config["vocab_size"]), hidden)
        self.position = nn.Parameter(torch.zeros(int(config["length"]), hidden))
        self.blocks = nn.ModuleList(ConvBlock(hidden, int(config["kernel"]), int(d)) for d in config["dilations"])
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.Linear(hidden, len(targets)))
        self.register_buffer("mean", torch.tensor(config.get("mean", [0.0] * len(targets)), dtype=torch.float32))
        self.register_buffer("std", torch.tensor(config.get("std", [1.0] * len(targets)), dtype=torch.float32))

    def standardized(self, x: torch.Tensor) -> torch.Tensor:
        """One-hot or soft rows ``[n, L, V]`` -> standardized predictions ``[n, len(targets)]``."""
        h = self.embed(x) + self.position
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        return self.head(torch.cat([h.mean(dim=1), h.amax(dim=1)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One-hot or soft rows ``[n, L, V]`` -> predictions ``[n, len(targets)]`` in the targets' units."""
        return self.standardized(x) * self.std + self.mean


def checkpoint_path(config: str) -> Path:
    if config not in CONFIGS:
        raise ValueError(f"unknown surrogate configuration {config!r}; choose from {sorted(CONFIGS)}")
    return CHECKPOINT_DIR / f"surrogate_{config}.pt"


def resolve(config: str = "auto") -> str:
    """``"auto"``: "full" when its checkpoint exists, else "tiny"; other names are checked and returned, and so is
    the path of a checkpoint file (``train_surrogate --out``), which must exist."""
    if config == "auto":
        return "full" if checkpoint_path("full").exists() else "tiny"
    if config.endswith(".pt"):
        if not Path(config).is_file():
            raise FileNotFoundError(f"no surrogate checkpoint at {config}")
        return config
    checkpoint_path(config)
    return config


def load_surrogate(config: str = "auto", device: str | torch.device = "cpu") -> Surrogate:
    """The surrogate of ``config`` (a shipped configuration or a checkpoint path; see ``resolve``), frozen, in eval
    mode, on ``device``."""
    resolved = resolve(config)
    path = Path(resolved) if resolved.endswith(".pt") else checkpoint_path(resolved)
    if not path.exists():
        raise FileNotFoundError(f"surrogate checkpoint {path} is missing; train it with "
                                f"`python -m domains.molecules.train_surrogate --config {resolved}`")
    return Surrogate.from_checkpoint(read_checkpoint(str(path))).to(device)
