"""Train the layout FID encoder on the train split and write its checkpoint.

    python -m domains.layouts.train_fid [--seconds S] [--steps N] [--device cpu|cuda] [--seed 0] [--out DIR]

The encoder (``fid.LayoutEncoder``) learns to tell real pages from perturbed ones (binary cross-entropy on its
real-vs-fake head), and, as in LayoutGAN++ / LayoutDM's FID networks, to reconstruct each real page from its
feature vector (a training-only MLP head predicts the class, or "absent", and the box of 25 slots in reading order
sorted by (y, x); cross-entropy + 10 x squared error of the present boxes), so the features describe the whole
page, not only its defects. Each batch is half real pages, half perturbed copies of other real pages; the kinds
of perturbation (``KINDS``, with their probabilities) are:

- ``jitter``: Gaussian noise on every box coordinate, its std log-uniform in [0.005, 0.1] per page;
- ``jitter_some``: noise with std log-uniform in [0.02, 0.2] on 1 to 3 elements only;
- ``swap_classes``: 1 to ceil(m / 2) of the m elements get another class;
- ``shuffle``: the classes are permuted among the elements (every box stays, the class-to-box pairing breaks);
- ``drop``: 1 to ceil(m / 3) elements are removed;
- ``duplicate``: 1 to 3 elements are copied with a small offset (std 0.02), so they overlap their original;
- ``shift_scale``: the whole page is scaled about its centre by 1 +- [0.08, 0.3] and shifted by up to 0.1;
- ``random``: every box is replaced by a uniform random box (the classes stay).

Perturbed boxes are fitted back into the page (w, h >= 0.002, inside [0, 1]) like the real ones, so the page edge
gives nothing away. A perturbation that would leave a page unchanged (shuffle of one class, drop of a single
element) falls back to another kind, and the kind applied is what is counted. Validation: every page of the valid
split once real and once perturbed (a fixed seed), accuracy of the sign of the logit, overall and per kind; the
weights with the best validation accuracy are kept. AdamW, linear warm-up then cosine decay; deterministic for a
seed and a number of steps on the CPU. ``--seconds`` sizes the number of steps to that much training time on this
machine (timed on a few steps; the JSON records the steps, which ``--steps`` reproduces exactly).

Writes ``fid_encoder.pt`` (a ``{"format", "config", "state"}`` checkpoint of the encoder only) and
``fid_encoder.json`` (config, recipe, accuracy, seconds, date).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .data import CLASSES, MAX_ELEMENTS, load_split
from .fid import CHECKPOINT_DIR, LayoutEncoder

#: architecture and optimisation recipe (3200 steps: about 7 minutes on one CPU thread)
RECIPE: dict[str, Any] = {"d_model": 128, "heads": 4, "layers": 3, "ff": 256, "frequencies": 6, "recon_hidden": 256,
                          "steps": 3200, "batch": 128, "lr": 1e-3, "wd": 0.01, "warmup": 150,
                          "recon_weight": 1.0, "box_weight": 10.0, "eval_every": 200, "train_max_per_pdf": None,
                          "valid_max_per_pdf": 20}
#: perturbation kind -> probability
KINDS: dict[str, float] = {"jitter": 0.25, "jitter_some": 0.15, "swap_classes": 0.15, "shuffle": 0.1, "drop": 0.1,
                           "duplicate": 0.1, "shift_scale": 0.1, "random": 0.05}
MIN_SIZE = 0.002
NUM_CLASSES = len(CLASSES)


# ---------------------------------------------------------------- perturbations (one page at a time)

def _uniform(gen: torch.Generator, lo: float = 0.0, hi: float = 1.0, size: Sequence[int] = ()) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(tuple(size), generator=gen, dtype=torch.float64)


def _randint(gen: torch.Generator, lo: int, hi: int) -> int:
    """A random integer in [lo, hi] (inclusive)."""
    return int(torch.randint(lo, hi + 1, (), generator=gen))


def _log_uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return float(math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * float(_uniform(gen))))


def fit_to_page(b: torch.Tensor) -> torch.Tensor:
    """Boxes ``[m, 4]`` with w, h in [MIN_SIZE, 1] and the corners inside the page."""
    wh = b[:, 2:].clamp(MIN_SIZE, 1.0)
    xy = torch.minimum(b[:, :2].clamp(min=0.0), 1.0 - wh)
    return torch.cat([xy, wh], dim=1)


def _random_boxes(gen: torch.Generator, m: int) -> torch.Tensor:
    wh = _uniform(gen, 0.02, 0.8, (m, 2))
    xy = _uniform(gen, size=(m, 2)) * (1.0 - wh)
    return torch.cat([xy, wh], dim=1)


def perturb(c: torch.Tensor, b: torch.Tensor, gen: torch.Generator, kind: str | None = None
            ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """A perturbed copy of one page (``c [m]`` classes, ``b [m, 4]`` float64 boxes of its present elements) and
    the kind applied (``kind``, or one drawn from ``KINDS``; an identity falls back to another kind)."""
    if kind is None:
        names = list(KINDS)
        kind = names[int(torch.multinomial(torch.tensor([KINDS[k] for k in names]), 1, generator=gen))]
    m = len(c)
    c, b = c.clone(), b.clone()
    if m == 0:  # an empty page: add a few random elements
        k = _randint(gen, 1, 4)
        return torch.randint(0, NUM_CLASSES, (k,), generator=gen), fit_to_page(_random_boxes(gen, k)), "random"
    if kind == "shuffle" and bool((c == c[0]).all()):
        kind = "swap_classes"
    if kind == "drop" and m < 2:
        kind = "random"
    if kind == "duplicate" and m >= MAX_ELEMENTS:
        kind = "jitter"
    if kind == "jitter":
        b = b + _log_uniform(gen, 0.005, 0.1) * torch.randn(b.shape, generator=gen, dtype=b.dtype)
    elif kind == "jitter_some":
        idx = torch.randperm(m, generator=gen)[:_randint(gen, 1, min(3, m))]
        b[idx] += _log_uniform(gen, 0.02, 0.2) * torch.randn((len(idx), 4), generator=gen, dtype=b.dtype)
    elif kind == "swap_classes":
        idx = torch.randperm(m, generator=gen)[:_randint(gen, 1, math.ceil(m / 2))]
        c[idx] = (c[idx] + torch.randint(1, NUM_CLASSES, (len(idx),), generator=gen)) % NUM_CLASSES
    elif kind == "shuffle":
        while True:
            perm = torch.randperm(m, generator=gen)
            if bool((c[perm] != c).any()):
                break
        c = c[perm]
    elif kind == "drop":
        keep = torch.randperm(m, generator=gen)[_randint(gen, 1, math.ceil(m / 3)):].sort().values
        c, b = c[keep], b[keep]
    elif kind == "duplicate":
        idx = torch.randperm(m, generator=gen)[:_randint(gen, 1, min(3, MAX_ELEMENTS - m))]
        copies = b[idx].clone()
        copies[:, :2] += 0.02 * torch.randn((len(idx), 2), generator=gen, dtype=b.dtype)
        c, b = torch.cat([c, c[idx]]), torch.cat([b, copies])
    elif kind == "shift_scale":
        sign = 1.0 if float(_uniform(gen)) < 0.5 else -1.0
        s = 1.0 + sign * float(_uniform(gen, 0.08, 0.3))
        shift = _uniform(gen, -0.1, 0.1, (2,))
        b[:, :2] = (b[:, :2] - 0.5) * s + 0.5 + shift
        b[:, 2:] = b[:, 2:] * s
    elif kind == "random":
        b = _random_boxes(gen, m)
    else:
        raise ValueError(f"unknown perturbation {kind!r}; choose from {sorted(KINDS)}")
    return c, fit_to_page(b), kind


def perturb_batch(classes: torch.Tensor, boxes: torch.Tensor, gen: torch.Generator, kind: str | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Perturbed copies of a batch of layouts ``[n, 25]``, ``[n, 25, 4]`` (present elements first in the output,
    absent slots -1 / 0) and the kind applied to each."""
    out_c = torch.full_like(classes, -1)
    out_b = torch.zeros_like(boxes)
    kinds = []
    for i in range(len(classes)):
        present = classes[i] >= 0
        c, b, k = perturb(classes[i][present], boxes[i][present].double(), gen, kind)
        out_c[i, :len(c)] = c
        out_b[i, :len(c)] = b.to(boxes.dtype)
        kinds.append(k)
    return out_c, out_b, kinds


