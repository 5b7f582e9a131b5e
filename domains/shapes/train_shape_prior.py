"""Train the 3-D shape prior: ``python -m domains.shapes.train_shape_prior --config full --seconds 500 --device cuda``.

Trains on the corpus' train split (``data/shapes32.npz``) with family labels, validates the EMA weights on the
valid split (bits per voxel), and writes ``checkpoints/shape_prior_<config>.pt`` (the full configuration in half
precision; loading casts back), ``..._history.csv`` and a PNG of samples (``--grid``, one row per family).
``--seconds`` times a few steps first and trains as many as fit (the count is stored in the checkpoint's meta, so
``--steps N`` reproduces the run). ``tiny`` is meant for one CPU thread: ``--config tiny --threads 1``.
"""

from __future__ import annotations

import argparse
import json

import torch

from workbench.generative import train_prior
from workbench.generative.training import add_prior_arguments, finish_checkpoint, sized_options

from .corpus import FAMILIES, load_corpus
from .shape_prior import CONFIGS, checkpoint_path, new_prior


def family_labels(meta_family: object) -> torch.Tensor:
    """Family names -> labels ``[n]`` int64 (0 wing, 1 fuselage, 2 car)."""
    return torch.tensor([FAMILIES.index(f) for f in meta_family], dtype=torch.long)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 for the tiny prior)")
    parser.add_argument("--valid", type=int, default=64, help="validation shapes (bits per voxel of the EMA weights)")
    parser.add_argument("--grid", default=None, help="also write a PNG of samples here")
    add_prior_arguments(parser, CONFIGS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    corpus = load_corpus()
    train_idx, valid_idx = corpus.select("train"), corpus.select("valid")
    train = corpus.tensor("train").to(args.device)
    labels = family_labels(corpus.meta.family.to_numpy()[train_idx]).to(args.device)
    generator = torch.Generator().manual_seed(args.seed)
    pick = torch.randperm(len(valid_idx), generator=generator)[:args.valid]
    valid = corpus.tensor("valid")[pick]
    torch.manual_seed(args.seed)
    model = new_prior(args.config).to(args.device)
    options = dict(CONFIGS[args.config]["train"])
    if args.seconds is not None and args.steps is None:
        probe = new_prior(args.config).to(args.device)
        options = sized_options(options, probe, train[:options["batch_size"]], seconds=args.seconds,
                                labels=labels[:options["batch_size"]])
        del probe
    else:
        options = sized_options(options, model, train[:1], steps=args.steps)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"shape prior {args.config}: {n_params / 1e6:.2f}M parameters, {len(train)} shapes, {options['steps']} "
          f"steps of {options['batch_size']}, {args.device}", flush=True)
    out = args.out or checkpoint_path(args.config)
    result = train_prior(model, train, valid.to(args.device), labels=labels, seed=args.seed, checkpoint=out,
                         **options)
    finish_checkpoint(result, out, half=args.config == "full")  # ship half-precision weights
    print(json.dumps({"config": args.config, "parameters": n_params, "steps": options["steps"],
                      "best_valid_bits_per_voxel": result.best_valid, "seconds": round(result.seconds, 1),
                      "checkpoint": str(out)}), flush=True)
    if args.grid:
        from .shape_domain import render_grids

        g = torch.Generator(device=args.device).manual_seed(0)
        per = 6
        families = torch.arange(len(FAMILIES), device=args.device).repeat_interleave(per)
        x = model.sample(len(families), 50, g, condition=families).cpu()
        render_grids(x, ncols=per, titles=[FAMILIES[int(f)] for f in families], path=args.grid)


if __name__ == "__main__":
    main()
