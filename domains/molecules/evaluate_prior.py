"""MOSES metrics of a shipped prior's samples (CPU; needs RDKit, and molsets for novelty).

    python -m domains.molecules.evaluate_prior --config full --n 2000 --steps 128

Samples ``n`` molecules (seeded), decodes them to canonical SMILES and prints, as JSON: the share of rows with
padding between symbols, the mean QED and SA of the valid ones (and of the reference set), and
``metrics.summarize`` against the committed 2,000-molecule MOSES test sample (novelty against MOSES train).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from .data import load_sample
from .metrics import summarize
from .objectives import score_smiles
from .prior import CONFIGS, load_prior
from .tokens import decode
from .vocab import pad_index


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="full")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--fcd", action="store_true", help="also the Frechet ChemNet distance (needs fcd_torch)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    prior = load_prior(args.config, args.device)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    x = torch.cat([prior.sample(min(500, args.n - i), args.steps, generator) for i in range(0, args.n, 500)]).cpu()
    sampled = time.perf_counter() - started
    smiles = decode(x)
    reference = load_sample()["smiles"].tolist()
    gaps = ((x[:, :-1] == pad_index()) & (x[:, 1:] != pad_index())).any(dim=1).double().mean()
    ours = score_smiles([s for s in smiles if s], ("qed", "sa"))
    theirs = score_smiles(reference, ("qed", "sa"))
    out = {"config": args.config, "n": args.n, "steps": args.steps, "seed": args.seed,
           "sampling_seconds": round(sampled, 1), "padding_gaps": float(gaps),
           "qed": float(np.nanmean(ours[:, 0])), "sa": float(np.nanmean(ours[:, 1])),
           "reference_qed": float(theirs[:, 0].mean()), "reference_sa": float(theirs[:, 1].mean()),
           **summarize(smiles, reference, fcd=args.fcd)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
