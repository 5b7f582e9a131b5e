"""Train a DNA accessibility oracle on one half of the training chromosomes and write its checkpoint.

    python -m domains.dna.train_oracle --half a|b [--seed 0] [--epochs 8] [--out DIR]

One-vs-rest BCE per cell type on the rows of ``data.HALVES[half]``; random reverse-complement and
small shifts as augmentation; the epoch with the best mean validation AUROC (chr2) is kept (early
stopping with patience); then AUROC per cell type on the test chromosome (chr1). Deterministic for a
seed (CPU, 2 threads). Writes ``oracle_<half>.pt`` and ``oracle_<half>.json`` (metrics).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from .data import CELL_TYPES, HALVES, load_tokens, one_hot
from .oracle import CHECKPOINT_DIR, Oracle, reverse_complement

#: architecture and optimisation recipe (chosen on the validation chromosome)
RECIPE: dict[str, Any] = {"channels": [128, 128, 128], "kernels": [15, 5, 3], "pools": [4, 4], "dropout": 0.2,
                          "epochs": 8, "patience": 3, "batch": 128, "lr": 2e-3, "wd": 1e-2, "max_shift": 3}


def auroc(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC per column of ``labels, scores: [n, k]`` (Mann-Whitney U with average ranks for ties) -> ``[k]``."""
    ranks = rankdata(scores, axis=0)
    pos = labels > 0.5
    n_pos, n_neg = pos.sum(axis=0), (~pos).sum(axis=0)
    return ((ranks * pos).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@torch.no_grad()
def predict(model: Oracle, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    """Logits ``[n, 4]`` of one-hot ``x: [n, L, 4]`` in eval mode, in chunks."""
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def evaluate(model: Oracle, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """AUROC per cell type and their mean on one-hot ``x`` with labels ``y: [n, 4]``."""
    scores = auroc(y.numpy(), predict(model, x).numpy())
    out = {cell: float(v) for cell, v in zip(CELL_TYPES, scores)}
    out["mean"] = float(scores.mean())
    return out


def shift(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Shift each row of ``x: [n, L, 4]`` by ``offsets: [n]`` positions, filling with zeros (no base)."""
    n, length, _ = x.shape
    src = torch.arange(length).unsqueeze(0) - offsets.unsqueeze(1)  # [n, L]
    inside = (src >= 0) & (src < length)
    out = x.gather(1, src.clamp(0, length - 1).unsqueeze(2).expand(-1, -1, x.shape[2]))
    return out * inside.unsqueeze(2)


def augment(x: torch.Tensor, gen: torch.Generator, max_shift: int) -> torch.Tensor:
    """Random reverse complement (half the rows) and a random shift of up to ``max_shift`` bases."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    x = torch.where(flip[:, None, None], reverse_complement(x), x)
    if max_shift:
        x = shift(x, torch.randint(-max_shift, max_shift + 1, (len(x),), generator=gen))
    return x


Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def train(half: str, seed: int = 0, epochs: int | None = None, log: bool = True, data: Data | None = None) -> Oracle:
    """Train an oracle on ``half``'s chromosomes; returns the best-validation model (eval mode).

    ``data``: (train tokens ``[n, L]``, train labels ``[n, 4]``, validation tokens, validation labels) to
    use instead of the half's rows and chr2 (tests train on a few hundred rows).
    """
    recipe = RECIPE
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    model = Oracle({k: recipe[k] for k in ("channels", "kernels", "pools", "dropout")})
    tx, ty, vx, vy = data if data is not None else (*load_tokens("train", half), *load_tokens("validation"))
    x, xv = one_hot(tx), one_hot(vx)
    epochs = epochs or recipe["epochs"]
    steps = max(1, len(x) // recipe["batch"])
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["wd"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=epochs * steps, pct_start=0.1)
    bce = nn.BCEWithLogitsLoss()
    best, best_state, since = -1.0, copy.deepcopy(model.state_dict()), 0
    history = []
    for epoch in range(epochs):
        started = time.perf_counter()
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for s in range(steps):
            idx = perm[s * recipe["batch"]:(s + 1) * recipe["batch"]]
            loss = bce(model.strand_logits(augment(x[idx], gen, recipe["max_shift"])), ty[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        val = evaluate(model, xv, vy)
        history.append({"epoch": epoch + 1, "loss": total / steps, "val_auroc": val["mean"]})
        if log:
            print(f"epoch {epoch + 1:2d}  loss {total / steps:.4f}  val AUROC {val['mean']:.4f}  "
                  + " ".join(f"{c} {val[c]:.3f}" for c in CELL_TYPES) + f"  {time.perf_counter() - started:.0f} s",
                  flush=True)
        if val["mean"] > best:
            best, best_state, since = val["mean"], copy.deepcopy(model.state_dict()), 0
        else:
            since += 1
            if since >= recipe["patience"]:
                break
    model.load_state_dict(best_state)
    model.eval()
    model.config.update({"half": half, "chromosomes": list(HALVES[half]), "seed": seed, "recipe": dict(recipe),
                         "history": history})
    return model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domains.dna.train_oracle", description=__doc__.split("\n")[0])
    parser.add_argument("--half", required=True, choices=sorted(HALVES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help=f"maximum epochs (default {RECIPE['epochs']})")
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="checkpoint folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model = train(args.half, args.seed, args.epochs)
    seconds = time.perf_counter() - started
    metrics: dict[str, Any] = {}
    for split in ("validation", "test"):
        tokens, y = load_tokens(split)
        metrics[split] = evaluate(model, one_hot(tokens), y)
    metrics["train_seconds"] = round(seconds, 1)
    metrics["epochs_run"] = len(model.config["history"])
    model.config["metrics"] = metrics
    path = args.out / f"oracle_{args.half}.pt"
    model.save(path)
    summary = {"half": args.half, "seed": args.seed, "chromosomes": list(HALVES[args.half]),
               "parameters": sum(p.numel() for p in model.parameters()), **metrics}
    (args.out / f"oracle_{args.half}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n== oracle {args.half}: {seconds:.0f} s, {path} ({path.stat().st_size / 1e6:.2f} MB)")
    for split in ("validation", "test"):
        print(f"{split:10s} AUROC " + "  ".join(f"{k} {v:.4f}" for k, v in metrics[split].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
