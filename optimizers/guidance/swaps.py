"""The exact single-token swap estimator: a reward's gradient at a one-hot (straight-through) design, made of the
reward's actual changes when one token is swapped for another, instead of its linear extrapolation.

Why: the straight-through gradient of a one-hot draw is ``d reward / d design[i, v]`` at the hard design, a linear
estimate of what token ``v`` at position ``i`` would do. For rewards whose best value sits at one exact token (a
layout edge aligned with a partner's edge: its alignment error is smallest at one coordinate bin and grows on
both sides) the linear estimate is largest for the farthest token in the improving direction and points to worse
designs. Here the gradient is the exact swap gain ``reward(design with token i := v) - reward(design)``: at each
position the draw's probabilities are pushed toward the tokens that do improve the reward, by as much as they do.
It is the gradient of the mean-field expectation ``sum_i E_{v ~ q_i} reward(design with token i := v)`` at the
hard design (one position redrawn at a time), so the first-order signal is exact for every single-token move.
Cost: one reward evaluation per candidate token and position (``n * L * V`` designs at most), batched in chunks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


Candidates = torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None


def swap_gains(reward: Callable[[torch.Tensor], torch.Tensor], hard: torch.Tensor,
               candidates: Candidates = None, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Reward ``[n]`` of one-hot designs ``hard [n, L, V]`` and the swap gains ``[n, L, V]``:
    ``reward(hard with position i set to token v) - reward(hard)`` where the candidates are True and ``v`` is not
    the current token, else 0. ``candidates``: bool ``[L, V]`` for every design, ``[n, L, V]`` per design, or a
    function of the designs' tokens ``[n, L] -> [n, L, V]`` (e.g. only the present elements of a layout); None
    tries every token. ``reward`` maps one-hot designs ``[m, L, V] -> [m]``; it is called on at most ``chunk``
    designs at a time. A swap whose reward is not finite gains 0 (it is not proposed)."""
    if hard.dim() != 3:
        raise ValueError(f"expected one-hot designs [n, L, V], got shape {list(hard.shape)}")
    n, length, vocab = hard.shape
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    tokens = hard.argmax(-1)  # [n, L]
    if candidates is None:
        candidates = torch.ones(length, vocab, dtype=torch.bool, device=hard.device)
    elif callable(candidates):
        candidates = candidates(tokens)
    candidates = torch.as_tensor(candidates, dtype=torch.bool, device=hard.device)
    if candidates.shape not in ((length, vocab), (n, length, vocab)):
        raise ValueError(f"candidates must be [L, V] = [{length}, {vocab}] or [n, L, V], got "
                         f"{list(candidates.shape)}")
    with torch.no_grad():
        base = reward(hard)
        swap = candidates.expand(n, length, vocab) & ~torch.nn.functional.one_hot(tokens, vocab).bool()
        row, position, token = torch.nonzero(swap, as_tuple=True)
        gains = torch.zeros_like(hard)
        for start in range(0, len(row), chunk):
            r, i, v = (t[start: start + chunk] for t in (row, position, token))
            variants = hard[r]  # advanced indexing copies
            picks = torch.arange(len(r), device=hard.device)
            variants[picks, i] = 0.0
            variants[picks, i, v] = 1.0
            gain = reward(variants).to(hard.dtype) - base[r].to(hard.dtype)
            gains[r, i, v] = torch.where(torch.isfinite(gain), gain, torch.zeros_like(gain))
    return base, gains


def swap_surrogate(reward: Callable[[torch.Tensor], torch.Tensor], design: torch.Tensor,
                   candidates: Candidates = None, chunk: int = 4096) -> torch.Tensor:
    """``[n]``: the reward of the one-hot designs ``design [n, L, V]`` (values exactly one-hot, e.g. straight-through
    draws that carry a gradient), whose gradient with respect to ``design[:, i, v]`` is the swap gain of
    :func:`swap_gains` instead of the reward's own derivative."""
    base, gains = swap_gains(reward, design.detach(), candidates, chunk)
    return base + (design * gains).sum(dim=(1, 2))  # the second term is 0 in value: gains vanish at the hard tokens
