"""What a campaign report shows, read from storage once: the tables, the hypervolume traces, and per study its
front, a thinned sample of its other points and its best designs.

The storage is only read. A campaign comes from a campaign file (its domains can draw pictures) or from the
storage alone (:func:`stored_campaigns`: each study's domain is rebuilt from the description stored with it,
which knows the space and objectives but not how to draw).
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..campaign import Campaign, Entry
from ..domain import Domain
from ..objectives import Constraint, Objective
from ..results import StudyResults
from ..spaces import space_from_spec
from ..storage import StorageError, open_storage
from .downsample import PlotRows, plot_rows

#: dominated points plotted per domain figure, shared among its studies
POINTS_PER_FIGURE = 4000
#: best designs shown (table and picture) per study
BEST_DESIGNS = 6


class StoredDomain(Domain):
    """A study's domain as stored: space, objectives and constraints, without the code that scores or draws."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(space_from_spec(spec["space"]), [Objective(**o) for o in spec["objectives"]],
                         [Constraint(**c) for c in spec["constraints"]], name=spec["name"])
        self.stored_class = spec.get("class", "")

    def evaluate(self, x: torch.Tensor) -> Any:
        raise NotImplementedError(f"domain {self.name!r} was read from storage; its code ({self.stored_class}) "
                                  "is needed to evaluate designs")

    def render(self, x: torch.Tensor, ax: Any = None) -> Any:
        raise NotImplementedError(f"pictures of {self.name!r} need its code: report from the campaign file "
                                  "(workbench report studies/FILE.py) instead of the storage alone")


def shown_url(storage: Any) -> str:
    """The storage's URL without a password (what a page or a message may show)."""
    return getattr(storage, "safe_url", storage.url)


def stored_campaigns(url: str, names: list[str] | None = None) -> list[Campaign]:
    """The campaigns in storage ``url`` (all, or those named), rebuilt from what is stored: a clear error when
    the storage does not exist, holds no campaign, or lacks a named one."""
    storage = open_storage(url, create=False)
    try:
        return _stored_campaigns(storage, names)
    finally:
        storage.close()


def _stored_campaigns(storage: Any, names: list[str] | None) -> list[Campaign]:
    rows = storage.summary()
    if not rows:
        raise StorageError(f"{shown_url(storage)} holds no studies: nothing to report")
    present = list(dict.fromkeys(r["campaign"] for r in rows if r["campaign"]))
    if not present:
        raise StorageError(f"{shown_url(storage)} holds {len(rows)} studies but no campaign: the report covers "
                           "campaigns (studies run by wb.Campaign)")
    missing = [n for n in names or [] if n not in present]
    if missing:
        raise StorageError(f"{shown_url(storage)} has no campaign {', '.join(map(repr, missing))}; "
                           f"it holds: {', '.join(present)}")
    out = []
    for cname in names or present:
        campaign = Campaign(cname, storage=storage.url)
        for study in storage.study_names(cname):
            spec = storage.get_study(study).spec
            settings = spec.get("settings", {})
            label = settings.get("label") or spec.get("optimizer", {}).get("name", "optimizer")
            budget = settings.get("budget") or spec.get("budget") or 1
            campaign.entries[study] = Entry(name=study, domain=StoredDomain(spec["domain"]), optimizer=None,
                                            label=label, seed=int(spec.get("seed", 0)), budget=int(budget))
        out.append(campaign)
    return out


@dataclass
class StudyView:
    """One stored study as the report shows it."""

    name: str
    label: str
    seed: int
    budget: int
    state: str
    updated: float
    results: StudyResults
    minimized: np.ndarray  # [n, k]
    values: np.ndarray  # [n, k] user's directions
    feasible: np.ndarray  # [n] bool
    front: np.ndarray  # [n] bool
    rows: PlotRows | None = None
    hypervolume: float | None = None
    best: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    best_table: pd.DataFrame | None = None
    picture: bytes | None = None
    picture_note: str | None = None


@dataclass
class DomainView:
    """A domain of the campaign and its studies (in the order they were added)."""

    name: str
    objectives: list[Objective]
    domain: Domain
    studies: list[StudyView]
    ref: np.ndarray | None
    picture_note: str | None = None


@dataclass
class CampaignView:
    """Everything the HTML page shows about one campaign."""

    name: str
    storage: str
    studies: pd.DataFrame
    compare: pd.DataFrame | None
    traces: pd.DataFrame | None
    domains: list[DomainView]
    note: str | None
    created: float


