"""The storage suite on every backend: SQLite, and PostgreSQL on a throwaway local server.

The PostgreSQL tests share one server per test session (``tests/pg_server.py``: initdb into a temporary
directory, a Unix socket there, run as the unprivileged ``postgres`` user when the tests run as root), and
each test gets a fresh database. Without the server binaries these tests fail, saying how to install them;
``WORKBENCH_TEST_POSTGRES=skip`` skips them instead.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from pg_server import PASSWORD, PASSWORD_USER, LocalPostgres, PostgresUnavailable  # noqa: E402

import workbench as wb  # noqa: E402
from optimizers import NSGA2, RandomSearch  # noqa: E402
from workbench.cli import main  # noqa: E402
from workbench.serialization import pack  # noqa: E402
from workbench.storage import BatchRows, Storage, open_storage, redact_url  # noqa: E402

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    """One local PostgreSQL server for the session; fails (does not skip) when it cannot start."""
    if os.environ.get("WORKBENCH_TEST_POSTGRES") == "skip":
        pytest.skip("WORKBENCH_TEST_POSTGRES=skip")
    try:
        server = LocalPostgres().start()
    except PostgresUnavailable as err:
        pytest.fail(str(err), pytrace=False)
    yield server
    server.stop()


def _new_database(server: LocalPostgres) -> str:
    return server.create_database(f"t{os.getpid()}_{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    """An empty storage of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return _new_database(request.getfixturevalue("postgres"))


@pytest.fixture
def pg_url(postgres) -> str:
    return _new_database(postgres)


def _box_domain(pause: float = 0.0) -> wb.Domain:
    """ZDT1 on 6 variables; ``pause`` seconds of sleep per batch make writers overlap in time."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        time.sleep(pause)
        g = 1 + 9 * x[:, 1:].mean(1)
        return torch.stack([x[:, 0], g * (1 - torch.sqrt(x[:, 0] / g))], 1)

    return wb.Domain.from_function(wb.MixedSpace.box(6), fn, objectives=["f1", "f2"], name="box")


def _run(url: str, name: str, budget: int, optimizer=None, seed: int = 0, pause: float = 0.0) -> wb.Study:
    optimizer = optimizer or RandomSearch(batch_size=10)
    return wb.Study(_box_domain(pause), optimizer, storage=url, name=name, seed=seed, device="cpu").run(
        budget, progress=False)


def _stored(url: str, name: str) -> pd.DataFrame:
    """A study's rows without the columns that depend on the machine and the clock."""
    return wb.Study.load(url, name).frame().drop(columns=["seconds", "worker"])


def _writer(url: str, name: str, seed: int, budget: int, pause: float, outcomes) -> None:
    """A child process: run one study of NSGA-II to ``budget``; report None or the error."""
    torch.set_num_threads(1)
    try:
        _run(url, name, budget, NSGA2(pop_size=10), seed=seed, pause=pause)
        error = None
    except wb.StorageError as err:
        error = str(err)
    if outcomes is not None:
        outcomes.put((name, error))


# ---------------------------------------------------------------------------------- semantics
def test_a_resumed_study_equals_a_straight_one_and_the_sqlite_one(url, tmp_path, mixed_domain, one_thread):
    def run(storage, name, stops):
        for budget in stops:
            wb.Study(mixed_domain, NSGA2(pop_size=16), storage=storage, name=name, seed=7, device="cpu").run(
                budget, progress=False)
        return _stored(storage, name)

    straight = run(url, "straight", [160])
    resumed = run(url, "resumed", [48, 96, 96, 160])  # stops at generation ends, and one run with nothing to do
    reference = run(f"sqlite:///{tmp_path / 'reference.db'}", "straight", [160])
    assert list(straight.index) == list(range(160))
    pd.testing.assert_frame_equal(straight, resumed)
    pd.testing.assert_frame_equal(straight, reference)  # a PostgreSQL study stores exactly what SQLite stores
    assert set(straight["material"]) <= {"steel", "aluminium", "titanium"} and straight["n"].dtype == "Int64"


