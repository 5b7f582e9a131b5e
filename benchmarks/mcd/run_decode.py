"""One decode-mcd run (in its own environment): prints JSON with designs, wall time and peak memory."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from problems import PROBLEMS, run_arguments  # noqa: E402


def main() -> None:
    parser = run_arguments()
    args = parser.parse_args()
    from decode_mcd import ContinuousTarget, DesignTargets, McdDataset, McdGenerator, McdProblem
    from pymoo.core.variable import Real

    spec = PROBLEMS[args.problem](**({"rows": args.rows} if args.rows else {}))
    np.random.seed(args.seed)
    started = time.perf_counter()
    data = McdDataset(x=spec.x, y=spec.predict(spec.x),
                      x_datatypes=[Real(bounds=(float(lo), float(hi))) for lo, hi in zip(spec.low, spec.high)])
    targets = DesignTargets([ContinuousTarget(label=spec.properties.index(name), lower_bound=lo, upper_bound=hi)
                             for name, (lo, hi) in spec.targets.items()])
    problem = McdProblem(mcd_dataset=data, x_query=spec.query.reshape(1, -1), y_targets=targets,
                         prediction_function=lambda frame: spec.predict(np.asarray(frame, dtype=float)))
    generator = McdGenerator(mcd_problem=problem, pop_size=args.pop, initialize_from_dataset=True, verbose=False)
    generator.generate(n_generations=args.gens, seed=args.seed)
    cfs = generator.sample_with_dtai(num_samples=args.n)  # the authors' default weights
    wall = time.perf_counter() - started
    designs = np.asarray(cfs.values if hasattr(cfs, "values") else cfs, dtype=float).reshape(-1, spec.x.shape[1])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"designs": designs.tolist(), "wall_s": wall, "peak_mb": peak_mb}))


if __name__ == "__main__":
    main()
