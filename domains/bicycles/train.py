"""Train the three bicycle surrogates from the shipped data and write their checkpoints.

    python -m domains.bicycles.train [--seed 0] [--epochs N] [--out DIR] [--only structure,validity,drag]

Deterministic for a seed (CPU, 2 threads). Prints held-out (test split) R^2 and MAE per target in
original units, and AUROC / accuracy for validity. About 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import (BINARY_COLUMNS, FRAME_COLUMNS, MATERIALS, RIDER_COLUMNS, STRUCTURE_TARGETS, load_aero,
                   load_structure, load_validity)
from .surrogates import CHECKPOINT_DIR, MODELS, Surrogate, encode_frame

# Training recipe per model: architecture, epochs, batch size, learning rate, weight decay.
RECIPES: dict[str, dict[str, Any]] = {
    "structure": {"hidden": [128, 128, 128], "members": 5, "epochs": 150, "batch": 256, "lr": 2e-3, "wd": 1e-3,
                  "huber": 0.5},
    "validity": {"hidden": [64, 64], "members": 5, "epochs": 30, "batch": 256, "lr": 2e-3, "wd": 1e-3},
    "drag": {"hidden": [64, 64], "members": 5, "epochs": 150, "batch": 128, "lr": 2e-3, "wd": 1e-4},
}


# (outer diameter, wall thickness) of the seven frame tubes: section area and modulus become features
TUBES = [(f"{t} OD", f"{t} Thickness") for t in ("BB", "TT", "HT", "DT", "CS", "SS", "ST")]


def frame_config(name: str, task: str, targets: Sequence[str], recipe: dict[str, Any]) -> dict[str, Any]:
    """Config of a model whose inputs are the 37 frame parameters."""
    kinds = ["categorical" if c == "Material" else "binary" if c in BINARY_COLUMNS else "real" for c in FRAME_COLUMNS]
    # tube diameters and wall thicknesses are positive and spread over decades: learn on their logs
    # (the bridge diameters SSB OD / CSB OD hold small negative values in the data, so they stay linear)
    log_inputs = [c for c in FRAME_COLUMNS
                  if c.endswith("Thickness") or (c.endswith(" OD") and c not in ("SSB OD", "CSB OD"))]
    return {"name": name, "task": task, "columns": list(FRAME_COLUMNS), "kinds": kinds,
            "choices": {"Material": list(MATERIALS)}, "log_inputs": log_inputs, "targets": list(targets),
            "log_targets": list(targets) if task == "regression" else [], "sections": [list(p) for p in TUBES],
            "hidden": recipe["hidden"], "members": recipe["members"], "clamp": 6.0}


def rider_config(recipe: dict[str, Any]) -> dict[str, Any]:
    return {"name": "drag", "task": "regression", "columns": list(RIDER_COLUMNS),
            "kinds": ["real"] * len(RIDER_COLUMNS), "choices": {}, "log_inputs": [], "targets": ["drag"],
            "log_targets": [], "hidden": recipe["hidden"], "members": recipe["members"], "clamp": 6.0}


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def fit(model: Surrogate, x: torch.Tensor, target: torch.Tensor, loss_fn: Loss, epochs: int, batch: int, lr: float,
        wd: float, seed: int) -> None:
    """AdamW with a one-cycle (warm-up, then cosine) schedule; each member sees its own shuffle every epoch."""
    gen = torch.Generator().manual_seed(seed + 1)
    feats = model.features(x)  # fixed encoding: compute once
    n, members = feats.shape[0], model.net.members
    steps_per_epoch = max(1, n // batch)
    opt = torch.optim.AdamW(model.net.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.1)
    model.train()
    for _ in range(epochs):
        perm = torch.stack([torch.randperm(n, generator=gen) for _ in range(members)])  # [M, n]
        for s in range(steps_per_epoch):
            idx = perm[:, s * batch:(s + 1) * batch]  # [M, B]
            out = model.net(feats[idx])  # [M, B, k]
            loss = loss_fn(out, target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()


def regression_loss(recipe: dict[str, Any]) -> Loss:
    """Squared error, or Huber (quadratic within ``huber`` standard deviations) when the recipe sets one."""
    delta = recipe.get("huber")
    if delta:
        return lambda out, target: nn.functional.huber_loss(out, target, delta=delta)
    return lambda out, target: ((out - target) ** 2).mean()


# ------------------------------------------------------------------- metrics
def r2_score(y: np.ndarray, p: np.ndarray) -> float:
    return float(1.0 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_metrics(model: Surrogate, x: torch.Tensor, y: pd.DataFrame) -> pd.DataFrame:
    with torch.no_grad():
        mean, std = model.predict(x)
    pred, truth = mean.double().numpy(), y.to_numpy(dtype=np.float64)
    rows = []
    for j, name in enumerate(model.targets):
        t, p = truth[:, j], pred[:, j]
        row = {"target": name, "R2": r2_score(t, p), "MAE": float(np.mean(np.abs(t - p))),
               "median": float(np.median(t))}
        if bool(model.log_out[j]):
            row["R2_log"] = r2_score(np.log(t), np.log(p))
        row["mean_std"] = float(std[:, j].mean())
        rows.append(row)
    return pd.DataFrame(rows).set_index("target")


def classification_metrics(model: Surrogate, x: torch.Tensor, y: pd.Series) -> dict[str, float]:
    with torch.no_grad():
        p = model.predict(x)[0][:, 0].double().numpy()
    labels = y.to_numpy(dtype=np.float64)
    return {"AUROC": auroc(labels, p), "accuracy": float(np.mean((p >= 0.5) == (labels > 0.5))),
            "base_rate": float(labels.mean()), "n": len(labels)}


# ------------------------------------------------------------------- training
def train_structure(seed: int, epochs: int | None = None, train: tuple | None = None) -> Surrogate:
    recipe = RECIPES["structure"]
    torch.manual_seed(seed)
    model = Surrogate(frame_config("structure", "regression", STRUCTURE_TARGETS, recipe))
    xf, yf = train if train is not None else load_structure("train")
    x, y = encode_frame(xf, model.config).float(), torch.from_numpy(yf.to_numpy(dtype=np.float32))
    model.fit_normalization(x, y)
    fit(model, x, model.transform_targets(y), regression_loss(recipe), epochs or recipe["epochs"],
        recipe["batch"], recipe["lr"], recipe["wd"], seed)
    return model


def train_validity(seed: int, epochs: int | None = None, train: tuple | None = None) -> Surrogate:
    recipe = RECIPES["validity"]
    torch.manual_seed(seed)
    model = Surrogate(frame_config("validity", "classification", ["validity"], recipe))
    xf, yv = train if train is not None else load_validity("train")
    x = encode_frame(xf, model.config).float()
    y = torch.from_numpy(yv.to_numpy(dtype=np.float32)).unsqueeze(1)
    model.fit_normalization(x)
    bce = nn.BCEWithLogitsLoss()
    fit(model, x, y, bce, epochs or recipe["epochs"], recipe["batch"], recipe["lr"], recipe["wd"], seed)
    return model


def train_drag(seed: int, epochs: int | None = None, train: tuple | None = None) -> Surrogate:
    recipe = RECIPES["drag"]
    torch.manual_seed(seed)
    model = Surrogate(rider_config(recipe))
    xf, yd = train if train is not None else load_aero("train")
    x = encode_frame(xf, model.config).float()
    y = torch.from_numpy(yd.to_numpy(dtype=np.float32)).unsqueeze(1)
    model.fit_normalization(x, y)
    fit(model, x, model.transform_targets(y), regression_loss(recipe), epochs or recipe["epochs"],
        recipe["batch"], recipe["lr"], recipe["wd"], seed)
    return model


TRAINERS = {"structure": train_structure, "validity": train_validity, "drag": train_drag}
LOADERS = {"structure": load_structure, "validity": load_validity, "drag": load_aero}


def test_metrics(name: str, model: Surrogate, split: str = "test") -> pd.DataFrame | dict[str, float]:
    xf, y = LOADERS[name](split)
    x = encode_frame(xf, model.config).float()
    if name == "validity":
        return classification_metrics(model, x, y)
    return regression_metrics(model, x, y if isinstance(y, pd.DataFrame) else y.to_frame())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domains.bicycles.train", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="epochs for every model (default: each model's recipe)")
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="checkpoint folder")
    parser.add_argument("--only", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; known: {list(MODELS)}")
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    pd.set_option("display.width", 200)
    total = time.perf_counter()
    for name in names:
        started = time.perf_counter()
        model = TRAINERS[name](args.seed, args.epochs)
        metrics = test_metrics(name, model)
        model.config["metrics"] = (metrics if isinstance(metrics, dict)
                                   else {t: {k: float(v) for k, v in row.items()} for t, row in metrics.iterrows()})
        model.config["seed"] = args.seed
        path = args.out / f"{name}.pt"
        model.save(path)
        print(f"\n== {name}: {time.perf_counter() - started:.0f} s, {path} ({path.stat().st_size / 1e6:.2f} MB); test split")
        if isinstance(metrics, dict):
            print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
        else:
            print(metrics.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"\ntotal {time.perf_counter() - total:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
