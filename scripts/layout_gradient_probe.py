"""Can a layout reward be followed by its straight-through gradient at all? A probe without any network.

    python scripts/layout_gradient_probe.py --weights 0,1,0     # overlap alone
    python scripts/layout_gradient_probe.py --weights 100,0,0   # alignment alone
    python scripts/layout_gradient_probe.py --weights 100,0,0 --estimator swaps --n 16   # exact swap gains

``--n`` layouts are sampled from the full prior; then free logits over the tokens of their present elements' coordinates
(classes and padding fixed) are tuned with Adam to maximize the weighted reward (weights on the errors alignment,
overlap, coverage) of straight-through Gumbel-softmax draws: the estimator DRAKES back-propagates through, here with
nothing between the logits and the draws. ``--estimator swaps`` replaces the reward's own derivative at the draws by the
exact single-token swap gains (``optimizers.guidance.swaps``; DRAKES' ``estimator="swaps"``): one reward evaluation per
free position and bin, so use a smaller ``--n`` on a CPU. Prints, every 50 steps, the mean reward of the draws and the
hard Alignment / Overlap (x 100) and element count of the logits' most likely layouts.
"""

from __future__ import annotations

import argparse

import torch

from domains.layouts import PageLayouts, metrics
from domains.layouts.prior import load_prior
from optimizers.guidance.swaps import swap_surrogate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", default="0,1,0", help="weights on alignment, overlap, coverage")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--estimator", choices=("straight_through", "swaps"), default="straight_through")
    args = parser.parse_args()
    weights = torch.tensor([float(v) for v in args.weights.split(",")], dtype=torch.float64)
    if len(weights) != 3:
        raise SystemExit(f"--weights needs 3 values (alignment, overlap, coverage), got {args.weights!r}")
    torch.set_num_threads(1)
    names = [name for name, w in zip(("alignment", "overlap", "coverage"), weights) if w > 0]
    dom = PageLayouts(objectives=names, prior="full")  # only the weighted errors: each reward call is cheaper
    g = torch.Generator().manual_seed(args.seed)
    x = load_prior("full").sample(args.n, 50, g)  # [n, 125]
    vocab = dom.tokenizer.vocab_size
    moves = dom.tokenizer.moves(x)  # [n, 125, vocab]: the present elements' coordinates, each over its own bins
    free = moves.any(-1)  # [n, 125]
    # each free position may take only its attribute's bins: 90 % on the sampled bin, the rest spread over the others
    allowed = dom.tokenizer.moves()  # [125, vocab]
    sampled = torch.nn.functional.one_hot(x, vocab).bool()
    spread = 0.9 * sampled + 0.1 * allowed / allowed.sum(-1, keepdim=True).clamp(min=1)
    # the other positions (classes, padding) keep their token in every draw
    fixed = torch.where(free.unsqueeze(-1), torch.log(spread.clamp(min=1e-12)).masked_fill(~allowed, -1e9),
                        torch.where(sampled, 0.0, -1e9))
    logits = fixed.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=args.lr)

    def weighted(design: torch.Tensor) -> torch.Tensor:
        errors = dom.evaluate_soft(design)
        return -sum(w * errors[name] for name, w in zip(("alignment", "overlap", "coverage"), weights) if w > 0)

    def hard(tokens: torch.Tensor) -> str:
        classes, boxes = dom.decode_tensors(tokens)
        return (f"alignment {100 * float(metrics.alignment(classes, boxes).mean()):.3f}, overlap "
                f"{100 * float(metrics.overlap(classes, boxes).mean()):.2f}, elements "
                f"{float((classes >= 0).sum(1).float().mean()):.2f}")

    print(f"prior samples: {hard(x)}")
    for step in range(args.iterations + 1):
        current = torch.where(free.unsqueeze(-1), logits.masked_fill(~allowed, -1e9), fixed)
        u = torch.rand(current.shape, generator=g).clamp(1e-10, 1 - 1e-7)
        soft = torch.softmax((current - torch.log(-torch.log(u))) / args.temperature, dim=-1)
        draw = torch.nn.functional.one_hot(soft.argmax(-1), vocab).float() + soft - soft.detach()
        if args.estimator == "swaps":
            reward = swap_surrogate(weighted, draw, moves)  # the free coordinates
        else:
            reward = weighted(draw)
        optimizer.zero_grad()
        (-reward.mean()).backward()
        optimizer.step()
        if step % 50 == 0:
            with torch.no_grad():
                mode = torch.where(free, logits.masked_fill(~allowed, -1e9).argmax(-1), x)
            print(f"step {step:4d}: reward of the draws {float(reward.detach().mean()):.4f}; "
                  f"most likely layouts: {hard(mode)}", flush=True)


if __name__ == "__main__":
    main()