def test_the_snapshot_and_counters_follow_the_last_batch(url, one_thread):
    optimizer = NSGA2(pop_size=10)
    study = wb.Study(_box_domain(), optimizer, storage=url, name="s", device="cpu", campaign="c")
    study.run(40, progress=False)
    storage = study.storage
    record = storage.get_study("s")
    batch, n_evals, blob, counters = storage.load_snapshot(record.id)
    assert (batch, n_evals) == (3, 40) and blob == pack(optimizer.state_dict())
    assert counters == study.counters() == wb.Study.load(url, "s").counters() and counters["evaluate_calls"] == 4
    resumed = wb.Study(_box_domain(), NSGA2(pop_size=10), storage=url, name="s", device="cpu", campaign="c")
    assert resumed.n_evaluations == 40 and resumed.counters() == counters
    after = resumed.run(60, progress=False).counters()
    assert after["evaluate_calls"] == 6 and after["optimizer_seconds"] > counters["optimizer_seconds"]
    summary = open_storage(url, create=False).summary()
    assert [(r["study"], r["campaign"], r["state"], r["evaluations"], r["failed"], r["budget"]) for r in summary] == [
        ("s", "c", "finished", 60, 0, 60)]
    assert storage.study_names("c") == ["s"] and storage.study_names("other") == [] and storage.count(record.id) == 60


def test_a_batch_that_does_not_follow_the_stored_ones_is_refused_whole(url):
    storage = _run(url, "s", 20).storage
    sid = storage.get_study("s").id
    before = storage.load_snapshot(sid)
    x = _box_domain().space.sample(5, torch.Generator().manual_seed(0))
    rows = BatchRows(x=_box_domain().space.encode_rows(x), f=np.arange(10.0).reshape(5, 2), g=np.empty((5, 0)),
                     ok=np.array([True, True, False, True, True]), errors=[None, None, "boom", None, None],
                     seconds=np.full(5, 0.5))
    for start in (10, 30):  # a batch another process has stored already, and a gap
        with pytest.raises(wb.StorageError, match=f"expected {start} stored evaluations before batch 2, found 20; "
                                                  "is another process running the same study"):
            storage.append_batch(sid, 2, start, rows, b"state", {"n": 1})
        assert storage.count(sid) == 20 and storage.load_snapshot(sid) == before
    storage.append_batch(sid, 2, 20, rows, b"state", {"n": 1})
    assert storage.load_snapshot(sid) == (2, 25, b"state", {"n": 1})
    raw = storage.load_evaluations(sid, 2, 0)
    assert list(raw["idx"][-5:]) == [20, 21, 22, 23, 24] and list(raw["batch"][-5:]) == [2] * 5
    assert np.array_equal(raw["f"][-5:], rows.f) and raw["error"][-5:] == rows.errors and raw["x"][-5:] == rows.x
    assert list(raw["ok"][-5:]) == list(rows.ok) and np.allclose(raw["seconds"][-5:], 0.5)
    storage.delete_study("s")
    with pytest.raises(wb.StorageError, match="no study named 's' in .*the storage has no studies"):
        storage.get_study("s")
    with pytest.raises(wb.StorageError, match="is not in .*deleted while running"):
        storage.append_batch(sid, 3, 25, rows, b"", {})


def test_a_study_is_created_once_and_its_identity_is_checked_on_resume(url):
    storage = open_storage(url)
    first, created = storage.get_or_create_study("a", {"seed": 1}, campaign="c")
    again, created_again = storage.get_or_create_study("a", {"seed": 2})
    assert created and not created_again and (again.id, again.spec, again.campaign) == (first.id, {"seed": 1}, "c")
    _run(url, "s", 20, NSGA2(pop_size=10))
    with pytest.raises(wb.StorageError, match=r"'s' already exists in .* with a different optimizer.params"):
        _run(url, "s", 40, NSGA2(pop_size=12))
    assert len(wb.Study.load(url, "s")) == 20


def test_first_use_from_many_threads_makes_one_schema_and_one_study(url):
    def first_use(i: int):
        return open_storage(url).get_or_create_study("same", {"thread": i})

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(first_use, range(6)))
    assert sum(created for _, created in outcomes) == 1 and len({record.id for record, _ in outcomes}) == 1


