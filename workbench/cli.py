"""The ``workbench`` command: run study files, and read, plot and export any storage."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import time
from pathlib import Path

import pandas as pd

from .campaign import WORKERS_ENV
from .storage import StorageError, open_storage

PLOT_KINDS = ("pareto", "pairwise", "parallel", "hypervolume")


def _cmd_run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"workbench run: no such study file: {args.file}")
    if args.workers is not None:
        os.environ[WORKERS_ENV] = str(args.workers)
    sys.path.insert(0, str(path.resolve().parent))
    sys.argv = [str(path), *args.args]
    runpy.run_path(str(path), run_name="__main__")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage, create=False)
    rows = storage.summary()
    if not rows:
        print(f"{storage.safe_url}: no studies")
        return 0
    table = pd.DataFrame(rows)
    table["updated"] = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) for t in table["updated"]]
    table["budget"] = table["budget"].astype("Int64")
    if args.campaign:
        table = table[table["campaign"] == args.campaign]
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_columns", None):
        print(table.to_string(index=False))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plotting
    from .results import StudyResults

    storage = open_storage(args.storage, create=False)
    names = args.study or []
    if not names:
        raise SystemExit("workbench plot: name at least one study with --study NAME (see `workbench status`)")
    results = [StudyResults(storage, storage.get_study(n)) for n in names]
    objectives = args.objectives.split(",") if args.objectives else None
    if args.kind == "pareto":
        front = plotting.plot_pareto(results if len(results) > 1 else results[0], objectives=objectives)
        fig = front.figure
    elif args.kind == "pairwise":
        fig = plotting.plot_pairwise(results[0], objectives=objectives)
    elif args.kind == "parallel":
        fig = plotting.plot_parallel(results[0], columns=objectives).figure
    else:
        ref = [float(v) for v in args.ref.split(",")] if args.ref else None
        frames = []
        for r in results:
            t = r.hypervolume_trace(ref)
            t["label"] = r.record.spec.get("settings", {}).get("label") or r.record.spec["optimizer"]["name"]
            t["seed"] = r.record.spec.get("seed", 0)
            frames.append(t)
        fig = plotting.plot_hypervolume(pd.concat(frames, ignore_index=True)).figure
    path = plotting.save(fig, args.out)
    plt.close(fig)
    print(f"wrote {path}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .results import StudyResults

    storage = open_storage(args.storage, create=False)
    names = args.study or storage.study_names()
    if not names:
        raise SystemExit(f"workbench export: {storage.safe_url} has no studies")
    frames = []
    for n in names:
        frame = StudyResults(storage, storage.get_study(n)).frame().reset_index()
        frame.insert(0, "study", n)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        table.to_parquet(out)
    else:
        table.to_csv(out, index=False)
    print(f"wrote {len(table)} rows from {len(names)} studies to {out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .report import campaigns_from_file, html_path, stored_campaigns, write_html

    names = args.campaign or None
    source = str(args.source)
    try:
        if source.endswith(".py"):
            campaigns = campaigns_from_file(source, names)
        else:
            campaigns = stored_campaigns(source, names)
    except (FileNotFoundError, ImportError) as err:
        raise SystemExit(f"workbench report: {err}") from None
    ref = [float(v) for v in args.ref.split(",")] if args.ref else None
    for campaign in campaigns:
        started = time.perf_counter()
        try:
            path = html_path(args.out, campaign.name, several=len(campaigns) > 1)
            write_html(campaign, path, ref=ref, pictures=not args.no_pictures)
        except (FileExistsError, ImportError) as err:
            raise SystemExit(f"workbench report: {err}") from None
        size = path.stat().st_size / 2 ** 20
        print(f"wrote {path} ({size:.1f} MB, {time.perf_counter() - started:.1f} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="design-workbench: run and inspect design studies")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a study file (a Python file that builds and runs a campaign)")
    p.add_argument("file")
    p.add_argument("--workers", type=int, default=None, help="worker processes for the campaign (default 1)")
    p.set_defaults(fn=_cmd_run)

    p = sub.add_parser("status", help="list the studies in a storage")
    p.add_argument("storage", nargs="?", default="sqlite:///runs.db")
    p.add_argument("--campaign", default=None)
    p.set_defaults(fn=_cmd_status)

    p = sub.add_parser("plot", help="plot stored studies to an image file")
    p.add_argument("storage")
    p.add_argument("--study", action="append", help="study name (repeat to overlay several)")
    p.add_argument("--out", required=True, help="output image, e.g. front.png")
    p.add_argument("--kind", choices=PLOT_KINDS, default="pareto")
    p.add_argument("--objectives", default=None, help="comma-separated objective (or column) names")
    p.add_argument("--ref", default=None, help="hypervolume reference point, comma-separated")
    p.set_defaults(fn=_cmd_plot)

    p = sub.add_parser("export", help="export stored evaluations to CSV")
    p.add_argument("storage")
    p.add_argument("--out", required=True, help="output file (.csv, or .parquet if pyarrow is installed)")
    p.add_argument("--study", action="append", help="study name (repeatable; default all)")
    p.set_defaults(fn=_cmd_export)

    p = sub.add_parser("report", help="write a self-contained HTML report of each campaign (the storage is only read)")
    p.add_argument("source", help="storage URL or path (no pictures), or the campaign file (.py) that ran it "
                                  "(its domains draw the best designs)")
    p.add_argument("--out", required=True, help="output page, e.g. report.html (several campaigns: report-NAME.html)")
    p.add_argument("--campaign", action="append", help="campaign name (repeatable; default all)")
    p.add_argument("--ref", default=None, help="hypervolume reference point, comma-separated (default: inferred)")
    p.add_argument("--no-pictures", action="store_true", help="skip the pictures of the best designs")
    p.set_defaults(fn=_cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    if args.command == "run":  # unknown options go to the study file; its errors keep their traceback
        args.args = extra
        return args.fn(args)
    if extra:
        build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.fn(args)
    except (StorageError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"workbench {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
