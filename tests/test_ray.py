"""Ray: campaigns as Ray tasks, one study's evaluation on Ray actors, and the faults of both.

One local Ray (``ray.init(num_cpus=2)``) serves the whole module, as in CI.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
import time

import numpy as np
import pytest
import torch

import workbench as wb
from optimizers import NSGA2, RandomSearch
from workbench.executors import RayEvaluation, spread
from workbench.storage import StorageError, open_storage

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    """One local Ray with 2 CPUs for every test here; functions of this module travel by value to its workers
    (pytest's test modules are not importable there)."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    if started:
        ray.shutdown()


def zdt1_domain(delay: float = 0.0, name: str = "zdt1") -> wb.Domain:
    """ZDT1 on 6 variables; ``delay`` seconds per evaluate call, so a fault can land in the middle of a study."""

    def zdt1(x: torch.Tensor) -> torch.Tensor:
        if delay:
            time.sleep(delay)
        f1 = x[:, 0]
        g = 1 + 9 * x[:, 1:].mean(dim=1)
        return torch.stack([f1, g * (1 - torch.sqrt(f1 / g))], dim=1)

    return wb.Domain.from_function(wb.MixedSpace.box(6), zdt1, objectives=["f1", "f2"], name=name)


def reference(domain: wb.Domain, optimizer: wb.Optimizer, budget: int, seed: int = 0) -> np.ndarray:
    """Objectives of the same study run in this process, uninterrupted: ``[budget, 2]``."""
    study = wb.Study(domain, optimizer, storage="sqlite:///:memory:", name="reference", seed=seed, device="cpu")
    study.run(budget, progress=False)
    return study.results()[["f1", "f2"]].to_numpy()


def stored(url: str, name: str):
    return wb.Study.load(url, name).frame()


def pids(frame) -> list[int]:
    return [int(w.rsplit(":", 1)[1]) for w in frame["worker"]]


def kill_when(url: str, name: str, rows: int, kill) -> threading.Thread:
    """A thread that calls ``kill(frame)`` once the study holds at least ``rows`` stored evaluations."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                frame = stored(url, name)
            except (StorageError, sqlite3.OperationalError):  # no database or no study yet
                frame = None
            if frame is not None and len(frame) >= rows:
                kill(frame)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# ------------------------------------------------------------------------------------------- campaigns
def test_campaign_on_ray_equals_the_in_process_run(cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative SQLite path: Ray's workers started elsewhere must find the same file
    optimizers = {"nsga2": NSGA2(pop_size=10), "random": RandomSearch(batch_size=10)}
    camp = wb.Campaign("rc", storage="sqlite:///ray.db", device="cpu")
    camp.grid(zdt1_domain(), optimizers, seeds=[0], budget=60)
    wide = camp.add(zdt1_domain(), NSGA2(pop_size=10), seed=1, budget=40, num_cpus=2)  # both CPUs for one study
    local = wb.Campaign("rc", storage=f"sqlite:///{tmp_path / 'local.db'}", device="cpu")
    local.grid(zdt1_domain(), optimizers, seeds=[0], budget=60)
    local.add(zdt1_domain(), NSGA2(pop_size=10), seed=1, budget=40)
    assert camp.entries[wide].resources == {"num_cpus": 2.0}

    table = camp.run(executor="ray", progress=False)
    assert (table["status"] == "finished").all(), table
    local.run(progress=False)
    assert (tmp_path / "ray.db").exists() and not (tmp_path.parent / "ray.db").exists()
    url = f"sqlite:///{tmp_path / 'ray.db'}"
    for name, entry in camp.entries.items():
        frame = stored(url, name)
        assert list(frame.index) == list(range(entry.budget))
        assert set(pids(frame)) and os.getpid() not in pids(frame)  # written by Ray workers, not here
        np.testing.assert_array_equal(frame[["f1", "f2"]].to_numpy(),
                                      stored(local.storage_url, name)[["f1", "f2"]].to_numpy())
    states = {s["study"]: s["state"] for s in open_storage(url, create=False).summary()}
    assert set(states.values()) == {"finished"}
    # a second run finds everything stored and evaluates nothing
    camp.run(executor="ray", progress=False)
    assert sum(s["evaluations"] for s in open_storage(url, create=False).summary()) == 160


def test_killed_worker_resumes_from_its_last_stored_batch(cluster, tmp_path):
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    camp = wb.Campaign("kill", storage=url, device="cpu")
    name = camp.add(zdt1_domain(delay=0.15), NSGA2(pop_size=10), seed=3, budget=100)
    killed: list[int] = []

    def kill(frame) -> None:
        pid = pids(frame)[-1]
        killed.append(len(frame))
        os.kill(pid, signal.SIGKILL)  # the Ray worker running the study, mid-study

    watcher = kill_when(url, name, 20, kill)
    table = camp.run(executor="ray", max_retries=2, progress=False)
    watcher.join(timeout=5)
    assert killed and killed[0] < 100, "the worker was not killed mid-study"
    assert table.loc[0, "status"] == "finished", table
    frame = stored(url, name)
    assert list(frame.index) == list(range(100))  # nothing lost, nothing stored twice
    workers = pids(frame)
    assert len(set(workers)) == 2  # the first worker, then the one Ray started again
    assert len(set(workers[:killed[0]])) == 1
    np.testing.assert_array_equal(frame[["f1", "f2"]].to_numpy(),
                                  reference(zdt1_domain(), NSGA2(pop_size=10), 100, seed=3))


def test_a_study_whose_worker_keeps_dying_fails_with_the_reason_and_the_rest_goes_on(cluster, tmp_path):
    def crash(x: torch.Tensor) -> torch.Tensor:
        os._exit(1)  # the whole worker process dies, every time

    url = f"sqlite:///{tmp_path / 'die.db'}"
    camp = wb.Campaign("die", storage=url, device="cpu")
    doomed = camp.add(wb.Domain.from_function(wb.MixedSpace.box(2), crash, objectives=["a"], name="crash"),
                      RandomSearch(batch_size=5), budget=10)
    healthy = camp.add(zdt1_domain(), RandomSearch(batch_size=10), budget=30)
    table = camp.run(executor="ray", max_retries=1, progress=False).set_index("study")
    assert table.loc[healthy, "status"] == "finished"
    assert table.loc[doomed, "status"] == "failed"
    assert "WorkerCrashedError" in table.loc[doomed, "error"] and "died 2 times" in table.loc[doomed, "error"]
    states = {s["study"]: (s["state"], s["evaluations"]) for s in open_storage(url, create=False).summary()}
    assert states[doomed] == ("failed", 0) and states[healthy] == ("finished", 30)


def test_a_study_that_no_machine_can_hold_fails_at_once_and_the_rest_goes_on(cluster, tmp_path):
    camp = wb.Campaign("big", storage=f"sqlite:///{tmp_path / 'big.db'}", device="cpu")
    huge = camp.add(zdt1_domain(), RandomSearch(batch_size=10), budget=10, num_gpus=1)
    small = camp.add(zdt1_domain(), RandomSearch(batch_size=10), seed=1, budget=10)
    table = camp.run(executor="ray", progress=False).set_index("study")
    assert table.loc[small, "status"] == "finished" and table.loc[huge, "status"] == "failed"
    assert "asks for 1 CPU + 1 GPU, more than any machine of the Ray cluster has (2 CPU + 0 GPU)" in \
        table.loc[huge, "error"]


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1", "10.255.255.1:6379"])
def test_an_address_that_does_not_answer_is_a_clear_error_within_seconds(cluster, tmp_path, address):
    camp = wb.Campaign("addr", storage=f"sqlite:///{tmp_path / 'a.db'}", device="cpu")
    camp.add(zdt1_domain(), RandomSearch(batch_size=10), budget=10)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"no Ray cluster at '{address}'"):
        camp.run(executor="ray", address=address, progress=False)
    assert time.monotonic() - started < 8
    assert not (tmp_path / "a.db").exists()  # nothing started, nothing written


def test_bad_executor_arguments(tmp_path):
    camp = wb.Campaign("bad", storage=f"sqlite:///{tmp_path / 'b.db'}", device="cpu")
    camp.add(zdt1_domain(), RandomSearch(batch_size=10), budget=10)
    with pytest.raises(ValueError, match="executor must be one of"):
        camp.run(executor="dask", progress=False)
    with pytest.raises(ValueError, match="needs executor='ray'"):
        camp.run(address="auto", progress=False)
    with pytest.raises(ValueError, match="is not None, 'auto', 'HOST:PORT'"):
        camp.run(executor="ray", address="nowhere", progress=False)
    with pytest.raises(ValueError, match="num_gpus must be a non-negative number"):
        camp.add(zdt1_domain(), RandomSearch(), seed=1, num_gpus=-1)
    memory = wb.Campaign("mem", storage="sqlite:///:memory:", device="cpu")
    memory.add(zdt1_domain(), RandomSearch(batch_size=10), budget=10)
    with pytest.raises(ValueError, match="private to one process"):
        memory.run(executor="ray", progress=False)


def test_without_ray_the_local_paths_work_and_ray_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    camp = wb.Campaign("noray", storage=f"sqlite:///{tmp_path / 'n.db'}", device="cpu")
    camp.add(zdt1_domain(), RandomSearch(batch_size=10), budget=20)
    with pytest.raises(ImportError, match=r"pip install 'design-workbench\[ray\]'"):
        camp.run(executor="ray", progress=False)
    with pytest.raises(ImportError, match=r"pip install 'design-workbench\[ray\]'"):
        RayEvaluation(zdt1_domain())
    assert (camp.run(progress=False)["status"] == "finished").all()
    assert len(camp.results(next(iter(camp.entries)))) == 20


# ------------------------------------------------------------------------------------------ evaluation
def spiky(x: torch.Tensor) -> torch.Tensor:
    """ZDT1 on 4 variables with a hole: NaN where x1 > 0.7 (a failed row); 0.2 s per call."""
    time.sleep(0.2)
    f1 = x[:, 0]
    g = 1 + 9 * x[:, 1:].mean(dim=1)
    f2 = g * (1 - torch.sqrt(f1 / g))
    return torch.stack([f1, torch.where(x[:, 1] > 0.7, torch.nan, f2)], dim=1)


SPIKY = wb.Domain.from_function(wb.MixedSpace.box(4), spiky, objectives=["f1", "f2"], name="spiky")


@pytest.fixture(scope="module")
def engine(cluster):
    """Two evaluation actors (one per CPU of the local Ray), shared by the tests below to start fewer processes."""
    with RayEvaluation(SPIKY, actors=2, max_retries=0) as eng:
        yield eng


def test_spread_runs_a_study_on_actors_and_puts_the_local_engine_back(cluster, tmp_path):
    url = f"sqlite:///{tmp_path / 'spread.db'}"
    study = wb.Study(SPIKY, NSGA2(pop_size=12), storage=url, name="s", seed=1, device="cpu")
    with spread(study, actors=1) as engine:
        assert study.evaluator.engine is engine and len(engine.actors) == 1
        study.run(24, progress=False)
        assert engine.calls == 2
        (pid, device, gpus), = engine.placement
    assert study.evaluator.engine is None and engine.actors == []
    frame = stored(url, "s")
    assert pid != os.getpid() and device == "cpu" and gpus == [] and list(frame.index) == list(range(24))
    ref = wb.Study(SPIKY, NSGA2(pop_size=12), storage="sqlite:///:memory:", name="ref", seed=1, device="cpu")
    np.testing.assert_array_equal(frame[["f1", "f2"]].to_numpy(), ref.run(24, progress=False).results()[["f1", "f2"]])


def test_ray_evaluation_returns_rows_in_order_with_per_row_failures(engine):
    assert len({pid for pid, _, _ in engine.placement}) == 2 and {d for _, d, _ in engine.placement} == {"cpu"}
    x = SPIKY.space.sample(37, generator=torch.Generator().manual_seed(0))
    x[5, 2] = 2.0  # outside the box: invalid
    x[7] = x[3]  # a repeat: served from the driver's cache
    here = wb.Evaluator(SPIKY, device="cpu")(x)
    calls = engine.calls
    there = wb.Evaluator(SPIKY, device="cpu", engine=engine)(x)
    assert engine.calls - calls == 2  # one chunk per actor
    torch.testing.assert_close(there.objectives, here.objectives, equal_nan=True, rtol=0, atol=0)
    assert there.ok.tolist() == here.ok.tolist() and there.errors == here.errors
    assert there.errors[5].startswith("invalid design") and not there.ok[5]
    nan_rows = int((x[:, 1] > 0.7).sum())
    assert nan_rows > 0 and there.errors.count("objective 'f2' is nan") == nan_rows
    one = wb.Evaluator(SPIKY, device="cpu", engine=engine)(x[:1])  # fewer rows than actors
    torch.testing.assert_close(one.objectives, here.objectives[:1], equal_nan=True, rtol=0, atol=0)


def test_killed_actor_costs_no_evaluation_and_the_study_resumes(engine, tmp_path):
    url = f"sqlite:///{tmp_path / 'actors.db'}"

    def new_study() -> wb.Study:
        return wb.Study(SPIKY, NSGA2(pop_size=12), storage=url, name="spread", seed=5, device="cpu")

    # 1. no retries: an actor killed mid-batch stops the study, which keeps whole stored batches only
    study = new_study()
    study.evaluator.engine = engine
    kill_when(url, "spread", 24, lambda frame: (time.sleep(0.1), ray.kill(engine.actors[0])))
    with pytest.raises(RuntimeError, match=r"evaluation actor 0 died 1 times on one chunk \(max_retries=0\)"):
        study.run(120, progress=False)
    first = stored(url, "spread")
    assert 24 <= len(first) < 120 and len(first) % 12 == 0 and list(first.index) == list(range(len(first)))

    # 2. resumed with retries: the killed actor is replaced, its chunk sent again, the study finishes
    study = new_study()
    study.evaluator.engine = engine
    engine.max_retries = 2
    restarts = engine.restarts
    kill_when(url, "spread", min(len(first) + 24, 108), lambda frame: (time.sleep(0.1), ray.kill(engine.actors[1])))
    study.run(120, progress=False)
    restarts = engine.restarts - restarts  # actor 0, dead since part 1, and actor 1
    assert restarts == 2
    frame = stored(url, "spread")
    assert list(frame.index) == list(range(120))  # nothing lost, nothing stored twice
    ref = wb.Study(SPIKY, NSGA2(pop_size=12), storage="sqlite:///:memory:", name="ref", seed=5, device="cpu")
    ref.run(120, progress=False)
    expected = ref.results()
    np.testing.assert_array_equal(frame[["f1", "f2"]].to_numpy(), expected[["f1", "f2"]].to_numpy())
    assert list(frame["error"]) == list(expected["error"]) and (frame["status"] == "failed").sum() > 0


# ------------------------------------------------------------------------------- GPUs (skipped without CUDA)
def on_gpu(x: torch.Tensor) -> torch.Tensor:
    """ZDT1 that refuses to run anywhere but on a CUDA device (a CPU row would be a failed row)."""
    if x.device.type != "cuda":
        raise RuntimeError(f"evaluated on {x.device}, not on a GPU")
    f1 = x[:, 0]
    g = 1 + 9 * x[:, 1:].mean(dim=1)
    return torch.stack([f1, g * (1 - torch.sqrt(f1 / g))], dim=1)


@pytest.mark.gpu
def test_one_evaluation_actor_per_gpu(cluster):
    gpus = int(ray.cluster_resources().get("GPU", 0))
    domain = wb.Domain.from_function(wb.MixedSpace.box(30), on_gpu, objectives=["f1", "f2"], name="gpu")
    x = domain.space.sample(100_000, generator=torch.Generator().manual_seed(0))
    with RayEvaluation(domain) as engine:  # defaults: one actor, one GPU each, per GPU of the cluster
        assert len(engine.actors) == gpus and {d for _, d, _ in engine.placement} == {"cuda"}
        assert len({tuple(ids) for _, _, ids in engine.placement}) == gpus  # each on its own GPU
        there = wb.Evaluator(domain, device="cpu", engine=engine)(x)
    here = wb.Evaluator(domain, device="cuda")(x)
    assert bool(there.ok.all()) and engine.calls == gpus
    torch.testing.assert_close(there.objectives, here.objectives)


@pytest.mark.gpu
def test_campaign_studies_each_with_a_gpu(cluster, tmp_path):
    gpus = int(ray.cluster_resources().get("GPU", 0))
    domain = wb.Domain.from_function(wb.MixedSpace.box(30), on_gpu, objectives=["f1", "f2"], name="gpu")
    camp = wb.Campaign("gpus", storage=f"sqlite:///{tmp_path / 'g.db'}")  # device "auto": the GPU Ray gives it
    camp.grid(domain, {"nsga2": NSGA2(pop_size=1000)}, seeds=range(gpus), budget=5000, num_gpus=1, num_cpus=0)
    table = camp.run(executor="ray", progress=False)
    assert (table["status"] == "finished").all(), table
    for s in open_storage(camp.storage_url, create=False).summary():
        assert s["evaluations"] == 5000 and s["failed"] == 0  # every row evaluated on a GPU