def test_a_storage_written_by_a_newer_workbench_is_refused(url):
    storage = open_storage(url)
    storage.conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(wb.StorageError, match="has schema version 99; this workbench reads up to 2: upgrade"):
        open_storage(url)


def _failing_domain() -> wb.Domain:
    """ZDT1 on 6 variables with a constraint; f2 is NaN where x1 > 0.9, so some rows fail with a message."""

    def fn(x: torch.Tensor) -> dict[str, torch.Tensor]:
        g = 1 + 9 * x[:, 1:].mean(1)
        f2 = g * (1 - torch.sqrt(x[:, 0] / g))
        return {"f1": x[:, 0], "f2": torch.where(x[:, 1] > 0.9, torch.full_like(f2, float("nan")), f2),
                "c": x[:, 2] - 0.8}

    return wb.Domain.from_function(wb.MixedSpace.box(6), fn, objectives=["f1", "f2"],
                                   constraints=[wb.Constraint("c", 0.0, "<=")], name="failing")


def _write_version_1(url: str, study: wb.Study, source: Storage) -> None:
    """Make the empty storage at ``url`` what workbench wrote before blocks (schema version 1), holding the study
    that ``source`` holds under ``study.name``: one ``evaluations`` row per design, as version 1 encoded it."""
    storage = open_storage(url)
    ph = "%s" if url.startswith("postgresql") else "?"
    cur = storage.conn.cursor()
    cur.execute("DROP TABLE batches")  # the tables of version 1 are the others, unchanged
    cur.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    record, _ = storage.get_or_create_study(study.name, study.spec())
    stored = source.get_study(study.name)
    raw = source.load_evaluations(stored.id, 2, 1)
    rows = [(record.id, int(raw["idx"][i]), int(raw["batch"][i]), raw["x"][i], raw["f"][i].astype("<f8").tobytes(),
             raw["g"][i].astype("<f8").tobytes(), int(raw["ok"][i]), raw["error"][i], float(raw["seconds"][i]),
             raw["worker"][i], float(raw["created"][i])) for i in range(len(raw["idx"]))]
    cur.executemany(f"INSERT INTO evaluations VALUES ({', '.join([ph] * 11)})", rows)
    batch, n_evals, state, counters = source.load_snapshot(stored.id)
    cur.execute(f"INSERT INTO snapshots VALUES ({', '.join([ph] * 6)})",
                (record.id, batch, n_evals, state, json.dumps(counters), time.time()))
    storage.close()


