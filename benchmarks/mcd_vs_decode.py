"""Multi-objective counterfactuals: workbench against the authors' decode-mcd 1.0.0rc1, side by side.

    bash benchmarks/setup_decode_mcd.sh            # once: decode-mcd in .venv-decode (pandas < 3)
    python benchmarks/mcd_vs_decode.py [--seeds 1] [--large] [--json runs.json] [--decode-from runs.json]

Each run is a separate process (so peak memory is its own), with population 100 and 10
counterfactuals. Quality is computed by the same code for both (benchmarks/mcd/problems.py):
valid on re-evaluation, mean Gower distance to the query, fraction of features changed, mean
Gower distance to the 3 nearest data points (manifold), mean pairwise Gower (diversity).
``--large`` adds the runs decode-mcd cannot do: 200 generations, and 1,000,000 data rows.
With two seeds or more, a second table compares the tools seed by seed (benchmarks/mcd/paired.py).
``--decode-from runs.json`` reuses the decode-mcd rows of an earlier ``--json`` file (same
problems and seeds) instead of rerunning decode-mcd, so only the workbench side runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DECODE_MEMORY_CAP = 20 * 2**30  # bytes of address space for a decode-mcd run (the machine has 24 GiB)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "mcd"))
sys.path.insert(0, str(HERE))
from _table import print_table  # noqa: E402
from paired import paired_rows  # noqa: E402
from problems import PROBLEMS, metrics  # noqa: E402


def run(side: str, problem: str, gens: int, seed: int, rows: int | None = None, device: str = "cpu") -> dict:
    python = ROOT / (".venv-decode" if side == "decode-mcd" else ".venv") / "bin" / "python"
    script = HERE / "mcd" / ("run_decode.py" if side == "decode-mcd" else "run_ours.py")
    cmd = [str(python), str(script), "--problem", problem, "--gens", str(gens), "--seed", str(seed)]
    if side == "decode-mcd":  # cap its address space so a blow-up fails alone instead of taking the machine down
        cmd = ["prlimit", f"--as={DECODE_MEMORY_CAP}"] + cmd
    cmd += ["--rows", str(rows)] if rows else []
    cmd += ["--device", device] if side == "workbench" else []
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        return {"error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--large", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="also write every run's row (with its designs) to this file")
    parser.add_argument("--decode-from", default=None,
                        help="reuse the decode-mcd rows of an earlier --json file instead of running decode-mcd")
    args = parser.parse_args()
    stored = {}
    if args.decode_from:
        stored = {(r["problem"], r["seed"]): r for r in json.loads(Path(args.decode_from).read_text())
                  if r["tool"] == "decode-mcd"}
    configs = [("synthetic10", 100, None), ("toy2d", 100, None)]
    if args.large:
        configs += [("synthetic10", 200, None), ("synthetic10", 100, 1_000_000)]
    have_decode = (ROOT / ".venv-decode" / "bin" / "python").exists() or bool(stored)
    rows = []
    for problem, gens, n_rows in configs:
        spec = PROBLEMS[problem](**({"rows": n_rows} if n_rows else {}))
        sides = ["workbench", "decode-mcd"] if have_decode and (n_rows is None and gens == 100) else ["workbench"]
        if have_decode and (n_rows or gens != 100):
            sides.append("decode-mcd")
        for side in sides:
            for seed in range(1, args.seeds + 1):
                label = f"{problem} ({len(spec.x):,} rows, {gens} gens)"
                if side == "decode-mcd" and stored:
                    if (label, seed) in stored:
                        rows.append(stored[(label, seed)])
                        print({k: v for k, v in rows[-1].items() if k != "designs"}, flush=True)
                    continue
                out = run(side, problem, gens, seed, n_rows, args.device)
                if "error" in out:
                    rows.append({"problem": label, "tool": side, "seed": seed, "wall s": float("nan"),
                                 "peak MB": float("nan"), "valid": out["error"][:60]})
                    continue
                import numpy as np

                m = metrics(spec, np.asarray(out["designs"], dtype=float).reshape(-1, spec.x.shape[1]))
                rows.append({"problem": label, "tool": side, "seed": seed, "wall s": out["wall_s"],
                             "peak MB": out["peak_mb"], "valid": f"{m['valid']}/{m['returned']}",
                             "gower": m["gower"], "changed": m["changed"], "manifold": m["manifold"],
                             "diversity": m["diversity"], "designs": out["designs"]})
                print({k: v for k, v in rows[-1].items() if k != "designs"}, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows))
    keys = ["problem", "tool", "seed", "wall s", "peak MB", "valid", "gower", "changed", "manifold", "diversity"]
    print_table([{k: r.get(k, "") for k in keys} for r in rows], "counterfactuals: workbench vs decode-mcd 1.0.0rc1, "
                "population 100, 10 counterfactuals")
    print_table(paired_rows(rows), "paired by seed: mean ± standard error; diff = workbench - decode-mcd")


if __name__ == "__main__":
    main()
