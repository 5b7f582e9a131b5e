"""Train the DNA masked-diffusion prior on the training split (validation = chr2).

    python -m domains.dna.train_prior --config full --device cuda   # GPU, a few minutes
    python -m domains.dna.train_prior --config tiny                 # CPU, about a minute
"""

from __future__ import annotations

import argparse
import json

import torch

from workbench.generative import train_prior
from workbench.generative.training import add_prior_arguments, finish_checkpoint

from .data import load_tokens
from .prior import CONFIGS, checkpoint_path, new_prior


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_prior_arguments(parser, CONFIGS, seconds=False)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    model = new_prior(args.config).to(args.device)
    train, _ = load_tokens("train")
    valid, _ = load_tokens("validation")
    options = dict(CONFIGS[args.config]["train"])
    if args.steps is not None:
        options["steps"] = args.steps
    n_params = sum(p.numel() for p in model.parameters())
    print(f"prior {args.config}: {n_params / 1e6:.2f}M parameters, {len(train)} training sequences, {args.device}")
    out = args.out or checkpoint_path(args.config)
    result = train_prior(model, train, valid[:2000], seed=args.seed, checkpoint=out, **options)
    finish_checkpoint(result, out, half=args.config == "full")  # ship half-precision weights
    print(json.dumps({"config": args.config, "parameters": n_params, "best_valid_nelbo_per_token": result.best_valid,
                      "seconds": round(result.seconds, 1), "checkpoint": str(out)}))


if __name__ == "__main__":
    main()
