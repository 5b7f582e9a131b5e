import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

import workbench as wb
from optimizers import NSGA2, RandomSearch
from workbench.storage import open_storage


def _db(tmp_path, name="runs.db"):
    return f"sqlite:///{tmp_path / name}"


def test_run_results_and_pareto(tmp_path, mixed_domain):
    study = wb.Study(mixed_domain, NSGA2(pop_size=20), storage=_db(tmp_path), name="mixed", seed=3, device="cpu")
    study.run(100, progress=False)
    df = study.results()
    assert len(df) == 100 and list(df.index) == list(range(100))
    assert set(df["material"]) <= {"steel", "aluminium", "titanium"}
    assert df["n"].dtype == "Int64"
    assert (df["feasible"] == (df["budget"] <= 5.0)).all()
    # the user's direction is kept: stiffness is maximized, stored as computed
    x = mixed_domain.space.from_frame(df)
    raw = mixed_domain.evaluate(x)
    assert np.allclose(df["stiffness"], raw["stiffness"].numpy())
    front = study.pareto_front()
    assert len(front) >= 1 and front["feasible"].all()
    best_stiff = df[df.feasible]["stiffness"].max()
    assert best_stiff == front["stiffness"].max()
    hv = study.hypervolume(ref=[10.0, 0.0])
    assert hv > 0
    with pytest.raises(ValueError, match="reference point has 3 values; the study has 2 objectives"):
        study.hypervolume(ref=[1, 2, 3])
    with pytest.raises(ValueError, match=r"give a reference point: objectives \['mass', 'stiffness'\] have no ref"):
        study.hypervolume()


def test_bad_arguments(tmp_path, zdt1_domain):
    study = wb.Study(zdt1_domain, NSGA2(pop_size=10), storage=_db(tmp_path), seed=0, device="cpu")
    for budget in (0, -5, 2.5):
        with pytest.raises(ValueError, match="budget must be a positive number of evaluations"):
            study.run(budget)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        wb.Study(zdt1_domain, NSGA2(), storage=_db(tmp_path), seed=-1)
    with pytest.raises(ValueError, match="pop_size must be >= 2"):
        NSGA2(pop_size=1)
    with pytest.raises(TypeError, match="optimizer must be a workbench Optimizer"):
        wb.Study(zdt1_domain, "nsga2", storage=_db(tmp_path))
    with pytest.raises(wb.StorageError, match="unsupported storage URL .mysql:.*use sqlite:///PATH or postgresql://"):
        wb.Study(zdt1_domain, NSGA2(), storage="mysql://localhost/db")


def test_same_seed_same_results_and_resume_is_identical(tmp_path, mixed_domain):
    def run(db, stops):
        for budget in stops:
            wb.Study(mixed_domain, NSGA2(pop_size=16), storage=db, name="s", seed=7, device="cpu").run(budget, progress=False)
        return wb.Study.load(db, "s").frame()

    straight = run(_db(tmp_path, "a.db"), [160])
    again = run(_db(tmp_path, "b.db"), [160])
    resumed = run(_db(tmp_path, "c.db"), [48, 96, 96, 160])  # stop and resume at generation ends
    cols = [c for c in straight.columns if c not in ("seconds", "worker")]
    assert straight[cols].equals(again[cols])
    assert straight[cols].equals(resumed[cols])
    other = wb.Study(mixed_domain, NSGA2(pop_size=16), storage=_db(tmp_path, "d.db"), name="s", seed=8, device="cpu")
    assert not np.allclose(other.run(160, progress=False).results()["a"], straight["a"])


def test_a_study_saved_on_another_device_type_opens_and_resumes_deterministically(tmp_path, zdt1_domain):
    """A CUDA generator's 16-byte state in the snapshot (as a GPU run stores it) must not lock the study on a CPU."""
    import sqlite3

    from workbench.serialization import pack, unpack

    for name in ("a.db", "b.db"):
        wb.Study(zdt1_domain, NSGA2(pop_size=10), storage=_db(tmp_path, name), name="s", device="cpu").run(
            20, progress=False)
        with sqlite3.connect(tmp_path / name) as db:
            (blob,), = db.execute("SELECT state FROM snapshots").fetchall()
            state = unpack(blob)
            state["generator"] = torch.arange(16, dtype=torch.uint8)  # what torch.cuda's Philox state looks like
            db.execute("UPDATE snapshots SET state = ?", (pack(state),))
    frames = []
    for name in ("a.db", "b.db"):
        study = wb.Study(zdt1_domain, NSGA2(pop_size=10), storage=_db(tmp_path, name), name="s", device="cpu")
        with pytest.warns(UserWarning, match="another device type"):
            assert study.n_evaluations == 20
        frames.append(study.run(40, progress=False).results())
    assert len(frames[0]) == 40
    assert np.array_equal(frames[0]["x1"].to_numpy(), frames[1]["x1"].to_numpy())


