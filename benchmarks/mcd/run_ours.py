"""One workbench counterfactual run: prints JSON with designs, wall time and peak memory."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from problems import PROBLEMS, run_arguments  # noqa: E402


def main() -> None:
    parser = run_arguments()
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import workbench as wb

    spec = PROBLEMS[args.problem](**({"rows": args.rows} if args.rows else {}))
    started = time.perf_counter()
    names = [f"x{i}" for i in range(spec.x.shape[1])]
    space = wb.MixedSpace(wb.Real(n, float(lo), float(hi)) for n, lo, hi in zip(names, spec.low, spec.high))
    domain = wb.Domain.from_function(space, spec.predict, objectives=spec.properties, inputs="numpy", name=spec.name)
    result = wb.counterfactuals(domain, dict(zip(names, spec.query)), dict(spec.targets), n=args.n, pop_size=args.pop,
                                generations=args.gens, seed=args.seed, device=args.device,
                                dataset=pd.DataFrame(spec.x, columns=names))
    wall = time.perf_counter() - started
    designs = result[names].to_numpy(dtype=float) if len(result) else np.empty((0, len(names)))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"designs": designs.tolist(), "wall_s": wall, "peak_mb": peak_mb}))


if __name__ == "__main__":
    main()
