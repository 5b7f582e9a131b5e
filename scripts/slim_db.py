"""Copy a SQLite study database without the large tensors in its optimizer snapshots.

    python scripts/slim_db.py runs/dna_enhancers/gpu/dna.db slim.db            # drops DRAKES' "tuned" weights

Every design, objective value, counter and study record is kept; only the named keys of each
snapshot's state (default: DRAKES' fine-tuned denoiser) are removed, so a finished campaign can be moved
off a GPU machine in a few MB and still be scored, plotted and resumed (a study whose budget is not yet
spent would redo the fine-tuning on its next ask).
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from workbench.serialization import pack, unpack


def slim(source: Path, target: Path, drop: tuple[str, ...]) -> int:
    """Write ``source`` to ``target`` with ``drop`` removed from every snapshot; returns snapshots changed."""
    if not source.exists():
        raise FileNotFoundError(f"no database at {source}")
    if target.exists():
        raise FileExistsError(f"{target} exists; choose a new path")
    src, db = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(db)
        changed = 0
        for study_id, blob in db.execute("SELECT study_id, state FROM snapshots").fetchall():
            state = unpack(blob)
            if isinstance(state, dict) and any(k in state for k in drop):
                kept = {k: v for k, v in state.items() if k not in drop}
                db.execute("UPDATE snapshots SET state = ? WHERE study_id = ?", (pack(kept), study_id))
                changed += 1
        db.commit()
        db.execute("PRAGMA journal_mode = DELETE")
        db.execute("VACUUM")
    finally:
        src.close()
        db.close()
    return changed


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--drop", default="tuned", help="comma-separated state keys to remove")
    args = parser.parse_args()
    n = slim(args.source, args.target, tuple(k for k in args.drop.split(",") if k))
    print(f"wrote {args.target} ({args.target.stat().st_size / 2**20:.1f} MiB), {n} snapshots slimmed")