def test_resume_rejects_a_different_optimizer(tmp_path, zdt1_domain):
    wb.Study(zdt1_domain, NSGA2(pop_size=10), storage=_db(tmp_path), name="s", device="cpu").run(10, progress=False)
    with pytest.raises(wb.StorageError, match="already exists .* with a different optimizer.params"):
        wb.Study(zdt1_domain, NSGA2(pop_size=12), storage=_db(tmp_path), name="s", device="cpu").run(20, progress=False)


def test_failures_inside_a_study_are_recorded(tmp_path):
    def fn(x):
        f = torch.stack([x[:, 0], 1 - x[:, 0] + x[:, 1]], 1)
        f[x[:, 1] > 0.8, 1] = float("nan")
        return f

    dom = wb.Domain.from_function(wb.MixedSpace.box(2), fn, objectives=["a", "b"])
    study = wb.Study(dom, RandomSearch(batch_size=50), storage=_db(tmp_path), seed=1, device="cpu").run(200, progress=False)
    df = study.results()
    failed = df[df.status == "failed"]
    assert len(df) == 200
    assert len(failed) == int((df["x1"] > 0.8).sum()) > 0
    assert (failed["error"] == "objective 'b' is nan").all()
    assert not failed["feasible"].any()


SCRIPT = textwrap.dedent("""
    import sys, time, torch
    import workbench as wb
    from optimizers import NSGA2

    def slow(x):
        time.sleep(0.05)
        f1 = x[:, 0]
        g = 1 + 9 * x[:, 1:].mean(1)
        return torch.stack([f1, g * (1 - torch.sqrt(f1 / g))], 1)

    dom = wb.Domain.from_function(wb.MixedSpace.box(5), slow, objectives=["f1", "f2"], name="slow")
    wb.Study(dom, NSGA2(pop_size=8), storage=sys.argv[1], name="k", seed=11, device="cpu").run(int(sys.argv[2]), progress=False)
""")


def test_sigkill_then_resume_loses_and_duplicates_nothing(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    killed_db, clean_db = _db(tmp_path, "killed.db"), _db(tmp_path, "clean.db")
    proc = subprocess.Popen([sys.executable, str(script), killed_db, "400"], env=env)
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline:
        time.sleep(0.2)
        if os.path.exists(tmp_path / "killed.db"):
            try:
                stored = open_storage(killed_db, create=False).summary()[0]["evaluations"]
            except Exception:
                stored = 0
            if stored >= 40:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 40 <= stored < 400
    subprocess.run([sys.executable, str(script), killed_db, "400"], env=env, check=True)
    subprocess.run([sys.executable, str(script), clean_db, "400"], env=env, check=True)
    killed, clean = wb.Study.load(killed_db, "k").frame(), wb.Study.load(clean_db, "k").frame()
    assert list(killed.index) == list(range(400))
    cols = [c for c in clean.columns if c not in ("seconds", "worker")]
    assert killed[cols].equals(clean[cols])


def test_a_stale_study_object_fails_on_the_stored_batch_then_resumes_from_storage(tmp_path, zdt1_domain):
    """Batches are stored by a thread of the study while the next one is computed: a write refused there is
    raised by run(), and the object's next run starts again from what the storage holds."""
    url = _db(tmp_path)
    stale = wb.Study(zdt1_domain, NSGA2(pop_size=10), storage=url, name="s", device="cpu")
    other = wb.Study(zdt1_domain, NSGA2(pop_size=10), storage=url, name="s", device="cpu")
    stale.run(20, progress=False)
    other.run(40, progress=False)  # the storage holds 40 now; ``stale`` believes 20
    with pytest.raises(wb.StorageError, match="expected 20 stored evaluations before batch 2, found 40"):
        stale.run(60, progress=False)
    assert stale.run(60, progress=False).n_evaluations == 60
    straight = wb.Study(zdt1_domain, NSGA2(pop_size=10), storage=_db(tmp_path, "straight.db"), name="s", device="cpu")
    cols = ["x0", "x1", "f1", "f2"]
    assert stale.results()[cols].equals(straight.run(60, progress=False).results()[cols])
    assert list(stale.results()["batch"]) == [i // 10 for i in range(60)]
    timings = straight.timings
    assert set(timings) == {"ask", "evaluate", "rows", "tell", "snapshot", "store_wait", "store"}
    assert all(timings[k] > 0 for k in ("ask", "evaluate", "tell", "snapshot", "store"))