def test_a_version_1_storage_opens_reads_the_same_as_blocks_and_resumes_in_blocks(url, tmp_path, one_thread):
    """Studies written one row per design (schema version 1) read exactly as the same studies stored in blocks,
    and go on in blocks: a resumed one equals an uninterrupted run."""
    blocks = f"sqlite:///{tmp_path / 'blocks.db'}"

    def study(storage: str) -> wb.Study:
        return wb.Study(_failing_domain(), NSGA2(pop_size=16), storage=storage, name="s", seed=7, device="cpu")

    part = study(blocks).run(96, progress=False)  # six generations, in blocks
    _write_version_1(url, part, part.storage)
    assert wb.Study.load(blocks, "s").frame()["status"].eq("failed").any()
    old = open_storage(url, create=False)  # opening migrates: version 2, the batches table added
    assert old._rows("SELECT value FROM meta WHERE key='schema_version'") == [("2",)]
    assert "batches" in old._table_names() and old.count(old.get_study("s").id) == 96
    pd.testing.assert_frame_equal(wb.Study.load(url, "s").frame(), wb.Study.load(blocks, "s").frame())
    [row] = old.summary()
    [reference] = open_storage(blocks, create=False).summary()
    assert {k: row[k] for k in ("evaluations", "failed")} == {k: reference[k] for k in ("evaluations", "failed")}
    assert row["failed"] > 0

    resumed = study(url).run(160, progress=False)  # batches 6..9 are stored as blocks after the rows
    straight = study(f"sqlite:///{tmp_path / 'straight.db'}").run(160, progress=False)
    assert resumed.storage.count(resumed.storage.get_study("s").id) == 160
    pd.testing.assert_frame_equal(_stored(url, "s"), _stored(straight.storage.url, "s"))
    assert list(wb.Study.load(url, "s").frame()["batch"]) == [i // 16 for i in range(160)]
    assert open_storage(url, create=False).summary()[0]["evaluations"] == 160
    assert main(["status", url]) == 0


# -------------------------------------------------------------------------------- many writers
def test_writer_processes_lose_and_duplicate_nothing_while_status_polls(url, capsys):
    """Four processes write four studies, two more race for one study, the parent polls ``workbench status``."""
    open_storage(url).study_names()  # creates the tables; PostgreSQL keeps this process's connection across the fork
    ctx = mp.get_context("fork")
    outcomes = ctx.Queue()
    jobs = [(f"w{i}", i) for i in range(4)] + [("shared", 5), ("shared", 5)]
    procs = [ctx.Process(target=_writer, args=(url, name, seed, 150, 0.003, outcomes)) for name, seed in jobs]
    for p in procs:
        p.start()
    polls = 0
    while any(p.is_alive() for p in procs):
        assert main(["status", url]) == 0
        polls += 1
        time.sleep(0.05)
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    reported = [outcomes.get(timeout=10) for _ in procs]
    assert polls >= 2 and all(p.exitcode == 0 for p in procs)
    assert [error for name, error in reported if name != "shared"] == [None] * 4
    lost_race = [error for name, error in reported if name == "shared" and error is not None]
    assert len(lost_race) <= 1 and all("another process running the same study" in e for e in lost_race)
    capsys.readouterr()

    summary = {row["study"]: row for row in open_storage(url, create=False).summary()}
    assert sorted(summary) == ["shared", "w0", "w1", "w2", "w3"]
    assert all(row["evaluations"] == 150 and row["state"] == "finished" for row in summary.values())
    pids = set()
    for name in summary:
        frame = wb.Study.load(url, name).frame()
        assert list(frame.index) == list(range(150))
        pids |= {w.split(":")[-1] for w in frame["worker"]}
    assert len(pids) >= 5 and str(os.getpid()) not in pids
    _run(url, "reference", 150, NSGA2(pop_size=10), seed=5)
    pd.testing.assert_frame_equal(_stored(url, "shared"), _stored(url, "reference"))


def test_a_writer_killed_mid_study_resumes_without_loss_or_duplicates(url, one_thread):
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=_writer, args=(url, "k", 11, 300, 0.05, None))  # 30 batches, >= 1.5 s
    proc.start()
    deadline, stored = time.time() + 60, 0
    while time.time() < deadline and stored < 40 and proc.is_alive():
        time.sleep(0.05)
        rows = open_storage(url).summary()
        stored = rows[0]["evaluations"] if rows else 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert proc.exitcode == -signal.SIGKILL and 40 <= stored < 300
    _run(url, "k", 300, NSGA2(pop_size=10), seed=11)
    _run(url, "clean", 300, NSGA2(pop_size=10), seed=11)
    killed = _stored(url, "k")
    assert list(killed.index) == list(range(300))
    pd.testing.assert_frame_equal(killed, _stored(url, "clean"))


