"""Train the MNIST diffusion prior: ``python -m domains.images.train_prior --config full --device cuda``.

``--seconds`` fits the step count to a time budget: the script times a few training steps first and
trains for as many steps as fit (the count used is stored in the checkpoint's meta, so ``--steps N``
reproduces the run). The full configuration ships half-precision weights (loading casts them back).
Also writes ``<checkpoint>_history.csv`` and, with ``--grid``, a PNG of samples (one row per digit).
"""

from __future__ import annotations

import argparse
import json

import torch

from workbench.generative import train_prior
from workbench.generative.training import add_prior_arguments, finish_checkpoint, steps_that_fit

from .data import load_mnist
from .prior import CONFIGS, checkpoint_path, new_prior


def steps_in(seconds: float, config: str, device: str, batch_size: int) -> int:
    """How many training steps of ``config`` fit in ``seconds`` on ``device`` (timed on a throwaway model)."""
    r = CONFIGS[config]["resolution"]
    return steps_that_fit(seconds, new_prior(config).to(device), torch.rand(batch_size, 1, r, r, device=device),
                          torch.randint(0, 10, (batch_size,), device=device), overhead=0.08)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default=None, help="also write a PNG of samples here")
    add_prior_arguments(parser, CONFIGS)
    args = parser.parse_args(argv)

    cfg = CONFIGS[args.config]
    options = dict(cfg["train"])
    if args.seconds is not None:
        options["steps"] = steps_in(args.seconds, args.config, args.device, options["batch_size"])
    if args.steps is not None:
        options["steps"] = args.steps
    options["eval_every"] = min(options["eval_every"], options["steps"])
    torch.manual_seed(args.seed)
    model = new_prior(args.config).to(args.device)
    train, labels = load_mnist("train", cfg["resolution"])
    valid, _ = load_mnist("valid", cfg["resolution"])
    n_params = sum(p.numel() for p in model.parameters())
    print(f"prior {args.config}: {n_params / 1e6:.2f}M parameters, {len(train)} images, {options['steps']} steps, "
          f"{args.device}", flush=True)
    out = args.out or checkpoint_path(args.config)
    result = train_prior(model, train, valid[:1000], labels=labels, seed=args.seed, checkpoint=out, **options)
    finish_checkpoint(result, out, half=args.config == "full")  # ship half-precision weights
    print(json.dumps({"config": args.config, "parameters": n_params, "steps": options["steps"],
                      "best_valid_bits_per_dim": result.best_valid, "seconds": round(result.seconds, 1),
                      "checkpoint": str(out)}), flush=True)
    if args.grid:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        g = torch.Generator(device=args.device).manual_seed(0)
        digits = torch.arange(10, device=args.device).repeat_interleave(10)
        images = model.sample(100, 100, g, condition=digits).cpu()
        grid = images.reshape(10, 10, cfg["resolution"], cfg["resolution"]).permute(0, 2, 1, 3)
        plt.imsave(args.grid, grid.reshape(10 * cfg["resolution"], -1).numpy(), cmap="gray")


if __name__ == "__main__":
    main()
