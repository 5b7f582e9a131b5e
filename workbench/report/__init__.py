"""The HTML report of a campaign: one self-contained file with the studies and compare tables, hypervolume
traces, interactive Pareto fronts (plotly, inline) and pictures of each study's best designs.

    campaign.report("runs/demo/report.html", format="html")
    workbench report runs/demo.db --out report.html        # from the storage alone (no pictures)
    workbench report studies/demo.py --out report.html     # from the campaign file (with pictures)

The storage is only read. Modules: :mod:`.data` (what is read), :mod:`.downsample` (which points are drawn),
:mod:`.figures` (plotly), :mod:`.page` (the HTML), :mod:`.logo` (sequence logos for domains' pictures),
:mod:`.browser` (a headless-chromium check of a written report).
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path
from typing import Any

from ..campaign import Campaign

__all__ = ["write_html", "campaigns_from_file", "stored_campaigns", "html_path"]


def stored_campaigns(url: str, names: list[str] | None = None) -> list[Campaign]:
    """The campaigns of a storage, rebuilt from what is stored (see :func:`.data.stored_campaigns`)."""
    from .data import stored_campaigns as _stored

    return _stored(url, names)


def campaigns_from_file(path: str | os.PathLike, names: list[str] | None = None) -> list[Campaign]:
    """The campaigns a campaign file builds at its top level (the file runs as a campaign worker does, so its
    ``if __name__ == "__main__"`` block, which runs the studies, is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such campaign file: {path}")
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # the file may import its neighbours, as under `workbench run`
    try:
        namespace = runpy.run_path(str(path), run_name="__workbench_report__")
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    found = [v for v in namespace.values() if isinstance(v, Campaign)]
    if not found:
        raise ValueError(f"{path} builds no campaign at its top level (a wb.Campaign assigned to a variable)")
    missing = [n for n in names or [] if n not in {c.name for c in found}]
    if missing:
        raise ValueError(f"{path} has no campaign {', '.join(map(repr, missing))}; it builds: "
                         f"{', '.join(c.name for c in found)}")
    return [c for c in found if not names or c.name in names]


def html_path(out: str | os.PathLike, campaign: str, several: bool) -> Path:
    """Where a campaign's page goes: ``out`` itself, or ``out`` with ``-<campaign>`` before the suffix when one
    output names several campaigns; a directory ``out`` gets ``<campaign>.html`` inside it."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        if out.exists() and not out.is_dir():
            raise FileExistsError(f"{out} exists and is not an HTML report; choose another --out")
        return out / f"{campaign}.html"
    return out.with_name(f"{out.stem}-{campaign}{out.suffix}") if several else out


def _refuse_overwrite(path: Path) -> None:
    """Never write a report over a database: an existing file that is not HTML is left alone."""
    if path.exists():
        head = path.read_bytes()[:16] if path.is_file() else b""
        if not path.is_file() or head.startswith(b"SQLite format 3") or (head and b"<" not in head):
            raise FileExistsError(f"{path} exists and is not an HTML report; choose another --out")


def write_html(campaign: Campaign, path: str | os.PathLike, ref: Any = None, pictures: bool = True,
               **options: Any) -> Path:
    """Write the HTML report of ``campaign`` to ``path`` (a .html file); returns the path.

    ``ref``: reference point(s) as for :meth:`Campaign.compare`; ``pictures``: draw each study's best designs
    with its domain's ``render``; ``options``: ``points_per_figure`` (dominated points drawn per figure) and
    ``best`` (designs per study) for :func:`.data.collect`. The file is written whole or not at all.
    """
    from .data import collect
    from .figures import plotly_graph_objects
    from .page import render_page

    plotly_graph_objects()  # the install hint now, before the storage is read
    path = Path(path)
    _refuse_overwrite(path)
    page = render_page(collect(campaign, ref=ref, pictures=pictures, **options))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