def test_a_sqlite_storage_open_across_a_fork_is_refused_in_the_child(tmp_path):
    """SQLite's locks do not survive fork(): the child must say so rather than write and risk losing rows."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    held = _run(url, "s", 20).storage
    ctx = mp.get_context("fork")
    answers = ctx.Queue()

    def child() -> None:
        for attempt in (held.study_names, lambda: open_storage(url)):
            try:
                attempt()
                answers.put("no error")
            except wb.StorageError as err:
                answers.put(str(err))

    proc = ctx.Process(target=child)
    proc.start()
    messages = [answers.get(timeout=30) for _ in range(2)]
    proc.join()
    assert all("was open in the parent process when it forked this one" in m and "'spawn'" in m for m in messages)
    assert held.study_names() == ["s"] and len(wb.Study.load(url, "s")) == 20
    _run(url, "s", 40)  # the parent goes on writing
    assert len(wb.Study.load(url, "s")) == 40


# ----------------------------------------------------------------------------- campaign and CLI
def test_campaign_and_cli_status_plot_export_on_each_backend(url, tmp_path, capsys, one_thread):
    camp = wb.Campaign("cli", storage=url, device="cpu")
    camp.grid(_box_domain(), {"nsga2": NSGA2(pop_size=10), "random": RandomSearch(batch_size=10)}, seeds=[0],
              budget=60)
    assert (camp.run(progress=False)["status"] == "finished").all()
    table = camp.compare(ref=[1.1, 11.0])
    assert list(table["optimizer"]) == ["nsga2", "random"] and (table["hv_mean"] > 0).all()
    nsga2, random = camp.entries
    assert main(["status", url, "--campaign", "cli"]) == 0
    out = capsys.readouterr().out
    assert nsga2 in out and random in out and "finished" in out
    for kind in ("pareto", "parallel", "pairwise"):
        assert main(["plot", url, "--study", nsga2, "--study", random, "--kind", kind,
                     "--out", str(tmp_path / f"{kind}.png")]) == 0
        assert (tmp_path / f"{kind}.png").stat().st_size > 5000
    assert main(["plot", url, "--study", nsga2, "--study", random, "--kind", "hypervolume", "--ref", "1.1,11",
                 "--out", str(tmp_path / "hv.png")]) == 0
    assert main(["export", url, "--out", str(tmp_path / "all.csv")]) == 0
    exported = pd.read_csv(tmp_path / "all.csv")
    assert len(exported) == 120 and set(exported["study"]) == {nsga2, random}
    assert np.allclose(exported[exported.study == nsga2]["f1"], wb.Study.load(url, nsga2).frame()["f1"])
    assert main(["plot", url, "--study", "nope", "--out", str(tmp_path / "x.png")]) == 2
    assert "no study named 'nope'" in capsys.readouterr().err


CAMPAIGN = """
import workbench as wb
from optimizers import NSGA2

domain = wb.Domain.from_function(wb.MixedSpace.box(4), lambda x: x[:, :2] ** 2, objectives=["a", "b"], name="sq")
campaign = wb.Campaign("spawned", storage=URL, device="cpu")
campaign.grid(domain, {"nsga2": NSGA2(pop_size=10)}, seeds=[0, 1], budget=60)
if __name__ == "__main__":
    assert (campaign.run(progress=False)["status"] == "finished").all()
