"""What every SQL storage shares: the schema, the SQL text, row encoding and decoding, and the storage API.

A backend (SQLite, PostgreSQL) supplies only its connection, its transactions, its column types and the
few statements its dialect writes differently; everything a study reads or writes goes through the methods
of :class:`Storage`, written once here, so both backends store and return the same thing.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEMA_VERSION = 1

# the schema, with what a dialect spells its own way in braces. ``study_ref`` is the evaluations' foreign key to
# studies: SQLite declares it and never checks it (foreign_keys is off); PostgreSQL would check it on every
# inserted row (a third of a 256-row batch's time), so it leaves it out. Both behave the same, because
# append_batch checks the study's row itself, under its lock, and delete_study deletes evaluations first.
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS studies (
        id {serial},
        name TEXT NOT NULL UNIQUE,
        campaign TEXT,
        state TEXT NOT NULL DEFAULT 'created',
        spec TEXT NOT NULL,
        created {real} NOT NULL,
        updated {real} NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS evaluations (
        study_id {int} NOT NULL{study_ref},
        idx {int} NOT NULL,
        batch {int} NOT NULL,
        x {blob} NOT NULL,
        f {blob} NOT NULL,
        g {blob} NOT NULL,
        ok INTEGER NOT NULL,
        error TEXT,
        seconds {real} NOT NULL,
        worker TEXT NOT NULL,
        created {real} NOT NULL,
        PRIMARY KEY (study_id, idx)){evaluations_options}""",
    """CREATE TABLE IF NOT EXISTS snapshots (
        study_id {int} PRIMARY KEY REFERENCES studies(id),
        batch {int} NOT NULL,
        n_evals {int} NOT NULL,
        state {blob} NOT NULL,
        counters TEXT NOT NULL,
        created {real} NOT NULL)""",
]

EVALUATION_COLUMNS = ("study_id", "idx", "batch", "x", "f", "g", "ok", "error", "seconds", "worker", "created")
_STUDY_COLUMNS = "id, name, campaign, state, spec, created, updated"


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


def redact_url(url: str) -> str:
    """``url`` with any password (``user:PASSWORD@`` or ``password=``) replaced by ``***``, fit to print."""
    redacted = re.sub(r"^([a-zA-Z][\w+.-]*://[^/?#@:]*):[^/?#]*@", r"\1:***@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", redacted, flags=re.IGNORECASE)


def encode_batch(study_id: int, batch: int, start: int, rows: BatchRows, worker: str,
                 now: float) -> list[tuple[Any, ...]]:
    """One tuple per design, in :data:`EVALUATION_COLUMNS` order; objectives and constraints as little-endian f8."""
    n = len(rows.x)
    f = np.ascontiguousarray(rows.f, dtype="<f8")
    g = np.ascontiguousarray(rows.g, dtype="<f8")
    fw, gw = f.shape[1] * 8, g.shape[1] * 8
    fb, gb = f.tobytes(), g.tobytes()
    ok = rows.ok.tolist()
    seconds = rows.seconds.tolist()
    return [(study_id, start + i, batch, rows.x[i], fb[i * fw:(i + 1) * fw], gb[i * gw:(i + 1) * gw],
             int(ok[i]), rows.errors[i], seconds[i], worker, now) for i in range(n)]


def decode_evaluations(rows: Sequence[Sequence[Any]], n_obj: int, n_con: int) -> dict[str, Any]:
    """Rows of ``SELECT idx, batch, x, f, g, ok, error, seconds, worker, created`` -> arrays (``n`` rows)."""
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


