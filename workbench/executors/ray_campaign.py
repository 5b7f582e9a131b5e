"""A campaign on Ray: each study is one Ray task with its own CPU / GPU request.

A task receives its campaign entry by value (Ray's cloudpickle), builds the Study and runs it into the
campaign's storage; a study resumes from its last stored batch, so when a task's worker process dies
Ray runs the task again (``max_retries``) and it costs at most the batch that was not yet stored. A study
whose worker keeps dying is reported failed with the reason, marked ``failed`` in the storage, and the
other studies go on.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from .ray_session import connect, import_ray

if TYPE_CHECKING:
    from ..campaign import Campaign

DEFAULT_RESOURCES = {"num_cpus": 1.0, "num_gpus": 0.0}


def shared_url(url: str) -> str:
    """The storage URL as every worker must see it: a relative SQLite path made absolute (a Ray worker
    need not start in the driver's directory); an in-memory database, private to one process, refused."""
    if "://" in url and not url.startswith("sqlite:"):
        return url  # a database server: the same URL from every machine
    path = url.split("sqlite:///", 1)[1] if url.startswith("sqlite:///") else url
    if path in ("", ":memory:"):
        raise ValueError(f"executor='ray' needs a storage that every worker can open; {url!r} is private to "
                         "one process: give a file (sqlite:///runs.db) or a database server URL")
    return f"sqlite:///{os.path.abspath(path)}" if not os.path.isabs(path) else url


def study_task(campaign: Campaign, name: str, num_cpus: float, num_gpus: float) -> str | None:
    """Ray task: run one study of ``campaign`` (a copy holding only that entry); None or the error."""
    from ..campaign import _run_entry

    torch.set_num_threads(max(1, int(num_cpus)))
    if campaign.device == "auto" and not num_gpus and not os.environ.get("WORKBENCH_DEVICE"):
        campaign.device = "cpu"  # a study that asked for no GPU does not take one Ray gave to another task
    return _run_entry(campaign, name)


def _reason(ray: Any, err: BaseException, max_retries: int) -> str:
    """A one-line cause from a Ray error (their messages run over many lines)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    crashes = tuple(getattr(ray.exceptions, n) for n in ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError")
                    if hasattr(ray.exceptions, n))
    if isinstance(err, crashes):
        first = lines[0] if lines else ""
        return (f"{type(err).__name__}: the study's worker died {max_retries + 1} times (max_retries={max_retries}); "
                f"the last time: {first}")
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"  # a task error ends with the Python exception


def _mark_failed(url: str, name: str) -> None:
    """Set the stored study's state to 'failed' (when it got as far as being created)."""
    from ..storage import StorageError, open_storage

    try:
        storage = open_storage(url, create=False)
        storage.set_state(storage.get_study(name).id, "failed")
    except (StorageError, KeyError):
        pass


def run_on_ray(campaign: Campaign, names: list[str], address: str | None, max_retries: int,
               limit: int | None, done: Callable[[str, str | None], None]) -> None:
    """Run the studies ``names`` of ``campaign`` as Ray tasks; ``done(name, error)`` as each one ends.

    ``limit`` caps the studies in flight at once (None: as many as the cluster's resources allow).
    """
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
    url = shared_url(campaign.storage_url)
    ray = import_ray()
    started = connect(address)
    try:
        if url.startswith("sqlite:") and len([n for n in ray.nodes() if n.get("Alive")]) > 1:
            warnings.warn(f"the Ray cluster has several machines but the storage {url!r} is a SQLite file, which "
                          "each machine sees only if it lies on a shared file system; use a database server URL",
                          stacklevel=3)
        remote = ray.remote(study_task)
        queue = list(names)
        pending: dict[Any, str] = {}
        machines = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]

        def submit(name: str) -> None:
            wanted = {**DEFAULT_RESOURCES, **campaign.entries[name].resources}
            need = {"CPU": wanted["num_cpus"], "GPU": wanted["num_gpus"]}
            if not any(all(m.get(k, 0.0) >= v for k, v in need.items()) for m in machines):
                largest = ", ".join(f"{m.get('CPU', 0.0):g} CPU + {m.get('GPU', 0.0):g} GPU" for m in machines)
                done(name, f"the study asks for {need['CPU']:g} CPU + {need['GPU']:g} GPU, more than any machine of "
                           f"the Ray cluster has ({largest}); lower its num_cpus / num_gpus")
                return
            clone = campaign._detached(name)
            clone.storage_url = url
            try:
                ref = remote.options(name=f"study {name}", max_retries=max_retries, retry_exceptions=False,
                                     **wanted).remote(clone, name, wanted["num_cpus"], wanted["num_gpus"])
            except Exception as err:  # noqa: BLE001 - e.g. a domain that cannot be pickled: this study only
                done(name, f"cannot send the study to Ray: {type(err).__name__}: {err}")
                return
            pending[ref] = name

        try:
            while queue or pending:
                while queue and (limit is None or len(pending) < limit):
                    submit(queue.pop(0))
                if not pending:
                    continue
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    name = pending.pop(ref)
                    try:
                        error = ray.get(ref)
                    except ray.exceptions.RayError as err:
                        error = _reason(ray, err, max_retries)
                    if error is not None:
                        _mark_failed(url, name)
                    done(name, error)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
    finally:
        if started:
            ray.shutdown()
