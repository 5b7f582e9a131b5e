"""Train the layout masked-diffusion prior on the train split (validation: the valid split).

    python -m domains.layouts.train_prior --config full --seconds 1500    # as many steps as fit (CPU or GPU)
    python -m domains.layouts.train_prior --config tiny                   # CPU, about a minute

Pages are capped per PDF (``--max-per-pdf``, default 50) so that a few long manuals do not dominate.
``--seconds`` times a few steps first and trains as many as fit; the step count is printed and stored in the
history, so ``--steps N`` reproduces a run. Writes ``checkpoints/prior_<config>.pt`` and ``_history.csv``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workbench.generative import train_prior
from workbench.generative.training import add_prior_arguments, finish_checkpoint, sized_options

from .data import load_split
from .prior import CONFIGS, checkpoint_path, new_prior
from .tokens import default_tokenizer


def tokens(split: str, max_per_pdf: int | None, seed: int = 0) -> torch.Tensor:
    """Token rows ``[n, 125]`` of a split (at most ``max_per_pdf`` pages per PDF)."""
    return default_tokenizer().encode(*load_split(split, max_per_pdf=max_per_pdf, seed=seed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-per-pdf", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    add_prior_arguments(parser, CONFIGS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train, valid = tokens("train", args.max_per_pdf), tokens("valid", 20)
    config = CONFIGS[args.config]["train"]
    options = sized_options(config, new_prior(args.config).to(args.device),
                            train[:config["batch_size"]].to(args.device), args.seconds, args.steps)
    torch.manual_seed(args.seed)
    model = new_prior(args.config).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"layout prior {args.config}: {n_params / 1e6:.2f}M parameters, {len(train)} training layouts, "
          f"{options['steps']} steps, {args.device}", flush=True)
    out = Path(args.out or checkpoint_path(args.config))
    out.parent.mkdir(parents=True, exist_ok=True)
    result = train_prior(model, train, valid, seed=args.seed, checkpoint=out, **options)
    finish_checkpoint(result, out)  # its history beside it (the layout priors ship in float32)
    print(json.dumps({"config": args.config, "parameters": n_params, "steps": options["steps"],
                      "train_layouts": len(train), "best_valid_nelbo_per_token": result.best_valid,
                      "seconds": round(result.seconds, 1), "checkpoint": str(out),
                      "megabytes": round(out.stat().st_size / 1e6, 2)}), flush=True)


if __name__ == "__main__":
    main()
