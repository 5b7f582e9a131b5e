"""SQLite storage: WAL mode, one transaction per batch, safe for many writing processes."""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS studies (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        campaign TEXT,
        state TEXT NOT NULL DEFAULT 'created',
        spec TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS evaluations (
        study_id INTEGER NOT NULL REFERENCES studies(id),
        idx INTEGER NOT NULL,
        batch INTEGER NOT NULL,
        x BLOB NOT NULL,
        f BLOB NOT NULL,
        g BLOB NOT NULL,
        ok INTEGER NOT NULL,
        error TEXT,
        seconds REAL NOT NULL,
        worker TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (study_id, idx)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS snapshots (
        study_id INTEGER PRIMARY KEY REFERENCES studies(id),
        batch INTEGER NOT NULL,
        n_evals INTEGER NOT NULL,
        state BLOB NOT NULL,
        counters TEXT NOT NULL,
        created REAL NOT NULL)""",
]


class StorageError(RuntimeError):
    """A storage URL that cannot be opened, a missing study, a schema from the future."""


@dataclass
class StudyRecord:
    """A study's row: its id, name, campaign, state and JSON spec."""

    id: int
    name: str
    campaign: str | None
    state: str
    spec: dict[str, Any]
    created: float
    updated: float


@dataclass
class BatchRows:
    """One evaluated batch, ready to store: per-row bytes and values (``n`` rows)."""

    x: list[bytes]
    f: np.ndarray  # [n, k] float64, user's directions (NaN where failed)
    g: np.ndarray  # [n, c] float64 raw constraint values
    ok: np.ndarray  # [n] bool
    errors: list[str | None]
    seconds: np.ndarray  # [n]


def parse_url(url: str | os.PathLike | None) -> str:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:`` or a plain path -> path."""
    if url is None:
        return "runs.db"
    url = os.fspath(url)
    if "://" in url:
        scheme, rest = url.split("://", 1)
        if scheme != "sqlite":
            raise StorageError(f"unsupported storage URL {url!r}: only sqlite:///PATH is supported")
        if not rest.startswith("/"):
            raise StorageError(f"bad SQLite URL {url!r}: expected sqlite:///PATH (three slashes)")
        return rest[1:]
    return url


class SQLiteStorage:
    """Studies, evaluations and optimizer snapshots in one SQLite file.

    Every batch of evaluations is written together with the optimizer state that
    follows it, in one transaction: after a crash the database holds whole batches
    and the state that matches them, never half of either.
    """

    def __init__(self, url: str | os.PathLike | None = None, create: bool = True, timeout: float = 120.0) -> None:
        self.url = url if isinstance(url, str) and "://" in url else f"sqlite:///{parse_url(url)}"
        self.path = parse_url(url)
        self.timeout = timeout
        if self.path != ":memory:":
            p = Path(self.path)
            if not create and not p.exists():
                raise StorageError(f"no storage at {self.path!r} (from {self.url!r}): the file does not exist")
            if create:
                p.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._retry(lambda: self.conn.execute("PRAGMA journal_mode = WAL").fetchone())
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._init_schema(create)
        except sqlite3.DatabaseError as err:
            raise StorageError(f"cannot open storage {self.url!r}: {err}") from None
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    # ----------------------------------------------------------------- plumbing
    def _retry(self, fn: Any) -> Any:
        """Run ``fn``, retrying with jittered back-off while the database is busy."""
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as err:
                message = str(err).lower()
                if ("locked" not in message and "busy" not in message) or time.monotonic() > deadline:
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.5)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locked) transaction, retried while another writer holds the lock."""
        self._retry(lambda: self.conn.execute("BEGIN IMMEDIATE"))
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self._retry(lambda: self.conn.execute("COMMIT"))

    def _init_schema(self, create: bool) -> None:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StorageError(f"storage {self.url!r} has schema version {version}; this workbench "
                                   f"reads up to {SCHEMA_VERSION}: upgrade design-workbench")
            if version == SCHEMA_VERSION:
                return
        elif not create:
            raise StorageError(f"{self.path!r} is not a workbench storage (no workbench tables)")
        with self._write() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ studies
    def get_or_create_study(self, name: str, spec: dict[str, Any], campaign: str | None = None) -> tuple[StudyRecord, bool]:
        """Return the study called ``name``, creating it with ``spec`` if absent; second item: created now."""
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO studies (name, campaign, state, spec, created, updated) VALUES (?, ?, 'created', ?, ?, ?)",
                (name, campaign, json.dumps(spec), now, now))
            created = cur.rowcount == 1
        return self.get_study(name), created

    def get_study(self, name: str) -> StudyRecord:
        row = self.conn.execute("SELECT id, name, campaign, state, spec, created, updated FROM studies WHERE name=?",
                                (name,)).fetchone()
        if row is None:
            known = self.study_names()
            hint = f"; known studies: {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}" if known else "; the storage has no studies"
            raise StorageError(f"no study named {name!r} in {self.url!r}{hint}")
        return StudyRecord(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])

    def study_names(self, campaign: str | None = None) -> list[str]:
        if campaign is None:
            rows = self.conn.execute("SELECT name FROM studies ORDER BY id")
        else:
            rows = self.conn.execute("SELECT name FROM studies WHERE campaign=? ORDER BY id", (campaign,))
        return [r[0] for r in rows]

    def summary(self) -> list[dict[str, Any]]:
        """One dict per study: name, campaign, state, evaluations, failed, last update."""
        rows = self.conn.execute(
            """SELECT s.name, s.campaign, s.state, s.spec, s.updated,
                      COUNT(e.idx), COALESCE(SUM(1 - e.ok), 0)
               FROM studies s LEFT JOIN evaluations e ON e.study_id = s.id GROUP BY s.id ORDER BY s.id""").fetchall()
        out = []
        for name, campaign, state, spec, updated, n, failed in rows:
            spec = json.loads(spec)
            out.append({"study": name, "campaign": campaign, "state": state,
                        "domain": spec.get("domain", {}).get("name"), "optimizer": spec.get("optimizer", {}).get("name"),
                        "seed": spec.get("seed"), "evaluations": n, "failed": int(failed),
                        "budget": spec.get("budget"), "updated": updated})
        return out

    def set_state(self, study_id: int, state: str, **spec_updates: Any) -> None:
        with self._write() as conn:
            if spec_updates:
                spec = json.loads(conn.execute("SELECT spec FROM studies WHERE id=?", (study_id,)).fetchone()[0])
                spec.update(spec_updates)
                conn.execute("UPDATE studies SET state=?, spec=?, updated=? WHERE id=?",
                             (state, json.dumps(spec), time.time(), study_id))
            else:
                conn.execute("UPDATE studies SET state=?, updated=? WHERE id=?", (state, time.time(), study_id))

    # -------------------------------------------------------------- evaluations
    def append_batch(self, study_id: int, batch: int, start: int, rows: BatchRows,
                     snapshot: bytes, counters: dict[str, int]) -> None:
        """Store one evaluated batch and the optimizer state after it, atomically."""
        n = len(rows.x)
        f = np.ascontiguousarray(rows.f, dtype="<f8")
        g = np.ascontiguousarray(rows.g, dtype="<f8")
        fw, gw = f.shape[1] * 8, g.shape[1] * 8
        fb, gb = f.tobytes(), g.tobytes()
        now = time.time()
        ok = rows.ok.tolist()
        seconds = rows.seconds.tolist()
        records = [(study_id, start + i, batch, rows.x[i], fb[i * fw:(i + 1) * fw], gb[i * gw:(i + 1) * gw],
                    int(ok[i]), rows.errors[i], seconds[i], self.worker, now) for i in range(n)]
        with self._write() as conn:
            have = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM evaluations WHERE study_id=?",
                                (study_id,)).fetchone()[0]
            if have != start:
                raise StorageError(f"study {study_id}: expected {start} stored evaluations before batch {batch}, "
                                   f"found {have}; is another process running the same study?")
            conn.executemany("INSERT INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records)
            conn.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?, ?)",
                         (study_id, batch, start + n, snapshot, json.dumps(counters), now))
            conn.execute("UPDATE studies SET state='running', updated=? WHERE id=?", (now, study_id))

    def load_snapshot(self, study_id: int) -> tuple[int, int, bytes, dict[str, int]] | None:
        """(last batch, evaluations so far, state blob, counters) of the last stored batch, if any."""
        row = self.conn.execute("SELECT batch, n_evals, state, counters FROM snapshots WHERE study_id=?",
                                (study_id,)).fetchone()
        if row is None:
            return None
        return int(row[0]), int(row[1]), bytes(row[2]), json.loads(row[3])

    def load_counters(self, study_id: int) -> dict[str, Any]:
        """The counters of the last stored batch (empty before the first), without reading the state blob."""
        row = self.conn.execute("SELECT counters FROM snapshots WHERE study_id=?", (study_id,)).fetchone()
        return {} if row is None else json.loads(row[0])

    def count(self, study_id: int) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM evaluations WHERE study_id=?", (study_id,)).fetchone()[0])

    def load_evaluations(self, study_id: int, n_obj: int, n_con: int) -> dict[str, Any]:
        """All evaluations of a study, in order: x bytes, f ``[n, k]``, g ``[n, c]``, ok, errors, ..."""
        rows = self.conn.execute(
            "SELECT idx, batch, x, f, g, ok, error, seconds, worker, created FROM evaluations WHERE study_id=? ORDER BY idx",
            (study_id,)).fetchall()
        n = len(rows)
        return {
            "idx": np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
            "batch": np.fromiter((r[1] for r in rows), dtype=np.int64, count=n),
            "x": [bytes(r[2]) for r in rows],
            "f": np.frombuffer(b"".join(r[3] for r in rows), dtype="<f8").reshape(n, n_obj),
            "g": np.frombuffer(b"".join(r[4] for r in rows), dtype="<f8").reshape(n, n_con),
            "ok": np.fromiter((r[5] for r in rows), dtype=bool, count=n),
            "error": [r[6] for r in rows],
            "seconds": np.fromiter((r[7] for r in rows), dtype=np.float64, count=n),
            "worker": [r[8] for r in rows],
            "created": np.fromiter((r[9] for r in rows), dtype=np.float64, count=n),
        }

    def delete_study(self, name: str) -> None:
        record = self.get_study(name)
        with self._write() as conn:
            for table in ("evaluations", "snapshots"):
                conn.execute(f"DELETE FROM {table} WHERE study_id=?", (record.id,))
            conn.execute("DELETE FROM studies WHERE id=?", (record.id,))


def open_storage(url: str | os.PathLike | None = None, create: bool = True) -> SQLiteStorage:
    """Open the storage a URL names (``sqlite:///runs.db`` when None)."""
    return SQLiteStorage(url, create=create)