"""


@pytest.mark.slow
def test_workbench_run_with_spawned_workers_on_postgres(pg_url, tmp_path):
    """The campaign path users take: `workbench run FILE --workers 2`, each spawned worker connects on its own.
    Slow (each spawned worker imports torch: 10-30 s on 2 busy cores); the fast test of many processes writing one
    PostgreSQL database is test_writer_processes_lose_and_duplicate_nothing_while_status_polls."""
    path = tmp_path / "campaign.py"
    path.write_text(CAMPAIGN.replace("URL", repr(pg_url)))
    subprocess.run([sys.executable, "-m", "workbench.cli", "run", str(path), "--workers", "2"], check=True,
                   capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    summary = open_storage(pg_url, create=False).summary()
    assert sorted((r["study"], r["evaluations"], r["state"]) for r in summary) == [
        ("spawned/sq/nsga2/seed0", 60, "finished"), ("spawned/sq/nsga2/seed1", 60, "finished")]
    for row in summary:  # each study written whole by one worker process, none by this one
        frame = wb.Study.load(pg_url, row["study"]).frame()
        assert list(frame.index) == list(range(60)) and frame["worker"].nunique() == 1
        assert frame["worker"].iloc[0].split(":")[-1] != str(os.getpid())


# ------------------------------------------------------------------------------ PostgreSQL only
def test_bad_postgres_urls_name_the_url_without_its_password_and_what_to_check(postgres, pg_url, tmp_path, capsys):
    _run(pg_url, "kept", 30)
    database = pg_url.split("/")[-1].split("?")[0]
    cases = {
        postgres.url(database, PASSWORD_USER, "wrong-secret"): [
            'password authentication failed for user "pwuser"', "check the user name (pwuser) and the password"],
        postgres.url("no_such_db"): ['database "no_such_db" does not exist', "create it first (`createdb no_such_db`"],
        "postgresql://me:wrong-secret@127.0.0.1:1/db": [
            "Connection refused", "check that a PostgreSQL server is running at 127.0.0.1:1"],
        f"postgresql://me@/db?host={tmp_path}": [
            "No such file or directory", f"running at the socket directory {tmp_path} (port 5432)"],
        "postgresql://me@no-such-host.invalid/db?password=wrong-secret": [
            "no-such-host.invalid", "running at no-such-host.invalid:5432"],
    }
    for bad, expected in cases.items():
        with pytest.raises(wb.StorageError) as err:
            _run(bad, "kept", 30)
        message = str(err.value)
        assert message.startswith(f"cannot connect to PostgreSQL storage '{redact_url(bad)}': "), message
        assert all(e in message for e in expected), message
        assert "wrong-secret" not in message
        assert main(["status", bad]) == 2
        assert capsys.readouterr().err.strip() == f"workbench status: {message}"
    with pytest.raises(wb.StorageError, match=r"bad PostgreSQL URL 'postgresql://me:\*\*\*@h/db\?nonsense=1': "
                                              r"invalid URI query parameter"):
        open_storage("postgresql://me:pw@h/db?nonsense=1")
    with pytest.raises(wb.StorageError, match="is not a workbench storage"):
        open_storage(_new_database(postgres), create=False)
    assert len(wb.Study.load(pg_url, "kept")) == 30  # nothing stored was touched


def test_a_password_opens_the_storage_and_is_never_shown(postgres, capsys):
    postgres.execute(f"CREATE DATABASE pw_{os.getpid()} OWNER {PASSWORD_USER}")
    url = postgres.url(f"pw_{os.getpid()}", PASSWORD_USER, PASSWORD)
    storage = _run(url, "s", 20, NSGA2(pop_size=10)).storage
    assert storage.url == url and PASSWORD not in storage.safe_url and f"{PASSWORD_USER}:***@" in storage.safe_url
    assert len(wb.Study.load(storage.url, "s")) == 20  # ``url`` reopens it
    with pytest.raises(wb.StorageError) as err:
        _run(url, "s", 40, NSGA2(pop_size=12))
    assert "with a different optimizer.params" in str(err.value) and PASSWORD not in str(err.value)
    assert main(["status", url]) == 0 and main(["plot", url, "--study", "nope", "--out", "x.png"]) == 2
    printed = capsys.readouterr()
    assert "s " in printed.out and "no study named 'nope'" in printed.err
    assert PASSWORD not in printed.out + printed.err


def _terminate(server: LocalPostgres, pid: int) -> None:
    """End a client's session from the server side, as a restart or an administrator would; wait until it is gone."""
    server.execute(f"SELECT pg_terminate_backend({pid})")
    deadline = time.time() + 10
    while server.execute(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")[0][0] and time.time() < deadline:
        time.sleep(0.01)


def test_one_connection_per_process_a_fresh_one_after_fork_or_loss(postgres, pg_url):
    def backend(storage) -> int:
        return storage.conn.execute("SELECT pg_backend_pid()").fetchone()[0]

    a, b = open_storage(pg_url), open_storage(pg_url)
    assert a.conn is b.conn
    ours = backend(a)
    ctx = mp.get_context("fork")
    answers = ctx.Queue()
    child = ctx.Process(target=lambda: answers.put((backend(a), a.get_or_create_study("from-child", {})[1])))
    child.start()
    child_backend, created = answers.get(timeout=30)
    child.join()
    assert child.exitcode == 0 and created and child_backend != ours
    assert backend(a) == ours and a.study_names() == ["from-child"]  # the child did not end the parent's session

    _terminate(postgres, ours)
    assert b.study_names() == ["from-child"]  # a read finds the connection lost and reads again on a new one
    assert backend(a) != ours
    _terminate(postgres, backend(a))
    with pytest.raises(wb.StorageError, match="the unfinished transaction was not stored"):
        a.get_or_create_study("during-loss", {})
    assert a.get_or_create_study("after-loss", {})[1] and a.study_names() == ["from-child", "after-loss"]
