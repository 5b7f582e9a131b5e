"""Train the corrector of a layout prior on the prior's own mistakes (``workbench.generative.train_corrector``).

    python -m domains.layouts.train_corrector --config full --seconds 600
    python -m domains.layouts.train_corrector --config tiny                  # CPU, under a minute

Needs the prior of the same configuration (``train_prior``). Writes ``checkpoints/corrector_<config>.pt`` and a
``.json`` with the final loss and the accuracy on the valid split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workbench.generative import train_corrector
from workbench.generative.corrector import corrupt

from .prior import CONFIGS, corrector_path, load_prior
from .train_prior import tokens


@torch.no_grad()
def accuracy(corrector: torch.nn.Module, prior: torch.nn.Module, data: torch.Tensor, replace: float,
             seed: int = 1) -> dict[str, float]:
    """Share of right calls on swapped and on kept tokens of ``data`` corrupted as in training (t = 0.5)."""
    g = torch.Generator(device=prior.device).manual_seed(seed)
    x0 = data.to(prior.device)
    t = torch.full((len(x0),), 0.5, device=x0.device)
    tokens_, masked = corrupt(prior, x0, t, replace / 2, g)
    wrong = (tokens_ != x0) & ~masked
    flagged = torch.sigmoid(corrector(tokens_, t)) < 0.5
    kept = (~masked) & ~wrong
    return {"wrong_tokens_flagged": float((flagged & wrong).sum() / wrong.sum().clamp(min=1)),
            "right_tokens_kept": float((~flagged & kept).sum() / kept.sum().clamp(min=1)),
            "wrong_share": float(wrong.sum() / (~masked).sum())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="full")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--replace", type=float, default=0.3, help="largest share of unmasked tokens swapped")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    options = dict(CONFIGS[args.config]["corrector"])
    steps = args.steps or options.pop("steps")
    options.pop("steps", None)
    batch = options.pop("batch_size")
    prior = load_prior(args.config, args.device)
    train, valid = tokens("train", 50), tokens("valid", 20)
    corrector, losses = train_corrector(prior, train, steps=steps, batch_size=batch, replace=args.replace,
                                        seed=args.seed, seconds=args.seconds, name=f"layouts-{args.config}",
                                        log_every=max(1, steps // 10), **options)
    out = corrector_path(args.config)
    corrector.save(out)
    report = {"config": args.config, "steps": len(losses), "final_loss": sum(losses[-50:]) / len(losses[-50:]),
              "valid": accuracy(corrector, prior, valid, args.replace), "replace": args.replace,
              "parameters": sum(p.numel() for p in corrector.parameters())}
    Path(str(out).replace(".pt", ".json")).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
