"""Train the differentiable surrogate of the RDKit scores (``surrogate.TARGETS``).

    python -m domains.molecules.train_surrogate --config tiny       # CPU: scores the molecules (RDKit), then trains
    python -m domains.molecules.train_surrogate --config full --device cuda   # GPU: from the scored targets file
    python -m domains.molecules.train_surrogate --config full --relaxed --device cuda   # then: soft rows (DRAKES)

Samplers move designs away from the data, so the surrogate learns from three sources, each scored by RDKit
(``objectives.score_smiles`` over a process pool): MOSES molecules (a seeded subset of the token file's train
rows), such rows with 5 to 30 % of their symbols replaced at random ("mutated"), and samples of the shipped tiny
prior. R^2 and mean absolute error are reported per source on held-out rows (the token file's held-out rows,
mutated held-out rows, prior samples of another seed).

DRAKES and DPS score *relaxed* designs: token probabilities, not one-hot rows. A surrogate fitted to one-hot rows
alone scores such rows arbitrarily (the full one rated fully relaxed prior samples 0.47 QED against 0.70 for
their hard draws), so its gradient does not point to better molecules. ``--relaxed`` fine-tunes a trained
surrogate (the teacher, a frozen copy) so that a soft row scores as the teacher's mean score of hard rows drawn
from it, ``E_{x ~ Cat(p)} f(x)``, while one-hot rows keep their RDKit targets: the soft score is then the
expected score that fine-tuning should raise. Soft rows mimic DRAKES' relaxed steps: a share of each row's
positions become Gumbel-softmax draws around their token (``relax_rows``).

Scoring needs RDKit and selfies and is the slow part (about 2 ms per molecule and core); its result is kept in
``--targets`` (default ``data/surrogate_targets.npz``, uint8 token rows and float32 targets, not committed), which
later runs read, so a GPU machine with neither package can train the ``full`` configuration from it.
Writes ``checkpoints/surrogate_<config>.pt`` and ``.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.checkpoints import read_checkpoint

from .data import DATA_DIR, TOKEN_FILE, read_token_file
from .prior import load_prior, vocab_size
from .surrogate import CONFIGS, TARGETS, Surrogate, checkpoint_path
from .vocab import alphabet, length

SOURCES = ("moses", "mutated", "prior")
TARGETS_FILE = DATA_DIR / "surrogate_targets.npz"


def mutate(rows: torch.Tensor, generator: torch.Generator, low: float = 0.05, high: float = 0.3) -> torch.Tensor:
    """Each row with a share ``U(low, high)`` of its symbols replaced by uniformly drawn symbols (padding kept)."""
    rate = low + (high - low) * torch.rand(len(rows), 1, generator=generator)
    flip = (torch.rand(rows.shape, generator=generator) < rate) & (rows != len(alphabet()))
    drawn = torch.randint(0, len(alphabet()), rows.shape, generator=generator)
    return torch.where(flip, drawn, rows)


def prior_samples(n: int, seed: int, steps: int = 32, batch: int = 1000) -> torch.Tensor:
    """``n`` samples of the shipped tiny prior (``steps`` reverse steps)."""
    prior = load_prior("tiny")
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([prior.sample(min(batch, n - i), steps, generator) for i in range(0, n, batch)])


def score_sets(args: argparse.Namespace) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Token rows and RDKit targets of every source, training and held-out: ``{"moses": (x, y), ...,
    "moses_valid": (x, y), ...}`` (rows that are no molecule dropped). Needs RDKit and selfies."""
    from .objectives import Scorer
    from .tokens import decode_one, to_selfies

    splits = read_token_file(args.data, alphabet())
    generator = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(splits["train"]), generator=generator)
    rows = {"moses": splits["train"][order[:args.train]],
            "mutated": mutate(splits["train"][order[args.train:args.train + args.mutated]], generator),
            "moses_valid": splits["valid"][:args.valid],
            "mutated_valid": mutate(splits["valid"][args.valid:args.valid + args.valid // 2], generator)}
    if args.samples:
        rows["prior"] = prior_samples(args.samples, args.seed)
        rows["prior_valid"] = prior_samples(args.valid // 2, args.seed + 1)
    scorer = Scorer(args.workers, threshold=0)
    out = {}
    try:
        for name, x in rows.items():
            values = scorer([decode_one(s)[0] for s in to_selfies(x)], TARGETS)
            ok = torch.from_numpy(np.isfinite(values).all(axis=1))
            out[name] = (x[ok], torch.from_numpy(values).float()[ok])
    finally:
        scorer.close()
    return out


def write_targets(path: Path, sets: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    arrays = {}
    for name, (x, y) in sets.items():
        arrays[f"x_{name}"], arrays[f"y_{name}"] = x.numpy().astype(np.uint8), y.numpy()
    np.savez_compressed(path, names=np.array(TARGETS), alphabet=np.array(alphabet()), **arrays)


def read_targets(path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    with np.load(path, allow_pickle=False) as blob:
        if [str(s) for s in blob["alphabet"]] != alphabet():
            raise ValueError(f"{path} was scored with another SELFIES vocabulary; re-run with --rescore")
        columns = [[str(n) for n in blob["names"]].index(n) for n in TARGETS]
        return {k[2:]: (torch.from_numpy(blob[k].astype(np.int64)), torch.from_numpy(blob["y_" + k[2:]][:, columns]))
                for k in blob.files if k.startswith("x_")}


def r_squared(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Coefficient of determination per column ``[k]``."""
    residual = ((pred - true) ** 2).sum(0)
    total = ((true - true.mean(0)) ** 2).sum(0)
    return 1.0 - residual / total


def run_epochs(model: Surrogate, x: torch.Tensor, epochs: int, batch_size: int, optimizer: torch.optim.Optimizer,
               schedule: Any, generator: torch.Generator, batch_loss: Callable[[torch.Tensor], torch.Tensor],
               label: str = "epoch") -> list[float]:
    """The training loop both fits share: shuffled batches of row indices (drawn with ``generator``, on its
    device), ``batch_loss(index)`` minimized with ``optimizer`` and stepped ``schedule``; returns the mean loss
    per epoch and leaves the model in eval mode."""
    device = model.mean.device
    history = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator, device=generator.device).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, len(x) - batch_size + 1, batch_size):
            loss = batch_loss(order[i:i + batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.detach()
        history.append(float(total) / (len(x) // batch_size))
        print(f"{label} {len(history)}: loss {history[-1]:.4f}", flush=True)
    model.eval()
    return history


def fit(model: Surrogate, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, lr: float,
        seed: int) -> list[float]:
    """AdamW with a one-cycle schedule on the standardized targets' mean squared error (on the model's device);
    returns the mean loss per epoch."""
    device = model.mean.device
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * (len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.05)
    x, target = x.to(device), ((y.to(device) - model.mean) / model.std)

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        onehot = torch.nn.functional.one_hot(x[index], vocab_size()).float()
        return torch.nn.functional.mse_loss(model.standardized(onehot), target[index])

    return run_epochs(model, x, epochs, batch_size, optimizer, schedule, generator, batch_loss)


def relax_rows(x: torch.Tensor, generator: torch.Generator, max_share: float = 0.6,
               max_margin: float = 6.0) -> torch.Tensor:
    """Soft rows ``[n, L, V]`` around hard rows ``x: [n, L]``: a share ``U(0, max_share)`` of each row's positions
    become Gumbel-softmax draws (temperature 1) from logits that favour the row's token by ``U(0, max_margin)``,
    as DRAKES' relaxed steps write them; the other positions stay one-hot."""
    n, size, vocab = len(x), x.shape[1], vocab_size()
    device = x.device
    onehot = torch.nn.functional.one_hot(x, vocab).float()
    margin = max_margin * torch.rand(n, 1, 1, generator=generator, device=device)
    uniform = torch.rand(n, size, vocab, generator=generator, device=device).clamp(1e-12, 1 - 1e-7)
    soft = torch.softmax(margin * onehot - torch.log(-torch.log(uniform)), dim=-1)
    share = max_share * torch.rand(n, 1, generator=generator, device=device)
    picked = torch.rand(n, size, generator=generator, device=device) < share
    return torch.where(picked[..., None], soft, onehot)


@torch.no_grad()
def expected_score(model: Surrogate, probs: torch.Tensor, draws: int, generator: torch.Generator) -> torch.Tensor:
    """Monte-Carlo mean of ``model``'s standardized scores ``[n, k]`` over ``draws`` hard rows drawn from the
    token probabilities ``probs: [n, L, V]``."""
    n, size, vocab = probs.shape
    picks = torch.multinomial(probs.reshape(-1, vocab), draws, replacement=True, generator=generator)
    hard = picks.reshape(n, size, draws).permute(2, 0, 1).reshape(draws * n, size)
    return model.standardized(torch.nn.functional.one_hot(hard, vocab).float()).reshape(draws, n, -1).mean(0)


def fit_relaxed(model: Surrogate, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, lr: float,
                seed: int, draws: int = 8, teacher: Surrogate | None = None) -> list[float]:
    """Fine-tune ``model`` so that soft rows (``relax_rows``) score as ``teacher`` (default: a frozen copy of
    ``model`` as it is now) scores their hard draws on average (``expected_score``), and one-hot rows as RDKit
    does: the sum of the two mean squared errors on standardized targets, AdamW with a cosine schedule. Returns the
    mean loss per epoch."""
    device = model.mean.device
    teacher = (copy.deepcopy(model) if teacher is None else teacher).eval().requires_grad_(False)
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * (len(x) // batch_size))
    x, target = x.to(device), ((y.to(device) - model.mean) / model.std)

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        soft = relax_rows(x[index], generator)
        soft_target = expected_score(teacher, soft, draws, generator)
        onehot = torch.nn.functional.one_hot(x[index], vocab_size()).float()
        return (torch.nn.functional.mse_loss(model.standardized(onehot), target[index])
                + torch.nn.functional.mse_loss(model.standardized(soft), soft_target))

    return run_epochs(model, x, epochs, batch_size, optimizer, schedule, generator, batch_loss, "relaxed epoch")


@torch.no_grad()
def relaxed_agreement(model: Surrogate, teacher: Surrogate, x: torch.Tensor, seed: int, draws: int = 32,
                      batch_size: int = 1024) -> torch.Tensor:
    """R^2 per target ``[k]`` of ``model``'s scores of soft rows around ``x`` against ``teacher``'s mean score of
    their hard draws: how well a relaxed design's score tells its expected score."""
    device = model.mean.device
    generator = torch.Generator(device=device).manual_seed(seed)
    pred, true = [], []
    for i in range(0, len(x), batch_size):
        soft = relax_rows(x[i:i + batch_size].to(device), generator)
        pred.append(model.standardized(soft).cpu())
        true.append(expected_score(teacher, soft, draws, generator).cpu())
    return r_squared(torch.cat(pred), torch.cat(true))


@torch.no_grad()
def predict(model: Surrogate, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    device = model.mean.device
    return torch.cat([model(torch.nn.functional.one_hot(x[i:i + batch_size].to(device), vocab_size()).float()).cpu()
                      for i in range(0, len(x), batch_size)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    parser.add_argument("--targets", type=Path, default=TARGETS_FILE, help="scored molecules (read, or written)")
    parser.add_argument("--rescore", action="store_true", help="score anew even if --targets exists")
    parser.add_argument("--score-only", action="store_true", help="write --targets and stop (no training)")
    parser.add_argument("--data", type=Path, default=TOKEN_FILE, help="token file from prepare_data (for scoring)")
    parser.add_argument("--train", type=int, default=120_000, help="MOSES training molecules to score")
    parser.add_argument("--mutated", type=int, default=60_000, help="mutated MOSES training rows to score")
    parser.add_argument("--samples", type=int, default=20_000, help="tiny-prior samples to score (0: none)")
    parser.add_argument("--valid", type=int, default=4000, help="held-out MOSES rows (half as many of the others)")
    parser.add_argument("--workers", type=int, default=2, help="RDKit scoring processes")
    parser.add_argument("--epochs", type=int, default=None, help="override the configuration's epochs")
    parser.add_argument("--relaxed", action="store_true",
                        help="fine-tune the trained surrogate of --config (read from --out) on soft rows too")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="checkpoint (default: the shipped one)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    torch.manual_seed(args.seed)
    if args.targets.exists() and not args.rescore:
        sets = read_targets(args.targets)
    else:
        sets = score_sets(args)
        write_targets(args.targets, sets)
    scored = time.perf_counter() - started
    print(f"{sum(len(x) for x, _ in sets.values())} scored molecules ({scored:.0f} s)", flush=True)
    if args.score_only:
        return
    sources = [k for k in SOURCES if k in sets]
    x_train = torch.cat([sets[k][0] for k in sources])
    y_train = torch.cat([sets[k][1] for k in sources])
    recipe = CONFIGS[args.config]
    out = args.out or checkpoint_path(args.config)
    metrics: dict = {"r2": {}, "mae": {}}
    if args.relaxed:
        model = Surrogate.from_checkpoint(read_checkpoint(str(out))).float().to(args.device).requires_grad_(True)
        config = {k: v for k, v in model.config.items() if k != "metrics"}
        teacher = copy.deepcopy(model).eval().requires_grad_(False)  # the one-hot fit: scores the hard draws
        # how the one-hot fit scores soft rows, before: R^2 against the mean score of their hard draws
        metrics["relaxed_r2_before"] = {source: dict(zip(TARGETS, [round(float(v), 4) for v in relaxed_agreement(
            model, teacher, sets[f"{source}_valid"][0], args.seed + 1)])) for source in sources}
        epochs = args.epochs or recipe["relaxed_epochs"]
        history = fit_relaxed(model, x_train, y_train, epochs, recipe["batch_size"], recipe["relaxed_lr"], args.seed,
                              teacher=teacher)
        metrics["relaxed_r2"] = {source: dict(zip(TARGETS, [round(float(v), 4) for v in relaxed_agreement(
            model, teacher, sets[f"{source}_valid"][0], args.seed + 1)])) for source in sources}
        metrics["first_fit"] = model.config.get("metrics", {})
    else:
        config = {**recipe["model"], "targets": list(TARGETS), "vocab_size": vocab_size(), "length": length(),
                  "mean": y_train.mean(0).tolist(), "std": y_train.std(0).clamp_min(1e-6).tolist()}
        model = Surrogate(config).to(args.device)
        epochs = args.epochs or recipe["epochs"]
        history = fit(model, x_train, y_train, epochs, recipe["batch_size"], recipe["lr"], args.seed)
    for source in sources:
        x_valid, y_valid = sets[f"{source}_valid"]
        pred = predict(model, x_valid)
        metrics["r2"][source] = dict(zip(TARGETS, [round(float(v), 4) for v in r_squared(pred, y_valid)]))
        metrics["mae"][source] = dict(zip(TARGETS, [round(float(v), 4) for v in (pred - y_valid).abs().mean(0)]))
    metrics.update({"config": args.config, "relaxed": bool(args.relaxed),
                    "train_molecules": {k: len(sets[k][0]) for k in sources},
                    "valid_molecules": {k: len(sets[f"{k}_valid"][0]) for k in sources}, "epochs": epochs,
                    "seed": args.seed, "final_loss": history[-1], "seconds": round(time.perf_counter() - started, 1)})
    model.cpu().config = {**config, "metrics": metrics}
    model.save(out, half=True)  # 6.6 MB instead of 13 for the full surrogate; predictions move < 0.3 % of a std
    Path(str(out).replace(".pt", ".json")).write_text(json.dumps(metrics, indent=1) + "\n")
    print(json.dumps(metrics), flush=True)


if __name__ == "__main__":
    main()