def front_mask(minimized: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """``[n]`` bool: feasible rows no other feasible row dominates (as ``StudyResults.pareto_mask``; moocore's
    O(n log n) sort, which handles 100,000 rows in milliseconds where a pairwise test takes minutes)."""
    import moocore

    mask = np.zeros(len(minimized), dtype=bool)
    idx = np.flatnonzero(feasible & np.isfinite(minimized).all(axis=1))
    if len(idx):
        mask[idx] = moocore.is_nondominated(minimized[idx], keep_weakly=True)
    return mask


def hypervolume_trace(view: StudyView, ref: np.ndarray, points: int = 50) -> pd.DataFrame:
    """``StudyResults.hypervolume_trace`` of one study (the same checkpoints and values; tested equal), with the
    running front kept by moocore's sort: the pairwise test there takes minutes at 100,000 rows."""
    import moocore

    from ..pareto import hypervolume

    r = ref * np.array([o.sign for o in view.results.objectives])
    f, feasible = view.minimized, view.feasible
    batch = view.results.raw["batch"]
    ends = np.flatnonzero(np.diff(batch, append=-1) != 0) + 1
    if len(ends) > points:
        ends = ends[np.unique(np.linspace(0, len(ends) - 1, points).round().astype(int))]
    rows, front, last = [], np.empty((0, f.shape[1])), 0
    for end in ends:
        new = f[last:end][feasible[last:end] & np.all(f[last:end] < r, axis=1)]
        if len(new):
            pool = np.vstack([front, new])
            front = pool[moocore.is_nondominated(pool, keep_weakly=True)]
        rows.append({"evaluations": int(end), "hypervolume": hypervolume(front, r) if len(front) else 0.0})
        last = end
    return pd.DataFrame(rows, columns=["evaluations", "hypervolume"])


def best_rows(minimized: np.ndarray, feasible: np.ndarray, front: np.ndarray, n: int = BEST_DESIGNS) -> np.ndarray:
    """Up to ``n`` row indices of a study's best designs: with one objective the best feasible values; with
    several, front rows spread over the front (each objective's best first, then the row farthest from those
    chosen in normalized objective space), ordered by the first objective."""
    if minimized.shape[1] == 1:
        idx = np.flatnonzero(feasible & np.isfinite(minimized[:, 0]))
        return idx[np.argsort(minimized[idx, 0], kind="stable")[:n]]
    idx = np.flatnonzero(front)
    if len(idx) <= n:
        return idx[np.argsort(minimized[idx, 0], kind="stable")]
    pts = minimized[idx]
    span = pts.max(axis=0) - pts.min(axis=0)
    unit = (pts - pts.min(axis=0)) / np.where(span > 0, span, 1.0)
    chosen: list[int] = []
    for j in range(pts.shape[1]):
        best = int(np.argmin(pts[:, j]))
        if best not in chosen and len(chosen) < n:
            chosen.append(best)
    dist = np.min(np.linalg.norm(unit[:, None, :] - unit[None, chosen, :], axis=2), axis=1)
    while len(chosen) < n:
        far = int(np.argmax(dist))
        chosen.append(far)
        dist = np.minimum(dist, np.linalg.norm(unit - unit[far], axis=1))
    picked = idx[chosen]
    return picked[np.argsort(minimized[picked, 0], kind="stable")]


def _design_table(view: StudyView, max_columns: int = 10) -> pd.DataFrame:
    """The best designs' index, objective values and (up to ``max_columns``) readable parameters."""
    res = view.results
    designs = res.space.decode_rows([res.raw["x"][i] for i in view.best])
    params = res.space.to_frame(designs)
    table = pd.DataFrame({"design": view.best})
    for j, o in enumerate(res.objectives):
        table[o.name] = view.values[view.best, j]
    for j, c in enumerate(res.constraints):
        table[c.name] = res.raw["g"][view.best, j]
    hidden = max(0, params.shape[1] - max_columns)
    for col in params.columns[:max_columns]:
        table[col if col not in table else f"param_{col}"] = params[col].to_numpy()
    table.attrs["hidden"] = hidden
    return table


def pictures_note(domain: Domain) -> str | None:
    """Why a domain's studies get no pictures (None when its ``render`` can draw them)."""
    if isinstance(domain, StoredDomain):
        return ("this report was written from the storage alone; pictures of the designs need the domain's code: "
                "write it from the campaign file (workbench report studies/FILE.py --out ...)")
    if type(domain).render is Domain.render:
        return f"{type(domain).__name__} draws no pictures (it has no render())"
    return None


def _picture(domain: Domain, view: StudyView) -> tuple[bytes | None, str | None]:
    """PNG of the domain's drawing of the best designs, or None with the reason."""
    if len(view.best) == 0:
        return None, "no feasible design to draw"
    res = view.results
    designs = res.space.decode_rows([res.raw["x"][i] for i in view.best])
    try:
        return domain.picture(designs), None
    except NotImplementedError as err:
        return None, str(err)
    except Exception as err:  # noqa: BLE001 - a drawing that fails must not lose the rest of the report
        return None, f"drawing failed: {type(err).__name__}: {err}"


def _common_error(errors: list[str | None]) -> str | None:
    """The most frequent error message of a study's failed rows, with its count (None when none failed)."""
    counts = Counter(e for e in errors if e)
    if not counts:
        return None
    message, n = counts.most_common(1)[0]
    return f"{message[:120]}{'...' if len(message) > 120 else ''} ({n:,}x)"


def _seconds(value: Any) -> float | None:
    """Seconds to three significant digits (what a table of timings needs)."""
    return None if value is None else float(f"{float(value):.3g}")


def collect(campaign: Campaign, ref: Any = None, pictures: bool = True,
            points_per_figure: int = POINTS_PER_FIGURE, best: int = BEST_DESIGNS) -> CampaignView:
    """Read campaign ``campaign`` from its storage (read-only) into what the page shows."""
    storage = open_storage(campaign.storage_url, create=False)
    try:
        return _collect(campaign, storage, ref, pictures, points_per_figure, best)
    finally:
        storage.close()


def _collect(campaign: Campaign, storage: Any, ref: Any, pictures: bool, points_per_figure: int,
             best: int) -> CampaignView:
    have = set(storage.study_names(campaign.name))
    entries = [e for e in campaign.entries.values() if e.name in have]
    if not entries:
        raise StorageError(f"campaign {campaign.name!r} has no stored studies in {shown_url(storage)}; run it first")
    refs: dict[str, np.ndarray] = {}
    tables, notes = [], []
    for dname in dict.fromkeys(e.domain.name for e in entries):  # one domain without a feasible design yet
        part = copy.copy(campaign)                                  # must not cost the others their hypervolume
        part.entries = {n: e for n, e in campaign.entries.items() if e.domain.name == dname}
        try:
            found = part.reference_points(ref)
            tables.append(part.compare(found))
            refs.update(found)
        except ValueError as err:
            notes.append(f"no hypervolume for {dname}: {err}")
    compare = pd.concat(tables, ignore_index=True) if tables else None
    note = "; ".join(notes) or None
    traces = []
    by_domain: dict[str, DomainView] = {}
    rows = []
    for e in entries:
        record = storage.get_study(e.name)
        res = StudyResults(storage, record)
        values = res.raw["f"]
        minimized = res.minimized()
        feasible = res.feasible_mask()
        view = StudyView(e.name, e.label, e.seed, e.budget, record.state, record.updated, res, minimized, values,
                         feasible, front_mask(minimized, feasible))
        dname = e.domain.name
        if dname not in by_domain:
            by_domain[dname] = DomainView(dname, res.objectives, e.domain, [], refs.get(dname),
                                          pictures_note(e.domain) if pictures else "pictures were not asked for")
        dv = by_domain[dname]
        dv.studies.append(view)
        if dv.ref is not None and len(res):
            view.hypervolume = res.hypervolume(dv.ref)
            trace = hypervolume_trace(view, dv.ref)
            trace.insert(0, "seed", e.seed)
            trace.insert(0, "label", e.label)
            trace.insert(0, "domain", dname)
            traces.append(trace)
        view.best = best_rows(minimized, feasible, view.front, best)
        if len(view.best):
            view.best_table = _design_table(view)
        if dv.picture_note is None:
            view.picture, view.picture_note = _picture(e.domain, view)
        counters = res.counters()
        rows.append({"study": e.name, "domain": dname, "optimizer": e.label, "seed": e.seed, "state": record.state,
                     "evaluations": len(res), "budget": e.budget, "failed": int((~res.raw["ok"]).sum()),
                     "most common error": _common_error(res.raw["error"]),
                     "feasible": int(feasible.sum()), "front": int(view.front.sum()),
                     "hypervolume": view.hypervolume,
                     "optimizer s": _seconds(counters.get("optimizer_seconds")),
                     "evaluation s": _seconds(counters.get("evaluation_seconds")),
                     "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(record.updated))})
    for dv in by_domain.values():
        cap = max(50, points_per_figure // len(dv.studies))
        for view in dv.studies:
            coords = None
            if view.minimized.shape[1] == 1:  # one objective: value against evaluation number
                coords = np.column_stack([np.arange(len(view.minimized), dtype=float), view.minimized[:, 0]])
            view.rows = plot_rows(view.minimized, view.feasible, view.front, cap, coords)
    table = pd.DataFrame(rows)
    if table["most common error"].isna().all():
        table = table.drop(columns=["most common error"])
    return CampaignView(campaign.name, shown_url(storage), table, compare,
                        pd.concat(traces, ignore_index=True) if traces else None, list(by_domain.values()), note,
                        time.time())