def jitter_layouts(classes: torch.Tensor, boxes: torch.Tensor, std: float, gen: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every present box of ``[n, 25]``, ``[n, 25, 4]`` layouts plus Gaussian noise of ``std`` on x, y, w and h,
    fitted back into the page (w, h >= 0.002); absent slots stay -1 / 0. The graded corruption of the FID checks."""
    noisy = boxes.double() + std * torch.randn(boxes.shape, generator=gen, dtype=torch.float64)
    noisy = fit_to_page(noisy.reshape(-1, 4)).reshape(boxes.shape)
    return classes.clone(), torch.where((classes >= 0).unsqueeze(-1), noisy, 0.0).to(boxes.dtype)


def random_layouts(classes: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same classes with uniform random boxes (w, h in [0.02, 0.8], inside the page)."""
    boxes = _random_boxes(gen, classes.numel()).reshape(*classes.shape, 4)
    return classes.clone(), torch.where((classes >= 0).unsqueeze(-1), boxes, 0.0).float()


# ---------------------------------------------------------------- reconstruction targets and head

def reading_order(classes: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Layouts with their present elements sorted by (y, x) of the top-left corner, absent slots last."""
    absent = classes < 0
    y = torch.where(absent, torch.full_like(boxes[..., 1], 10.0), boxes[..., 1])
    x = torch.where(absent, torch.full_like(boxes[..., 0], 10.0), boxes[..., 0])
    order = torch.argsort(x, dim=1, stable=True)
    order = order.gather(1, torch.argsort(y.gather(1, order), dim=1, stable=True))
    return classes.gather(1, order), boxes.gather(1, order.unsqueeze(-1).expand(-1, -1, 4))


class Reconstructor(nn.Module):
    """Training-only head: features ``[n, d]`` -> class logits ``[n, 25, 6]`` (last = absent) and boxes."""

    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, MAX_ELEMENTS * (NUM_CLASSES + 5)))

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(feats).view(len(feats), MAX_ELEMENTS, NUM_CLASSES + 5)
        return out[..., :NUM_CLASSES + 1], torch.sigmoid(out[..., NUM_CLASSES + 1:])


def reconstruction_loss(recon: Reconstructor, feats: torch.Tensor, classes: torch.Tensor, boxes: torch.Tensor,
                        box_weight: float) -> torch.Tensor:
    """Cross-entropy of the slot classes (absent = class 5) + ``box_weight`` x squared error of present boxes;
    ``classes, boxes`` in reading order."""
    logits, pred = recon(feats)
    target = torch.where(classes < 0, torch.full_like(classes, NUM_CLASSES), classes)
    ce = F.cross_entropy(logits.reshape(-1, NUM_CLASSES + 1), target.reshape(-1))
    present = classes >= 0
    se = ((pred - boxes) ** 2).sum(-1)[present]
    return ce + box_weight * (se.mean() if len(se) else se.sum())


# ---------------------------------------------------------------- training

@torch.no_grad()
def validate(model: LayoutEncoder, real: tuple[torch.Tensor, torch.Tensor],
             fake: tuple[torch.Tensor, torch.Tensor, list[str]], batch: int = 1024) -> dict[str, Any]:
    """Real-vs-fake accuracy (logit > 0 = real) on the real pages and their perturbed copies, overall and per
    kind (the fraction of each kind's copies called fake)."""
    model.eval()
    dev = model.device

    def logits(c: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([model.logits(c[i:i + batch].to(dev), b[i:i + batch].to(dev)).cpu()
                          for i in range(0, len(c), batch)])

    lr, lf = logits(*real), logits(fake[0], fake[1])
    kinds = fake[2]
    out: dict[str, Any] = {"accuracy": float(((lr > 0).float().sum() + (lf <= 0).float().sum()) / (len(lr) + len(lf))),
                           "real_accuracy": float((lr > 0).float().mean()),
                           "fake_accuracy": float((lf <= 0).float().mean())}
    out["per_kind"] = {k: round(float((lf[[i for i, x in enumerate(kinds) if x == k]] <= 0).float().mean()), 4)
                       for k in KINDS if k in kinds}
    return out


def _lr_factor(step: int, steps: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def _make_batch(classes: torch.Tensor, boxes: torch.Tensor, sorted_c: torch.Tensor, sorted_b: torch.Tensor,
                gen: torch.Generator, batch: int) -> tuple[torch.Tensor, ...]:
    half = batch // 2
    idx = torch.randint(0, len(classes), (batch,), generator=gen)
    real, other = idx[:half], idx[half:]
    fc, fb, _ = perturb_batch(classes[other], boxes[other], gen)
    c = torch.cat([classes[real], fc])
    b = torch.cat([boxes[real], fb])
    y = torch.cat([torch.ones(half), torch.zeros(batch - half)])
    return c, b, y, sorted_c[real], sorted_b[real]


def time_steps(seconds: float, model: LayoutEncoder, recon: Reconstructor, data: tuple[torch.Tensor, ...],
               recipe: dict[str, Any], device: torch.device) -> int:
    """How many training steps fit in ``seconds`` (median of 8 timed steps after 2 of warm-up on throwaway
    copies, plus 8 % for validation)."""
    model, recon = copy.deepcopy(model), copy.deepcopy(recon)
    opt = torch.optim.AdamW([*model.parameters(), *recon.parameters()], lr=1e-4)
    gen = torch.Generator().manual_seed(12345)
    times = []
    for _ in range(10):
        started = time.perf_counter()
        _step(model, recon, opt, data, gen, recipe, device)
        times.append(time.perf_counter() - started)
    per_step = sorted(times[2:])[len(times[2:]) // 2]
    return max(100, int(seconds / (per_step * 1.08)))


def _step(model: LayoutEncoder, recon: Reconstructor, opt: torch.optim.Optimizer, data: tuple[torch.Tensor, ...],
          gen: torch.Generator, recipe: dict[str, Any], device: torch.device) -> tuple[float, float]:
    model.train()
    c, b, y, sc, sb = (t.to(device) for t in _make_batch(*data, gen, recipe["batch"]))
    feats = model(c, b)
    bce = F.binary_cross_entropy_with_logits(model.head(feats).squeeze(-1), y)
    rec = reconstruction_loss(recon, feats[:len(sc)], sc, sb, recipe["box_weight"])
    loss = bce + recipe["recon_weight"] * rec
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_([*model.parameters(), *recon.parameters()], 1.0)
    opt.step()
    return float(bce.detach()), float(rec.detach())


def train(seed: int = 0, steps: int | None = None, seconds: float | None = None, device: str = "cpu",
          log: bool = True, recipe: dict[str, Any] | None = None) -> tuple[LayoutEncoder, dict[str, Any]]:
    """Train an encoder; returns it (best validation accuracy, eval mode, on the CPU) and its metrics."""
    recipe = dict(RECIPE if recipe is None else recipe)
    dev = torch.device(device)
    torch.manual_seed(seed)
    classes, boxes = load_split("train", max_per_pdf=recipe["train_max_per_pdf"])
    vc, vb = load_split("valid", max_per_pdf=recipe["valid_max_per_pdf"])
    sorted_c, sorted_b = reading_order(classes, boxes)
    data = (classes, boxes, sorted_c, sorted_b)
    vgen = torch.Generator().manual_seed(seed + 7919)
    vfake = perturb_batch(vc, vb, vgen)

    model = LayoutEncoder({k: recipe[k] for k in ("d_model", "heads", "layers", "ff", "frequencies")}).to(dev)
    recon = Reconstructor(recipe["d_model"], recipe["recon_hidden"]).to(dev)
    if seconds is not None:
        steps = time_steps(seconds, model, recon, data, recipe, dev)
        if log:
            print(f"{steps} steps fit in {seconds:.0f} s", flush=True)
    steps = int(steps or recipe["steps"])
    recipe["steps"] = steps
    gen = torch.Generator().manual_seed(seed + 1)
    params = [*model.parameters(), *recon.parameters()]
    opt = torch.optim.AdamW(params, lr=recipe["lr"], weight_decay=recipe["wd"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, steps, recipe["warmup"]))
    best, best_state, best_step = -1.0, copy.deepcopy(model.state_dict()), 0
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    run_bce = run_rec = 0.0
    for step in range(1, steps + 1):
        bce, rec = _step(model, recon, opt, data, gen, recipe, dev)
        sched.step()
        run_bce, run_rec = run_bce + bce, run_rec + rec
        if step % recipe["eval_every"] == 0 or step == steps:
            n = recipe["eval_every"] if step % recipe["eval_every"] == 0 else step % recipe["eval_every"]
            val = validate(model, (vc, vb), vfake)
            row = {"step": step, "bce": round(run_bce / n, 4), "recon": round(run_rec / n, 4),
                   "valid_accuracy": round(val["accuracy"], 4), "seconds": round(time.perf_counter() - started, 1)}
            history.append(row)
            run_bce = run_rec = 0.0
            if log:
                print(f"step {step:5d}  bce {row['bce']:.4f}  recon {row['recon']:.4f}  valid accuracy "
                      f"{val['accuracy']:.4f} (real {val['real_accuracy']:.3f}, fake {val['fake_accuracy']:.3f})  "
                      f"{row['seconds']:.0f} s", flush=True)
            if val["accuracy"] > best:
                best, best_state, best_step = val["accuracy"], copy.deepcopy(model.state_dict()), step
    seconds_used = time.perf_counter() - started
    model.load_state_dict(best_state)
    model = model.cpu().eval()
    val = validate(model, (vc, vb), vfake)
    metrics = {"valid": val, "best_step": best_step, "train_seconds": round(seconds_used, 1),
               "train_pages": len(classes), "valid_pages": len(vc), "history": history}
    return model, metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m domains.layouts.train_fid", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=None,
                        help="size the number of steps to this much training time (default: the recipe's "
                             f"{RECIPE['steps']} steps)")
    parser.add_argument("--steps", type=int, default=None, help="number of training steps (overrides --seconds)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR, help="checkpoint folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model, metrics = train(args.seed, steps=args.steps, seconds=None if args.steps else args.seconds,
                           device=args.device)
    metrics["total_seconds"] = round(time.perf_counter() - started, 1)
    recipe = dict(RECIPE, steps=metrics["history"][-1]["step"])
    model.config.update({"recipe": recipe, "kinds": dict(KINDS), "seed": args.seed})
    path = args.out / "fid_encoder.pt"
    model.save(path)
    summary = {"checkpoint": path.name, "config": model.config,
               "parameters": sum(p.numel() for p in model.parameters()),
               "device": args.device, "threads": args.threads, "date": datetime.date.today().isoformat(),
               "command": " ".join(["python -m domains.layouts.train_fid",
                                    *(argv if argv is not None else sys.argv[1:])]),
               **metrics}
    (args.out / "fid_encoder.json").write_text(json.dumps(summary, indent=2) + "\n")
    v = metrics["valid"]
    print(f"\n== FID encoder: valid accuracy {v['accuracy']:.4f} (real {v['real_accuracy']:.3f}, fake "
          f"{v['fake_accuracy']:.3f}); per kind {v['per_kind']}; {metrics['total_seconds']:.0f} s; {path} "
          f"({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
