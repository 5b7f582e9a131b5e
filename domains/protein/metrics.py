"""Metrics of designed sequences for one backbone (the DRAKES protein table, with our oracles).

- :func:`recovery`: share of positions equal to the native sequence, per design;
- :func:`stable_fraction`: share of designs with an instability index below 40;
- :func:`heldout_log_likelihood`: fold fit under the held-out checkpoint (never seen by the optimization);
- :func:`prior_log_likelihood`: log-likelihood per residue under the prior's checkpoint, by ProteinMPNN's own
  scoring (``method="mpnn"``: the fold fit of :class:`.objectives.FoldFit` with the prior's network) or the
  masked-diffusion ELBO of the prior (``method="elbo"``, ``MaskedDiffusion.log_likelihood`` / L; a lower bound);
- :func:`diversity`: mean pairwise Hamming distance / L.
"""

from __future__ import annotations

import torch

from .domain import STABLE_BELOW, ProteinDesign
from .objectives import instability
from .structure import ALPHABET


def _tokens(x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2 or x.dtype.is_floating_point:
        raise ValueError(f"expected integer tokens [n, L], got {x.dtype} of shape {list(x.shape)}")
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= len(ALPHABET)):
        raise ValueError(f"tokens must lie in 0..{len(ALPHABET) - 1}")
    return x.long()


def recovery(x: torch.Tensor, native: torch.Tensor) -> torch.Tensor:
    """Native sequence recovery ``[n]`` float64 of tokens ``x [n, L]`` against ``native [L]``."""
    x = _tokens(x)
    native = torch.as_tensor(native, device=x.device).long().reshape(-1)
    if native.shape[0] != x.shape[1]:
        raise ValueError(f"the native sequence has {native.shape[0]} residues; the designs have {x.shape[1]}")
    return (x == native).to(torch.float64).mean(dim=1)


def diversity(x: torch.Tensor) -> float:
    """Mean Hamming distance between all pairs of distinct rows of tokens ``[n, L]``, divided by ``L``
    (counted per position from residue counts: no n x n tensor)."""
    x = _tokens(x)
    n, length = x.shape
    if n < 2:
        raise ValueError(f"diversity needs at least 2 sequences, got {n}")
    cells = torch.arange(length, device=x.device) * len(ALPHABET) + x
    counts = torch.bincount(cells.flatten(), minlength=length * len(ALPHABET)).to(torch.float64)
    return float(1.0 - (counts * (counts - 1)).sum() / 2 / (n * (n - 1) / 2 * length))


def stable_fraction(index: torch.Tensor) -> float:
    """Share of designs with an instability index ``[n]`` below 40 (predicted stable)."""
    return float((torch.as_tensor(index) < STABLE_BELOW).to(torch.float64).mean())


@torch.no_grad()
def heldout_log_likelihood(domain: ProteinDesign, x: torch.Tensor) -> torch.Tensor:
    """Fold fit ``[n]`` (mean log-likelihood per residue, nats) under the domain's held-out checkpoint."""
    return domain.fold_fit(_tokens(x), "heldout").double()


@torch.no_grad()
def prior_log_likelihood(domain: ProteinDesign, x: torch.Tensor, method: str = "mpnn", samples: int = 16,
                         seed: int = 0) -> torch.Tensor:
    """Log-likelihood per residue ``[n]`` (nats) under the prior: ProteinMPNN's own scoring with the prior's
    checkpoint (``"mpnn"``, deterministic) or the prior's masked-diffusion ELBO (``"elbo"``, ``samples`` noise
    draws from a generator seeded with ``seed``)."""
    x = _tokens(x)
    if method == "mpnn":
        return domain.fold_fit(x, "prior").double()
    if method == "elbo":
        prior = domain.prior()
        generator = torch.Generator(device=prior.device).manual_seed(seed)
        ll = prior.log_likelihood(x.to(prior.device), samples=samples, generator=generator)
        return (ll / x.shape[1]).double().cpu()
    raise ValueError(f"method must be 'mpnn' or 'elbo', got {method!r}")


def summarize(domain: ProteinDesign, x: torch.Tensor) -> dict[str, float]:
    """All metrics of a set of designs ``[n, L]``: mean recovery, stable fraction, mean instability, mean held-out
    and prior (ProteinMPNN scoring) log-likelihoods per residue, and diversity."""
    x = _tokens(x)
    index = instability(torch.nn.functional.one_hot(x, len(ALPHABET)).double())
    return {"recovery": float(recovery(x, domain.native_tokens()).mean()),
            "stable_fraction": stable_fraction(index),
            "instability": float(index.mean()),
            "heldout_log_likelihood": float(heldout_log_likelihood(domain, x).mean()),
            "prior_log_likelihood": float(prior_log_likelihood(domain, x).mean()),
            "diversity": diversity(x) if len(x) > 1 else float("nan")}
