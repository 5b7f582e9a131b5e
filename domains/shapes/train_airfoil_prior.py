"""Train the airfoil prior on one CPU thread and report its held-out quality.

    python -m domains.shapes.train_airfoil_prior [--steps 12000] [--samples 2000] [--out PATH]
    python -m domains.shapes.train_airfoil_prior --evaluate-only      # the quality report of the shipped prior

Trains ``airfoil_prior.new_prior()`` with the core's ``train_prior`` on the training split of the clean UIUC
sections (standardized), validating on the held-out 10% (bits per dimension), and saves it with the
standardization in its meta. Then it samples ``--samples`` sections (100 ancestral steps, seed 0) and prints the
share that look like airfoils (``airfoils.airfoil_like``: no crossing, thickness in the database's range,
NeuralFoil xxxlarge confident at CL 0.6, Re 5e5) next to the same share of the held-out airfoils, and both sets'
bits per dimension under the prior.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from workbench.generative import train_prior

from . import sections
from .airfoil_prior import CHECKPOINT, CONFIG, designs, load_prior, new_prior, split, standardizer
from .airfoils import airfoil_like


def quality(prior: torch.nn.Module, n: int = 2000, steps: int = 100, seed: int = 0) -> dict[str, float]:
    """Airfoil-like shares and bits per dimension of ``n`` prior samples against the held-out airfoils."""
    _, valid_idx = split()
    held = designs(valid_idx, inside_box=False)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z = prior.sample(n, steps, generator)
    st = standardizer()
    samples_v = st.to_sections(z).numpy()
    held_v = st.to_sections(held).numpy()
    out: dict[str, float] = {}
    for label, v in (("prior", samples_v), ("heldout", held_v)):
        like = airfoil_like(v)
        for col in ("no_crossing", "thickness_ok", "confident", "near_data", "airfoil_like"):
            out[f"{label}_{col}"] = float(like[col].mean())
        for q in (0.05, 0.5, 0.95):
            out[f"{label}_thickness_q{int(q * 100)}"] = float(np.quantile(sections.thickness(v)[0], q))
            out[f"{label}_camber_q{int(q * 100)}"] = float(np.quantile(sections.camber(v)[0], q))
    box = (held.abs() <= prior.high).all(1)
    bpd_gen = torch.Generator().manual_seed(seed)
    out["heldout_bits_per_dim"] = float(prior.bits_per_dim(held[box], samples=16, generator=bpd_gen).mean())
    out["prior_bits_per_dim"] = float(prior.bits_per_dim(z, samples=16, generator=bpd_gen).mean())
    out["n_samples"], out["n_heldout"] = float(n), float(len(held))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=CONFIG["train"]["steps"])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(CHECKPOINT))
    parser.add_argument("--evaluate-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    if args.evaluate_only:
        prior = load_prior(path=args.out)
    else:
        train_idx, valid_idx = split()
        train, valid = designs(train_idx), designs(valid_idx)
        print(f"training on {len(train)} airfoils, validating on {len(valid)} (inside the +-4 std box)")
        torch.manual_seed(args.seed)  # the denoiser's initialization
        prior = new_prior()
        opts = {k: v for k, v in CONFIG["train"].items()}
        opts["steps"] = args.steps
        opts["eval_every"] = min(opts["eval_every"], args.steps)
        result = train_prior(prior, train, valid, seed=args.seed, **opts)
        st = standardizer()
        prior.save(args.out, meta={"steps": args.steps, "seed": args.seed, "valid_bits_per_dim": result.best_valid,
                                   "seconds": result.seconds, "n_train": len(train), "n_valid": len(valid),
                                   "standardizer": st.to_spec()})
        print(f"trained in {result.seconds:.0f} s; best held-out {result.best_valid:.3f} bits/dim; wrote {args.out}")
    q = quality(prior, n=args.samples, seed=args.seed)
    for key in ("no_crossing", "thickness_ok", "confident", "near_data", "airfoil_like"):
        print(f"{key:>13}: prior samples {q['prior_' + key]:.1%}   held-out airfoils {q['heldout_' + key]:.1%}")
    for key in ("thickness", "camber"):
        print(f"{key:>13} q5 / q50 / q95: prior samples "
              + " / ".join(f"{q[f'prior_{key}_q{p}']:.3f}" for p in (5, 50, 95)) + "   held-out airfoils "
              + " / ".join(f"{q[f'heldout_{key}_q{p}']:.3f}" for p in (5, 50, 95)))
    print(f"bits/dim under the prior: held-out airfoils {q['heldout_bits_per_dim']:.3f}, prior samples "
          f"{q['prior_bits_per_dim']:.3f} ({int(q['n_samples'])} samples, {int(q['n_heldout'])} held-out)")
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
