"""Where the time of the CUDA non-dominated sort and of NSGA-II's tell goes (run on a GPU machine)."""

import time

import torch

import workbench as wb
from domains.benchmarks import DTLZ2
from optimizers import NSGA2
from workbench.pareto import crowding_by_front
from workbench.pareto.triton_sort import count_dominators, nondominated_rank_triton


def timed(fn, *args):
    torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn(*args)
    torch.cuda.synchronize()
    return out, time.perf_counter() - t


gen = torch.Generator().manual_seed(0)
for k in (2, 3):
    f = torch.rand(200_000, k, generator=gen, dtype=torch.float64).cuda()
    nondominated_rank_triton(f[:5000], 2500)
    _, t_full = timed(count_dominators, f, f)
    _, t_small = timed(count_dominators, f[:400].contiguous(), f)
    ranks, t_rank = timed(nondominated_rank_triton, f, 100_000)
    ranks, t_rank2 = timed(nondominated_rank_triton, f, 100_000)
    _, t_crowd = timed(crowding_by_front, f, ranks)
    print(f"k={k}: full count {t_full:.4f} s, 400-row pass {t_small * 1e3:.2f} ms, rank {t_rank:.3f} s then "
          f"{t_rank2:.3f} s, fronts used {int(ranks[ranks < 200_000].max()) + 1}, crowding {t_crowd:.4f} s")

dom = DTLZ2(n_obj=3, n_var=30)
opt = NSGA2(pop_size=100_000)
opt.setup(wb.Problem(dom.space, dom.objectives, dom.constraints, torch.device("cuda"), 0))
ev = wb.Evaluator(dom, "cuda", cache_size=0)
for g in range(4):
    x = opt.ask(100_000)
    e = ev(x)
    _, t_tell = timed(opt.tell, x, e)
    _, t_rank = timed(nondominated_rank_triton, opt.f, None)
    print(f"generation {g}: tell {t_tell:.3f} s; full rank of the survivors {t_rank:.3f} s")
