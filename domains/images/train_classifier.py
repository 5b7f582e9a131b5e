"""Train an MNIST digit classifier on one half of the training split and write its checkpoint.

    python -m domains.images.train_classifier --half a|b --resolution 28|14 [--seed 0] [--epochs N] [--out DIR]

Cross-entropy on ``train_a`` or ``train_b`` (25,000 images) with random shifts (up to 2 px at 28 px, 1 px at
14 px, zero-filled) as augmentation; AdamW with a one-cycle schedule; the epoch with the best accuracy on
``valid`` is kept (early stopping with patience); then accuracy on ``test``. Deterministic for a seed on the
CPU (2 threads). Writes ``classifier_<half>_<R>.pt`` and ``classifier_<half>_<R>.json`` (metrics, command).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .classifier import CHECKPOINT_DIR, ROLES, DigitClassifier
from .data import RESOLUTIONS, load_mnist

#: architecture and optimisation recipe (chosen on the validation split)
RECIPE: dict[str, Any] = {"stages": [[32, 32], [64, 64], [128]], "feature_dim": 128, "dropout": 0.2, "epochs": 8, "patience": 3,
                          "batch": 128, "lr": 3e-3, "wd": 1e-4, "max_shift": {28: 2, 14: 1}}


@torch.no_grad()
def predict(model: DigitClassifier, x: torch.Tensor, batch: int = 2000) -> torch.Tensor:
    """Logits ``[n, 10]`` of images ``x: [n, 1, R, R]`` in eval mode, in chunks."""
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def accuracy(model: DigitClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of images ``x: [n, 1, R, R]`` whose arg-max class equals ``y: [n]``."""
    return float((predict(model, x).argmax(dim=1) == y).to(torch.float64).mean())


def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Shift each image of ``x: [n, 1, R, R]`` by ``dy, dx: [n]`` pixels (down, right), filling with zeros."""
    n, _, size, _ = x.shape
    base = torch.arange(size)
    rows = base.unsqueeze(0) - dy.unsqueeze(1)  # [n, R]: source row of each target row
    cols = base.unsqueeze(0) - dx.unsqueeze(1)
    inside = (((rows >= 0) & (rows < size)).unsqueeze(2) & ((cols >= 0) & (cols < size)).unsqueeze(1))  # [n, R, R]
    rows, cols = rows.clamp(0, size - 1), cols.clamp(0, size - 1)
    out = x[torch.arange(n)[:, None, None], 0, rows.unsqueeze(2), cols.unsqueeze(1)]  # [n, R, R]
    return (out * inside).unsqueeze(1)


def augment(x: torch.Tensor, gen: torch.Generator, max_shift: int) -> torch.Tensor:
    """Random integer shifts of up to ``max_shift`` pixels along each axis."""
    if not max_shift:
        return x
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, len(x)), generator=gen)
    return shift(x, dy, dx)


def train(half: str, resolution: int = 28, seed: int = 0, epochs: int | None = None, log: bool = True,
          data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> DigitClassifier:
    """Train on ``train_<half>``; returns the best-validation model (eval mode).

    ``data``: (train images ``[n, 1, R, R]``, labels ``[n]``, validation images, labels) to use instead of
    the half and ``valid`` (for quick tests).
    """
    recipe = RECIPE
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    model = DigitClassifier({k: recipe[k] for k in ("stages", "feature_dim", "dropout")})
    x, y, xv, yv = data if data is not None else (*load_mnist(f"train_{half}", resolution),
                                                  *load_mnist("valid", resolution))
    max_shift = recipe["max_shift"][resolution]
    epochs = epochs or recipe["epochs"]
    steps = max(1, len(x) // recipe["batch"])
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["wd"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=epochs * steps, pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss()
    best, best_state, best_epoch, since = -1.0, copy.deepcopy(model.state_dict()), 0, 0
    history = []
    for epoch in range(epochs):
        started = time.perf_counter()
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for s in range(steps):
            idx = perm[s * recipe["batch"]:(s + 1) * recipe["batch"]]
            loss = loss_fn(model(augment(x[idx], gen, max_shift)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        val = accuracy(model, xv, yv)
        seconds = time.perf_counter() - started
        history.append({"epoch": epoch + 1, "loss": round(total / steps, 5), "valid_accuracy": val,
                        "seconds": round(seconds, 1)})
        if log:
            print(f"epoch {epoch + 1:2d}  loss {total / steps:.4f}  valid accuracy {val:.4f}  {seconds:.0f} s", flush=True)
        if val > best:
            best, best_state, best_epoch, since = val, copy.deepcopy(model.state_dict()), epoch + 1, 0
        else:
            since += 1
            if since >= recipe["patience"]:
                break
    model.load_state_dict(best_state)
    model.eval()
    recipe_json = {**recipe, "max_shift": max_shift}
    model.config.update({"half": half, "resolution": resolution, "seed": seed, "recipe": recipe_json,
                         "best_epoch": best_epoch, "history": history})
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domains.images.train_classifier",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--half", required=True, choices=sorted(ROLES.values()))
    parser.add_argument("--resolution", type=int, default=28, choices=RESOLUTIONS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help=f"maximum epochs (default {RECIPE['epochs']})")
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="checkpoint folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = train(args.half, args.resolution, args.seed, args.epochs)
    seconds = time.perf_counter() - started
    metrics = {split: accuracy(model, *load_mnist(split, args.resolution)) for split in ("valid", "test")}
    model.config["metrics"] = {"valid_accuracy": metrics["valid"], "test_accuracy": metrics["test"]}
    stem = f"classifier_{args.half}_{args.resolution}"
    path = args.out / f"{stem}.pt"
    model.save(path)
    command = (f"python -m domains.images.train_classifier --half {args.half} --resolution {args.resolution} "
               f"--seed {args.seed}" + (f" --epochs {args.epochs}" if args.epochs else ""))  # --out changes nothing
    summary = {"half": args.half, "resolution": args.resolution, "seed": args.seed,
               "test_accuracy": metrics["test"], "valid_accuracy": metrics["valid"],
               "epochs_run": len(model.config["history"]), "best_epoch": model.config["best_epoch"],
               "train_seconds": round(seconds, 1), "parameters": sum(p.numel() for p in model.parameters()),
               "torch": torch.__version__, "command": command, "history": model.config["history"]}
    (args.out / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n== classifier {args.half} at {args.resolution} px: {seconds:.0f} s, {path} "
          f"({path.stat().st_size / 1e6:.2f} MB); valid accuracy {metrics['valid']:.4f}, test accuracy {metrics['test']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
