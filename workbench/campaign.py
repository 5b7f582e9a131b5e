"""Campaigns: grids of studies (optimizers x seeds x settings) run into one storage."""

from __future__ import annotations

import copy
import inspect
import os
import runpy
import traceback
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .domain import Domain
from .optimizer import Optimizer
from .results import StudyResults
from .storage import StorageError, open_storage
from .study import Study

WORKERS_ENV = "WORKBENCH_WORKERS"
EXECUTOR_ENV = "WORKBENCH_EXECUTOR"  # "local" or "ray": the executor of Campaign.run when it names none
EXECUTORS = ("local", "ray")


@dataclass
class Entry:
    """One study of a campaign, not yet built."""

    name: str
    domain: Domain
    optimizer: Optimizer
    label: str
    seed: int
    budget: int
    batch_size: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, float] = field(default_factory=dict)  # num_cpus / num_gpus of its Ray task


class Campaign:
    """Many studies into one storage, run one after another or in a process pool.

    Studies are resumable, so running a campaign again finishes what is missing and
    leaves finished studies as they are. With ``workers > 1`` each worker process
    rebuilds the campaign from the Python file that defines it (or receives the pickled
    entry when the campaign was not defined at the top level of a file).
    """

    def __init__(self, name: str, storage: str | None = None, device: str = "auto",
                 deterministic: bool = False) -> None:
        if not name or "/" in name:
            raise ValueError(f"campaign name must be non-empty and without '/', got {name!r}")
        self.name = name
        self.storage_url = storage or "sqlite:///runs.db"
        self.device = device
        self.deterministic = bool(deterministic)  # every study on PyTorch's deterministic kernels (Study)
        self.entries: dict[str, Entry] = {}
        caller = inspect.stack()[1]
        self._source = os.path.abspath(caller.filename) if caller.function == "<module>" and os.path.exists(caller.filename) else None

    # ---------------------------------------------------------------- building
    def add(self, domain: Domain, optimizer: Optimizer, seed: int = 0, budget: int = 1000, label: str | None = None,
            batch_size: int | None = None, name: str | None = None, num_cpus: float | None = None,
            num_gpus: float | None = None, **settings: Any) -> str:
        """Add one study; returns its name (``campaign/domain/label/seedN`` unless given).

        ``num_cpus`` / ``num_gpus``: what its Ray task asks for with ``run(executor="ray")`` (default 1 CPU,
        no GPU); other executors ignore them.
        """
        resources = {}
        for key, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or value < 0:
                    raise ValueError(f"{key} must be a non-negative number, got {value!r}")
                resources[key] = float(value)
        label = label or optimizer.name
        name = name or f"{self.name}/{domain.name}/{label}/seed{seed}"
        if name in self.entries:
            raise ValueError(f"campaign {self.name!r} already has a study named {name!r}")
        if not isinstance(budget, (int, np.integer)) or budget <= 0:
            raise ValueError(f"budget must be a positive number of evaluations, got {budget!r}")
        self.entries[name] = Entry(name, domain, copy.deepcopy(optimizer), label, int(seed), int(budget), batch_size,
                                   dict(settings), resources)
        return name

    def grid(self, domains: Domain | Iterable[Domain], optimizers: Mapping[str, Optimizer], seeds: Iterable[int],
             budget: int, batch_size: int | None = None, **settings: Any) -> list[str]:
        """Add every (domain, optimizer, seed) combination; ``optimizers`` maps label -> optimizer."""
        domains = [domains] if isinstance(domains, Domain) else list(domains)
        return [self.add(d, opt, seed=s, budget=budget, label=label, batch_size=batch_size, **settings)
                for d in domains for label, opt in optimizers.items() for s in seeds]

    def study(self, name: str) -> Study:
        """Build the Study of entry ``name``."""
        if name not in self.entries:
            raise KeyError(f"campaign {self.name!r} has no study {name!r}")
        e = self.entries[name]
        settings = {"label": e.label, "budget": e.budget, **e.settings}
        return Study(e.domain, e.optimizer, storage=self.storage_url, name=e.name, seed=e.seed, device=self.device,
                     batch_size=e.batch_size, campaign=self.name, settings=settings,
                     deterministic=self.deterministic)

    # ----------------------------------------------------------------- running
    def run(self, workers: int | None = None, progress: bool = True, executor: str | None = None,
            address: str | None = None, max_retries: int = 2) -> pd.DataFrame:
        """Run every study to its budget; returns one row per study (name, status, error).

        ``executor="local"`` (default, or ``$WORKBENCH_EXECUTOR``): in this process, or in ``workers`` spawned
        processes. ``executor="ray"``: each study is a Ray task with its entry's ``num_cpus`` / ``num_gpus``, on a
        local Ray (``address=None``), the cluster started on this machine (``"auto"``) or the one at
        ``"HOST:PORT"``; ``workers`` then caps the studies in flight, and a study whose worker process dies is
        run again (it resumes from its last stored batch) up to ``max_retries`` times, then reported failed.
        """
        executor = executor or os.environ.get(EXECUTOR_ENV) or "local"
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
        if executor == "ray":
            from .executors.ray_session import import_ray

            import_ray()  # says how to install Ray before anything starts
        elif address is not None:
            raise ValueError(f"address={address!r} names a Ray cluster; it needs executor='ray'")
        limit = workers
        if workers is None:
            workers = int(os.environ.get(WORKERS_ENV, "1"))
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        names = list(self.entries)
        outcome: dict[str, str | None] = {}
        bar = tqdm(total=len(names), desc=f"campaign {self.name}", disable=not progress)
        if executor == "ray":
            from .executors.ray_campaign import run_on_ray

            def done(name: str, error: str | None) -> None:
                outcome[name] = error
                bar.update(1)

            try:
                run_on_ray(self, names, address, max_retries, limit, done)
            finally:
                bar.close()
        elif workers == 1 or len(names) == 1:
            for n in names:
                outcome[n] = _run_entry(self, n)  # one bar over studies; nested study bars clutter logs
                bar.update(1)
        else:
            ctx = get_context("spawn")
            threads = max(1, (os.cpu_count() or 1) // workers)
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {}
                for n in names:
                    if self._source is not None:
                        futures[pool.submit(_run_from_source, self._source, self.name, n, threads)] = n
                    else:
                        futures[pool.submit(_run_from_entry, self._detached(n), threads)] = n
                for fut in as_completed(futures):
                    try:
                        outcome[futures[fut]] = fut.result()
                    except Exception as err:  # noqa: BLE001 - a worker that died must not stop the others
                        outcome[futures[fut]] = f"{type(err).__name__}: {err}"
                    bar.update(1)
        bar.close()
        table = pd.DataFrame({"study": names, "error": [outcome.get(n) for n in names]})
        table["status"] = np.where(table["error"].isna(), "finished", "failed")
        failed = table[table.status == "failed"]
        for _, row in failed.iterrows():
            print(f"study {row.study} failed: {row.error}")
        return table

    def _detached(self, name: str) -> Campaign:
        """A copy holding only one entry, to send to a worker process."""
        clone = copy.copy(self)
        clone.entries = {name: self.entries[name]}
        return clone

    # ---------------------------------------------------------------- analysis
    def results(self, name: str) -> StudyResults:
        return StudyResults.load(open_storage(self.storage_url, create=False), name)

    def finished(self, report: bool = True) -> Iterator[tuple[str, Entry, StudyResults]]:
        """``(name, entry, results)`` of every study that holds its whole budget, in the order they were added;
        the others (not started, cut short, no database yet) are skipped, with a line each when ``report``."""
        for name, entry in self.entries.items():
            try:
                stored = self.results(name)
            except (KeyError, StorageError):
                stored = None
            if stored is None or len(stored) < entry.budget:
                if report:
                    print(f"skipping unfinished study {name} ({0 if stored is None else len(stored)} of {entry.budget})")
                continue
            yield name, entry, stored

    def _stored(self) -> list[tuple[Entry, StudyResults]]:
        storage = open_storage(self.storage_url, create=False)
        have = set(storage.study_names(self.name))
        return [(e, StudyResults(storage, storage.get_study(e.name))) for e in self.entries.values() if e.name in have]

    def reference_points(self, ref: Mapping[str, Iterable[float]] | Iterable[float] | None = None) -> dict[str, np.ndarray]:
        """Reference point (user's directions) per domain name.

        Given explicitly, or from the objectives' own ``ref``, or else inferred as the
        worst feasible value seen across all of the domain's studies plus 10% of the range.
        """
        by_domain: dict[str, list[StudyResults]] = {}
        for e, res in self._stored():
            by_domain.setdefault(e.domain.name, []).append(res)
        out = {}
        for dname, results in by_domain.items():
            objectives = results[0].objectives
            if isinstance(ref, Mapping) and dname in ref:
                out[dname] = np.asarray(ref[dname], dtype=float)
            elif ref is not None and not isinstance(ref, Mapping):
                out[dname] = np.asarray(list(ref), dtype=float)
            elif all(o.ref is not None for o in objectives):
                out[dname] = np.array([o.ref for o in objectives], dtype=float)
            else:
                pts = np.vstack([r.minimized()[r.feasible_mask()] for r in results])
                if len(pts) == 0:
                    raise ValueError(f"domain {dname!r}: no feasible design to infer a reference point from; give ref")
                worst, best = pts.max(axis=0), pts.min(axis=0)
                signs = np.array([o.sign for o in objectives])
                out[dname] = (worst + 0.1 * np.maximum(worst - best, 1e-12)) * signs
        return out

    def traces(self, ref: Any = None, points: int = 50) -> pd.DataFrame:
        """Long table: domain, label, seed, evaluations, hypervolume."""
        refs = self.reference_points(ref)
        frames = []
        for e, res in self._stored():
            t = res.hypervolume_trace(refs[e.domain.name], points)
            t.insert(0, "seed", e.seed)
            t.insert(0, "label", e.label)
            t.insert(0, "domain", e.domain.name)
            frames.append(t)
        if not frames:
            return pd.DataFrame(columns=["domain", "label", "seed", "evaluations", "hypervolume"])
        return pd.concat(frames, ignore_index=True)

    def compare(self, ref: Any = None) -> pd.DataFrame:
        """Final hypervolume per (domain, optimizer label): mean, std over seeds, seeds, evaluations."""
        refs = self.reference_points(ref)
        rows = []
        for e, res in self._stored():
            rows.append({"domain": e.domain.name, "optimizer": e.label, "seed": e.seed, "evaluations": len(res),
                         "hypervolume": res.hypervolume(refs[e.domain.name]),
                         "ref": ", ".join(f"{v:.4g}" for v in refs[e.domain.name])})
        if not rows:
            raise ValueError(f"campaign {self.name!r} has no stored studies yet; run it first")
        table = pd.DataFrame(rows)
        summary = table.groupby(["domain", "optimizer"], sort=False).agg(
            hv_mean=("hypervolume", "mean"), hv_std=("hypervolume", "std"), seeds=("seed", "count"),
            evaluations=("evaluations", "mean"), ref=("ref", "first")).reset_index()
        return summary

    def plot_hypervolume(self, domain: str | None = None, ref: Any = None, ax: Any = None) -> Any:
        """Hypervolume against evaluations per optimizer, mean with a std band over seeds."""
        from .plotting import plot_hypervolume

        traces = self.traces(ref)
        domains = traces["domain"].unique().tolist()
        domain = domain or (domains[0] if domains else None)
        ax = plot_hypervolume(traces[traces["domain"] == domain], ax=ax)
        ax.set_title(f"{self.name}: {domain}")
        return ax

    def plot_pareto(self, domain: str | None = None, seed: int | None = None, ax: Any = None) -> Any:
        """Pareto fronts of each optimizer on one domain (one seed: the first unless given)."""
        from .plotting import plot_pareto

        stored = self._stored()
        domain = domain or stored[0][0].domain.name
        chosen = [(e, r) for e, r in stored if e.domain.name == domain]
        seed = chosen[0][0].seed if seed is None else seed
        picked = [r for e, r in chosen if e.seed == seed]
        front = chosen[0][0].domain.pareto_front()
        ax = plot_pareto(picked, ax=ax, front=front, labels=[e.label for e, _ in chosen if e.seed == seed])
        ax.set_title(f"{self.name}: {domain}, seed {seed}")
        return ax

    def report(self, out_dir: str | os.PathLike, ref: Any = None, format: str = "png") -> dict[str, Path]:
        """Write the comparison table and, per domain, a hypervolume and a Pareto plot (``format="png"``), or one
        self-contained HTML page (``format="html"``: ``out_dir`` is the .html file, or a folder that gets
        ``<campaign>.html``) with the tables, interactive fronts and pictures of the best designs."""
        if format not in ("png", "html"):
            raise ValueError(f"format must be 'png' or 'html', got {format!r}")
        if format == "html":
            from .report import html_path, write_html

            return {"html": write_html(self, html_path(out_dir, self.name, several=False), ref=ref)}
        import matplotlib.pyplot as plt

        from .plotting import save

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        table = self.compare(ref)
        written["compare"] = out / "compare.csv"
        table.to_csv(written["compare"], index=False)
        for dname in table["domain"].unique():
            fig, ax = plt.subplots(figsize=(6, 4))
            self.plot_hypervolume(domain=dname, ref=ref, ax=ax)
            written[f"{dname}-hypervolume"] = save(fig, out / f"{dname}-hypervolume.png")
            plt.close(fig)
            ax = self.plot_pareto(domain=dname)
            written[f"{dname}-pareto"] = save(ax.figure, out / f"{dname}-pareto.png")
            plt.close(ax.figure)
        return written


def _run_entry(campaign: Campaign, name: str, progress: bool = False) -> str | None:
    """Run one study; returns None, or the error message if it failed (the campaign goes on)."""
    try:
        campaign.study(name).run(campaign.entries[name].budget, progress=progress)
        return None
    except Exception as err:  # noqa: BLE001
        traceback.print_exc()
        return f"{type(err).__name__}: {err}"


def _run_from_source(source: str, campaign_name: str, study_name: str, threads: int) -> str | None:
    """Worker: rebuild the campaign from its file, then run one of its studies."""
    torch.set_num_threads(threads)
    namespace = runpy.run_path(source, run_name="__workbench_worker__")
    for value in namespace.values():
        if isinstance(value, Campaign) and value.name == campaign_name:
            return _run_entry(value, study_name)
    raise RuntimeError(f"{source} defines no campaign named {campaign_name!r} at its top level")


def _run_from_entry(campaign: Campaign, threads: int) -> str | None:
    torch.set_num_threads(threads)
    (name,) = campaign.entries
    return _run_entry(campaign, name)
