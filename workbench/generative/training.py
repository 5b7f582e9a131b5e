"""Training loop for masked-diffusion priors: AdamW, warm-up, EMA weights, validation ELBO, checkpoints."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from .masked import MaskedDiffusion


@dataclass
class TrainingResult:
    """History (one row per evaluation: step, train loss, validation NELBO per token, seconds)."""

    history: pd.DataFrame
    seconds: float
    best_valid: float = math.nan
    meta: dict[str, Any] = field(default_factory=dict)


class EMA:
    """Exponential moving average of a module's floating-point parameters.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` so short runs are not
    dominated by the random initialization.
    """

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in module.state_dict().items():
            if k in self.shadow:
                self.shadow[k].lerp_(v, 1.0 - decay)

    def copy_to(self, module: torch.nn.Module) -> None:
        state = module.state_dict()
        state.update(self.shadow)
        module.load_state_dict(state)


@torch.no_grad()
def validation_nelbo(model: MaskedDiffusion, tokens: torch.Tensor, samples: int = 4, seed: int = 0,
                     batch_size: int = 512) -> float:
    """Mean negative ELBO per token (nats) of ``tokens [n, L]`` under ``model`` (fixed seed, so comparable)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=model.device).manual_seed(seed)
    ll = model.log_likelihood(tokens.to(model.device), samples=samples, generator=generator, batch_size=batch_size)
    model.train(was_training)
    return float(-ll.mean()) / model.length


def train_masked_diffusion(model: MaskedDiffusion, train_tokens: torch.Tensor, valid_tokens: torch.Tensor | None = None,
                           steps: int = 10_000, batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 0.01,
                           warmup: int = 500, ema: float = 0.999, seed: int = 0, eval_every: int = 500,
                           checkpoint: str | Path | None = None, log: Any = print) -> TrainingResult:
    """Train ``model`` on token rows ``train_tokens [n, L]`` by the MDLM objective.

    AdamW with linear warm-up and cosine decay; the EMA weights are evaluated on
    ``valid_tokens`` every ``eval_every`` steps, and the best EMA weights end up in
    ``model`` (and in ``checkpoint`` when given). The denoiser runs in bf16 on CUDA.
    """
    if train_tokens.dim() != 2 or train_tokens.shape[1] != model.length:
        raise ValueError(f"train_tokens must be [n, {model.length}], got {list(train_tokens.shape)}")
    device = model.device
    model.check_tokens(train_tokens, allow_mask=False)
    generator = torch.Generator(device=device).manual_seed(seed)
    cpu_generator = torch.Generator().manual_seed(seed)
    data = train_tokens.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / max(1, warmup))
                                                 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, i / max(1, steps)))))
    shadow = EMA(model.denoiser, ema)
    rows, best, best_state, losses = [], math.inf, None, []
    started = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        index = torch.randint(0, len(data), (batch_size,), generator=cpu_generator).to(device)
        loss = model.nelbo(data[index], generator).mean() / model.length  # bf16 on CUDA (MaskedDiffusion.logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        shadow.update(model.denoiser)
        losses.append(float(loss.detach()))
        if step % eval_every == 0 or step == steps:
            live = {k: v.detach().clone() for k, v in model.denoiser.state_dict().items()}
            shadow.copy_to(model.denoiser)
            valid = validation_nelbo(model, valid_tokens) if valid_tokens is not None else math.nan
            score = valid if valid_tokens is not None else -step
            if score < best:
                best, best_state = score, {k: v.detach().clone() for k, v in model.denoiser.state_dict().items()}
            model.denoiser.load_state_dict(live)
            row = {"step": step, "train_nelbo_per_token": sum(losses) / len(losses), "valid_nelbo_per_token": valid,
                   "seconds": time.perf_counter() - started}
            rows.append(row)
            losses = []
            if log:
                log(f"step {step}: train {row['train_nelbo_per_token']:.4f} valid {valid:.4f} nats/token "
                    f"({row['seconds']:.0f} s)")
    model.denoiser.load_state_dict(best_state)
    model.eval()
    seconds = time.perf_counter() - started
    result = TrainingResult(pd.DataFrame(rows), seconds, best_valid=best if valid_tokens is not None else math.nan)
    if checkpoint is not None:
        model.save(checkpoint, meta={"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                                     "valid_nelbo_per_token": result.best_valid, "seconds": seconds})
    return result