class Storage:
    """Studies, evaluations and optimizer snapshots in SQL tables: the API every backend offers.

    Every batch of evaluations is written together with the optimizer state that follows it, in one
    transaction: after a crash the database holds whole batches and the state that matches them, never half
    of either. A batch is stored only if the study holds exactly the evaluations before it, checked while
    the study's row is locked, so two processes running the same study cannot interleave or duplicate rows.

    A backend sets the column types and ``FOR_UPDATE`` (its row-lock clause, empty where a write
    transaction already locks the whole database) and implements the hooks below.
    """

    TYPES: dict[str, str] = {}
    FOR_UPDATE = ""
    url: str

    # ------------------------------------------------------------ backend hooks
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read-only statement (written with ``?`` placeholders) outside any transaction."""
        raise NotImplementedError

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """One write transaction; yields an object with ``execute(sql, params)`` returning a cursor."""
        raise NotImplementedError

    def _execute(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (``?`` placeholders) inside the transaction ``tx``; returns its cursor."""
        return tx.execute(sql, params)

    def _insert_evaluations(self, tx: Any, records: list[tuple[Any, ...]]) -> None:
        """Insert rows in :data:`EVALUATION_COLUMNS` order inside ``tx``."""
        raise NotImplementedError

    def _table_names(self) -> set[str]:
        raise NotImplementedError

    def _lock_schema(self, tx: Any) -> None:
        """Serialize schema creation between processes (where the write transaction does not already)."""

    def close(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ schema
    @property
    def safe_url(self) -> str:
        """The URL without its password: what messages, tables and reports show (``url`` reopens the storage)."""
        return redact_url(self.url)

    @property
    def worker(self) -> str:
        """``host:pid`` of the writing process (read at each write: a forked child writes its own pid)."""
        return f"{socket.gethostname()}:{os.getpid()}"

    def _init_schema(self, create: bool) -> None:
        if "meta" in self._table_names():
            row = self._rows("SELECT value FROM meta WHERE key='schema_version'")
            version = int(row[0][0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StorageError(f"storage {self.safe_url!r} has schema version {version}; this workbench "
                                   f"reads up to {SCHEMA_VERSION}: upgrade design-workbench")
            if version == SCHEMA_VERSION:
                return
        elif not create:
            raise StorageError(f"{self.safe_url!r} is not a workbench storage (no workbench tables)")
        with self._write() as tx:
            self._lock_schema(tx)
            for statement in _SCHEMA:
                self._execute(tx, statement.format(**self.TYPES))
            self._execute(tx, "INSERT INTO meta VALUES ('schema_version', ?) "
                              "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))

    # ------------------------------------------------------------------ studies
    def get_or_create_study(self, name: str, spec: dict[str, Any],
                            campaign: str | None = None) -> tuple[StudyRecord, bool]:
        """Return the study called ``name``, creating it with ``spec`` if absent; second item: created now."""
        now = time.time()
        with self._write() as tx:
            cur = self._execute(tx, "INSERT INTO studies (name, campaign, state, spec, created, updated) "
                                    "VALUES (?, ?, 'created', ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                                (name, campaign, json.dumps(spec), now, now))
            created = cur.rowcount == 1
        return self.get_study(name), created

    def get_study(self, name: str) -> StudyRecord:
        rows = self._rows(f"SELECT {_STUDY_COLUMNS} FROM studies WHERE name=?", (name,))
        if not rows:
            known = self.study_names()
            hint = (f"; known studies: {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}" if known
                    else "; the storage has no studies")
            raise StorageError(f"no study named {name!r} in {self.safe_url!r}{hint}")
        row = rows[0]
        return StudyRecord(int(row[0]), row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])

    def study_names(self, campaign: str | None = None) -> list[str]:
        if campaign is None:
            rows = self._rows("SELECT name FROM studies ORDER BY id")
        else:
            rows = self._rows("SELECT name FROM studies WHERE campaign=? ORDER BY id", (campaign,))
        return [r[0] for r in rows]

    def summary(self) -> list[dict[str, Any]]:
        """One dict per study: name, campaign, state, evaluations, failed, last update."""
        rows = self._rows(
            """SELECT s.name, s.campaign, s.state, s.spec, s.updated,
                      COUNT(e.idx), COALESCE(SUM(1 - e.ok), 0)
               FROM studies s LEFT JOIN evaluations e ON e.study_id = s.id GROUP BY s.id ORDER BY s.id""")
        out = []
        for name, campaign, state, spec, updated, n, failed in rows:
            spec = json.loads(spec)
            out.append({"study": name, "campaign": campaign, "state": state,
                        "domain": spec.get("domain", {}).get("name"),
                        "optimizer": spec.get("optimizer", {}).get("name"),
                        "seed": spec.get("seed"), "evaluations": int(n), "failed": int(failed),
                        "budget": spec.get("budget"), "updated": updated})
        return out

    def set_state(self, study_id: int, state: str, **spec_updates: Any) -> None:
        with self._write() as tx:
            if spec_updates:
                row = self._execute(tx, f"SELECT spec FROM studies WHERE id=?{self.FOR_UPDATE}", (study_id,)).fetchone()
                spec = json.loads(row[0])
                spec.update(spec_updates)
                self._execute(tx, "UPDATE studies SET state=?, spec=?, updated=? WHERE id=?",
                              (state, json.dumps(spec), time.time(), study_id))
            else:
                self._execute(tx, "UPDATE studies SET state=?, updated=? WHERE id=?", (state, time.time(), study_id))

    # -------------------------------------------------------------- evaluations
    def append_batch(self, study_id: int, batch: int, start: int, rows: BatchRows,
                     snapshot: bytes, counters: dict[str, int]) -> None:
        """Store one evaluated batch and the optimizer state after it, atomically."""
        now = time.time()
        records = encode_batch(study_id, batch, start, rows, self.worker, now)
        with self._write() as tx:
            # lock the study's row first; count in a statement of its own, so that (under PostgreSQL's read
            # committed) it sees what a writer that held the lock before us has committed
            if self._execute(tx, f"SELECT id FROM studies WHERE id=?{self.FOR_UPDATE}", (study_id,)).fetchone() is None:
                raise StorageError(f"study {study_id} is not in {self.safe_url!r} (deleted while running?)")
            have = self._execute(tx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM evaluations WHERE study_id=?",
                                 (study_id,)).fetchone()[0]
            if have != start:
                raise StorageError(f"study {study_id}: expected {start} stored evaluations before batch {batch}, "
                                   f"found {have}; is another process running the same study?")
            self._insert_evaluations(tx, records)
            self._execute(tx, "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (study_id) DO UPDATE SET "
                              "batch = excluded.batch, n_evals = excluded.n_evals, state = excluded.state, "
                              "counters = excluded.counters, created = excluded.created",
                          (study_id, batch, start + len(records), snapshot, json.dumps(counters), now))
            self._execute(tx, "UPDATE studies SET state='running', updated=? WHERE id=?", (now, study_id))

    def load_snapshot(self, study_id: int) -> tuple[int, int, bytes, dict[str, int]] | None:
        """(last batch, evaluations so far, state blob, counters) of the last stored batch, if any."""
        rows = self._rows("SELECT batch, n_evals, state, counters FROM snapshots WHERE study_id=?", (study_id,))
        if not rows:
            return None
        batch, n_evals, state, counters = rows[0]
        return int(batch), int(n_evals), bytes(state), json.loads(counters)

    def load_counters(self, study_id: int) -> dict[str, Any]:
        """The counters of the last stored batch (empty before the first), without reading the state blob."""
        rows = self._rows("SELECT counters FROM snapshots WHERE study_id=?", (study_id,))
        return json.loads(rows[0][0]) if rows else {}

    def count(self, study_id: int) -> int:
        return int(self._rows("SELECT COUNT(*) FROM evaluations WHERE study_id=?", (study_id,))[0][0])

    def load_evaluations(self, study_id: int, n_obj: int, n_con: int) -> dict[str, Any]:
        """All evaluations of a study, in order: x bytes, f ``[n, k]``, g ``[n, c]``, ok, errors, ..."""
        rows = self._rows("SELECT idx, batch, x, f, g, ok, error, seconds, worker, created FROM evaluations "
                          "WHERE study_id=? ORDER BY idx", (study_id,))
        return decode_evaluations(rows, n_obj, n_con)

    def delete_study(self, name: str) -> None:
        record = self.get_study(name)
        with self._write() as tx:
            for table in ("evaluations", "snapshots"):
                self._execute(tx, f"DELETE FROM {table} WHERE study_id=?", (record.id,))
            self._execute(tx, "DELETE FROM studies WHERE id=?", (record.id,))
