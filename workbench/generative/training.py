"""One training loop for every prior (masked or Gaussian diffusion): AdamW, warm-up, EMA weights,
validation ELBO, checkpoints. A prior supplies ``training_loss(batch, generator, condition)``,
``validation_loss(data)`` (lower is better, in its ``validation_unit``) and ``save(path, meta)``."""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch


@dataclass
class TrainingResult:
    """History (one row per evaluation: step, train loss, validation loss, seconds)."""

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


def steps_that_fit(seconds: float, model: torch.nn.Module, batch: torch.Tensor, labels: torch.Tensor | None = None,
                   overhead: float = 0.1) -> int:
    """How many training steps on batches like ``batch`` fit in ``seconds`` (at least 100), timed on ``model``
    (a throwaway copy: its weights change) with the median of 10 steps after 2 of warm-up, plus ``overhead``
    for EMA updates and validation. Lets a training run be sized to a lent GPU's time."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(12):
        started = time.perf_counter()
        loss = model.training_loss(batch, None, labels) if labels is not None else model.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if batch.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    per_step = sorted(times[2:])[len(times[2:]) // 2]
    return max(100, int(seconds / (per_step * (1.0 + overhead))))


def sized_options(options: dict[str, Any], model: torch.nn.Module, batch: torch.Tensor, seconds: float | None = None,
                  steps: int | None = None, labels: torch.Tensor | None = None) -> dict[str, Any]:
    """A configuration's training options with the step count set: ``steps`` if given, else as many as fit in
    ``seconds`` (timed on ``model``, a throwaway copy, with ``batch``; see :func:`steps_that_fit`), else the
    configuration's; ``eval_every`` at most the step count. What every prior's ``--seconds`` / ``--steps`` does."""
    options = dict(options)
    if steps is not None:
        options["steps"] = int(steps)
    elif seconds is not None:
        options["steps"] = steps_that_fit(seconds, model, batch, labels)
    options["eval_every"] = min(options["eval_every"], options["steps"])
    return options


def add_prior_arguments(parser: argparse.ArgumentParser, configs: Iterable[str], seconds: bool = True) -> None:
    """The options every train-a-prior script shares: ``--config`` (one of ``configs``, default "full"),
    ``--device``, ``--seed``, ``--steps``, ``--out`` and, with ``seconds``, ``--seconds``."""
    parser.add_argument("--config", choices=sorted(configs), default="full")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="override the configuration's step count")
    if seconds:
        parser.add_argument("--seconds", type=float, default=None, help="train as many steps as fit in this time")
    parser.add_argument("--out", default=None, help="checkpoint path (default: the shipped one)")


def finish_checkpoint(result: TrainingResult, path: str | Path, half: bool = False) -> None:
    """After :func:`train_prior` wrote the checkpoint ``path``: its weights in float16 when ``half`` (the shipped
    full priors), and its history beside it as ``*_history.csv``."""
    if half:
        halve_checkpoint(path)
    result.history.to_csv(str(path).replace(".pt", "_history.csv"), index=False)


def halve_checkpoint(path: str | Path) -> None:
    """Rewrite a prior checkpoint written by :func:`train_prior` with its float weights in float16: half the file
    to ship; loading casts them back to float32."""
    blob = torch.load(path, weights_only=True)
    blob["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    torch.save(blob, path)


def train_prior(model: torch.nn.Module, train: torch.Tensor, valid: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, steps: int = 10_000, batch_size: int = 256, lr: float = 1e-3,
                weight_decay: float = 0.01, warmup: int = 500, ema: float = 0.999, seed: int = 0,
                eval_every: int = 500, checkpoint: str | Path | None = None, log: Any = print) -> TrainingResult:
    """Train a prior on designs ``train [n, *shape]`` (token rows for a masked prior, tensors for a Gaussian one).

    ``labels [n]`` (int64) trains a class-conditional prior (the prior drops some labels so that it also
    learns the unconditional model). AdamW with linear warm-up and cosine decay; the EMA weights are
    evaluated on ``valid`` every ``eval_every`` steps, and the best EMA weights end up in ``model`` (and in
    ``checkpoint`` when given). The denoiser runs in bf16 on CUDA.
    """
    if tuple(train.shape[1:]) != tuple(model.shape):
        raise ValueError(f"train must be [n, {', '.join(map(str, model.shape))}], got {list(train.shape)}")
    if labels is not None and labels.shape != (len(train),):
        raise ValueError(f"labels must hold one label per training row [{len(train)}], got {list(labels.shape)}")
    device = model.device
    generator = torch.Generator(device=device).manual_seed(seed)
    cpu_generator = torch.Generator().manual_seed(seed)
    data = train.to(device)
    targets = None if labels is None else labels.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / max(1, warmup))
                                                 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, i / max(1, steps)))))
    shadow = EMA(model.denoiser, ema)
    rows, best, best_state, losses = [], math.inf, None, []
    started = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        index = torch.randint(0, len(data), (batch_size,), generator=cpu_generator).to(device)
        condition = None if targets is None else targets[index]
        loss = model.training_loss(data[index], generator, condition)
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
            model.eval()
            valid_loss = model.validation_loss(valid) if valid is not None else math.nan
            model.train()
            score = valid_loss if valid is not None else -step
            if score < best:
                best, best_state = score, {k: v.detach().clone() for k, v in model.denoiser.state_dict().items()}
            model.denoiser.load_state_dict(live)
            row = {"step": step, "train_loss": sum(losses) / len(losses), "valid_loss": valid_loss,
                   "seconds": time.perf_counter() - started}
            rows.append(row)
            losses = []
            if log:
                log(f"step {step}: train {row['train_loss']:.4f} valid {valid_loss:.4f} {model.validation_unit} "
                    f"({row['seconds']:.0f} s)")
    model.denoiser.load_state_dict(best_state)
    model.eval()
    seconds = time.perf_counter() - started
    result = TrainingResult(pd.DataFrame(rows), seconds, best_valid=best if valid is not None else math.nan)
    if checkpoint is not None:
        model.save(checkpoint, meta={"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                                     "valid_loss": result.best_valid, "valid_unit": model.validation_unit,
                                     "seconds": seconds})
    return result
