"""Train the molecule masked-diffusion prior on the token file written by ``prepare_data``.

    python -m domains.molecules.train_prior --config tiny --seconds 170         # CPU, about three minutes
    python -m domains.molecules.train_prior --config full --seconds 450         # GPU, as many steps as fit

Needs only torch, numpy, pandas, this repository and the token file (``--data``, default
``domains/molecules/data/moses_tokens.npz.xz``): no RDKit, selfies or molsets, so it runs on a bare GPU machine.
``--seconds`` times a few steps first and trains as many as fit (the count used is stored in the checkpoint's
meta, so ``--steps N`` reproduces the run). The full configuration ships half-precision weights. Writes
``<checkpoint>_history.csv`` beside the checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workbench.generative import train_prior
from workbench.generative.training import add_prior_arguments, finish_checkpoint, sized_options

from .data import TOKEN_FILE, read_token_file
from .prior import CONFIGS, checkpoint_path, new_prior
from .vocab import alphabet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=TOKEN_FILE, help="token file from prepare_data")
    parser.add_argument("--valid", type=int, default=None, help="validation molecules for the ELBO (default: 2000; "
                        "500 for tiny)")
    add_prior_arguments(parser, CONFIGS)
    args = parser.parse_args(argv)

    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN time its dilated-convolution kernels once
    splits = read_token_file(args.data, alphabet())
    train, valid = splits["train"], splits["valid"][:args.valid or (500 if args.config == "tiny" else 2000)]
    config = CONFIGS[args.config]["train"]
    options = sized_options(config, new_prior(args.config).to(args.device),
                            train[:config["batch_size"]].to(args.device), args.seconds, args.steps)
    torch.manual_seed(args.seed)
    model = new_prior(args.config).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"prior {args.config}: {n_params / 1e6:.2f}M parameters, {len(train)} training molecules, "
          f"{options['steps']} steps, {args.device}", flush=True)
    out = Path(args.out or checkpoint_path(args.config))
    result = train_prior(model, train, valid, seed=args.seed, checkpoint=out, **options)
    finish_checkpoint(result, out, half=args.config == "full")  # ship half-precision weights
    print(json.dumps({"config": args.config, "parameters": n_params, "steps": options["steps"],
                      "best_valid_nelbo_per_token": result.best_valid, "seconds": round(result.seconds, 1),
                      "checkpoint": str(out), "megabytes": round(out.stat().st_size / 1e6, 2)}), flush=True)


if __name__ == "__main__":
    main()
