"""What every SQL storage shares: the schema, the SQL text, row encoding and decoding, and the storage API.

A backend (SQLite, PostgreSQL) supplies only its connection, its transactions, its column types and the
few statements its dialect writes differently; everything a study reads or writes goes through the methods
of :class:`Storage`, written once here, so both backends store and return the same thing.

Schema version 2 stores each evaluated batch as one row of ``batches`` (columnar: all designs' bytes in one blob,
the objectives ``[n, k]`` in another, ...) instead of one ``evaluations`` row per design: a batch of 100,000
designs is then one insert of a few blobs, with no Python object per design. Version 1 databases open as they
are: their ``evaluations`` rows are read beside the blocks (a study resumed under version 2 goes on in blocks),
and opening one adds the ``batches`` table and records version 2.
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

SCHEMA_VERSION = 2

# the schema, with what a dialect spells its own way in braces. ``evaluations`` (one row per design) is what
# version 1 wrote; version 2 writes ``batches`` and reads ``evaluations`` for the studies stored before it.
# ``study_ref`` is the foreign key to studies: SQLite declares it and never checks it (foreign_keys is off);
# PostgreSQL would check it on every inserted row (a third of a 256-row batch's time), so it leaves it out. Both
# behave the same, because append_batch checks the study's row itself, under its lock, and delete_study deletes
# evaluations and batches first.
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
    # one row per stored batch: designs ``start`` .. ``start + n - 1``. x: ``n * width`` bytes (each design as
    # its space's ``encode_rows`` gives it); f ``[n, k]`` and g ``[n, c]`` little-endian f8, user's directions; ok
    # ``[n]`` u1; seconds ``[n]`` f8; errors: JSON ``[[row, message], ...]`` of the rows with a message, or NULL.
    # A rowid table in SQLite (WITHOUT ROWID suits small rows, not megabyte blobs).
    """CREATE TABLE IF NOT EXISTS batches (
        study_id {int} NOT NULL{study_ref},
        start {int} NOT NULL,
        n {int} NOT NULL,
        batch {int} NOT NULL,
        width {int} NOT NULL,
        x {blob} NOT NULL,
        f {blob} NOT NULL,
        g {blob} NOT NULL,
        ok {blob} NOT NULL,
        failed {int} NOT NULL,
        errors TEXT,
        seconds {blob} NOT NULL,
        worker TEXT NOT NULL,
        created {real} NOT NULL,
        PRIMARY KEY (study_id, start))""",
    """CREATE TABLE IF NOT EXISTS snapshots (
        study_id {int} PRIMARY KEY REFERENCES studies(id),
        batch {int} NOT NULL,
        n_evals {int} NOT NULL,
        state {blob} NOT NULL,
        counters TEXT NOT NULL,
        created {real} NOT NULL)""",
]

BATCH_COLUMNS = ("study_id", "start", "n", "batch", "width", "x", "f", "g", "ok", "failed", "errors", "seconds",
                 "worker", "created")
_STUDY_COLUMNS = "id, name, campaign, state, spec, created, updated"
_INSERT_BLOCK = f"INSERT INTO batches ({', '.join(BATCH_COLUMNS)}) VALUES ({', '.join('?' * len(BATCH_COLUMNS))})"


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
    """One evaluated batch, ready to store (``n`` rows).

    ``x`` is either one bytes object per design (``space.encode_rows``) or all of them as one ``[n, width]``
    uint8 array (``serialization.design_bytes``: no Python object per design). The storage reads the arrays
    as they are, without copying them, so they must not change until ``append_batch`` returns.
    """

    x: list[bytes] | np.ndarray
    f: np.ndarray  # [n, k] float64, user's directions (NaN where failed)
    g: np.ndarray  # [n, c] float64 raw constraint values
    ok: np.ndarray  # [n] bool
    errors: list[str | None]
    seconds: np.ndarray  # [n]

    def __len__(self) -> int:
        return len(self.ok)


def redact_url(url: str) -> str:
    """``url`` with any password (``user:PASSWORD@`` or ``password=``) replaced by ``***``, fit to print."""
    redacted = re.sub(r"^([a-zA-Z][\w+.-]*://[^/?#@:]*):[^/?#]*@", r"\1:***@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", redacted, flags=re.IGNORECASE)


def _buffer(values: Any, dtype: str, shape: tuple[int, ...], what: str) -> memoryview:
    """``values`` as a C-contiguous array of ``dtype`` and ``shape``, seen as bytes (no copy when it already is)."""
    arr = np.ascontiguousarray(values, dtype=dtype)
    if arr.shape != shape:
        raise ValueError(f"batch {what} has shape {list(arr.shape)}; expected {list(shape)}")
    return memoryview(arr.reshape(-1).view(np.uint8))


def _sparse_errors(errors: Sequence[str | None], n: int) -> str | None:
    """JSON ``[[row, message], ...]`` of the rows that have a message; None when no row has one."""
    if len(errors) != n:
        raise ValueError(f"batch has {len(errors)} error entries for {n} designs")
    if errors.count(None) == n:
        return None
    return json.dumps([[i, e] for i, e in enumerate(errors) if e is not None])


def encode_block(study_id: int, batch: int, start: int, rows: BatchRows, worker: str, now: float) -> tuple[Any, ...]:
    """The batch as one ``batches`` row, in :data:`BATCH_COLUMNS` order: one blob per column."""
    n = len(rows)
    f = np.asarray(rows.f)
    g = np.asarray(rows.g)
    k = f.shape[1] if f.ndim == 2 else -1
    c = g.shape[1] if g.ndim == 2 else -1
    if isinstance(rows.x, np.ndarray):
        if rows.x.ndim != 2 or rows.x.shape[0] != n:
            raise ValueError(f"batch designs have shape {list(rows.x.shape)}; expected [{n}, width] bytes")
        width = rows.x.shape[1]
        x = _buffer(rows.x, "u1", (n, width), "designs")
    else:
        width = len(rows.x[0]) if len(rows.x) else 0
        if len(rows.x) != n or any(len(r) != width for r in rows.x):
            raise ValueError(f"batch has {len(rows.x)} designs for {n} results, or designs of different lengths")
        x = memoryview(b"".join(rows.x))
    ok = np.asarray(rows.ok, dtype=bool)
    return (study_id, start, n, batch, width, x, _buffer(f, "<f8", (n, k), "objectives"),
            _buffer(g, "<f8", (n, c), "constraints"), _buffer(ok, "u1", (n,), "ok flags"), int(n - ok.sum()),
            _sparse_errors(rows.errors, n), _buffer(rows.seconds, "<f8", (n,), "seconds"), worker, now)


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


def decode_blocks(blocks: Sequence[Sequence[Any]], n_obj: int, n_con: int) -> dict[str, Any]:
    """Rows of ``SELECT start, n, batch, width, x, f, g, ok, errors, seconds, worker, created FROM batches`` ->
    the same per-design arrays as :func:`decode_evaluations`."""
    parts: dict[str, list[Any]] = {key: [] for key in ("idx", "batch", "f", "g", "ok", "seconds", "created")}
    x: list[bytes] = []
    error: list[str | None] = []
    worker: list[str] = []
    for start, n, batch, width, xb, fb, gb, okb, errors, seconds, who, created in blocks:
        n, width, xb = int(n), int(width), bytes(xb)
        sizes = {"designs": (len(xb), n * width), "objectives": (len(fb), n * n_obj * 8),
                 "constraints": (len(gb), n * n_con * 8), "ok flags": (len(okb), n), "seconds": (len(seconds), n * 8)}
        wrong = [f"{what} {have} bytes, expected {want}" for what, (have, want) in sizes.items() if have != want]
        if wrong:
            raise StorageError(f"stored batch {batch} (designs {start}..{start + n - 1}) does not fit the study's "
                               f"{n_obj} objectives and {n_con} constraints: {'; '.join(wrong)}")
        parts["idx"].append(np.arange(start, start + n, dtype=np.int64))
        parts["batch"].append(np.full(n, batch, dtype=np.int64))
        parts["f"].append(np.frombuffer(fb, dtype="<f8").reshape(n, n_obj))
        parts["g"].append(np.frombuffer(gb, dtype="<f8").reshape(n, n_con))
        parts["ok"].append(np.frombuffer(okb, dtype=np.uint8).astype(bool))
        parts["seconds"].append(np.frombuffer(seconds, dtype="<f8"))
        parts["created"].append(np.full(n, created, dtype=np.float64))
        x.extend([xb[i * width:(i + 1) * width] for i in range(n)])
        messages: list[str | None] = [None] * n
        for i, message in json.loads(errors) if errors else ():
            messages[i] = message
        error.extend(messages)
        worker.extend([who] * n)
    empty = {"idx": (0,), "batch": (0,), "f": (0, n_obj), "g": (0, n_con), "ok": (0,), "seconds": (0,), "created": (0,)}
    types = {"idx": np.int64, "batch": np.int64, "ok": bool}
    out: dict[str, Any] = {key: np.concatenate(values) if values else np.empty(empty[key], dtype=types.get(key, "<f8"))
                           for key, values in parts.items()}
    out.update(x=x, error=error, worker=worker)
    return out


def _concat(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per-design arrays of rows then blocks, in index order."""
    if not len(a["idx"]):
        return b
    if not len(b["idx"]):
        return a
    out = {key: a[key] + b[key] if isinstance(a[key], list) else np.concatenate([a[key], b[key]]) for key in a}
    order = np.argsort(out["idx"], kind="stable")
    if np.any(order != np.arange(len(order))):  # rows always come first; this keeps index order if not
        out = {key: [v[i] for i in order] if isinstance(v, list) else v[order] for key, v in out.items()}
    return out


class Storage:
    """Studies, evaluations and optimizer snapshots in SQL tables: the API every backend offers.

    Every batch of evaluations is written together with the optimizer state that follows it, in one
    transaction: after a crash the database holds whole batches and the state that matches them, never half
    of either. A batch is stored only if the study holds exactly the evaluations before it, checked while
    the study's row is locked, so two processes running the same study cannot interleave or duplicate rows.

    A backend sets the column types, ``FOR_UPDATE`` (its row-lock clause, empty where a write transaction
    already locks the whole database) and ``SCHEMA_EXTRA`` (statements run after creating the tables), and
    implements the hooks below.
    """

    TYPES: dict[str, str] = {}
    FOR_UPDATE = ""
    SCHEMA_EXTRA: tuple[str, ...] = ()
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

    def _table_names(self) -> set[str]:
        raise NotImplementedError

    def _lock_schema(self, tx: Any) -> None:
        """Serialize schema creation between processes (where the write transaction does not already)."""

    def close(self) -> None:
        raise NotImplementedError

    def end_thread(self) -> None:
        """Release what the calling thread holds of this storage; a thread that writes and then ends calls it
        (PostgreSQL: the thread's own connection, which would otherwise stay open until the process exits)."""

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
            # an older version: the statements below add what it lacks (version 1: the batches table)
        elif not create:
            raise StorageError(f"{self.safe_url!r} is not a workbench storage (no workbench tables)")
        with self._write() as tx:
            self._lock_schema(tx)
            for statement in _SCHEMA:
                self._execute(tx, statement.format(**self.TYPES))
            for statement in self.SCHEMA_EXTRA:
                self._execute(tx, statement)
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
                      (SELECT COUNT(*) FROM evaluations e WHERE e.study_id = s.id)
                      + (SELECT COALESCE(SUM(b.n), 0) FROM batches b WHERE b.study_id = s.id),
                      (SELECT COALESCE(SUM(1 - e.ok), 0) FROM evaluations e WHERE e.study_id = s.id)
                      + (SELECT COALESCE(SUM(b.failed), 0) FROM batches b WHERE b.study_id = s.id)
               FROM studies s ORDER BY s.id""")
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
        """Store one evaluated batch (as one block row) and the optimizer state after it, atomically."""
        now = time.time()
        block = encode_block(study_id, batch, start, rows, self.worker, now)
        with self._write() as tx:
            # lock the study's row first; count in statements of their own, so that (under PostgreSQL's read
            # committed) they see what a writer that held the lock before us has committed
            if self._execute(tx, f"SELECT id FROM studies WHERE id=?{self.FOR_UPDATE}", (study_id,)).fetchone() is None:
                raise StorageError(f"study {study_id} is not in {self.safe_url!r} (deleted while running?)")
            have = self._stored(tx, study_id)
            if have != start:
                raise StorageError(f"study {study_id}: expected {start} stored evaluations before batch {batch}, "
                                   f"found {have}; is another process running the same study?")
            if len(rows):
                self._execute(tx, _INSERT_BLOCK, block)
            self._execute(tx, "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (study_id) DO UPDATE SET "
                              "batch = excluded.batch, n_evals = excluded.n_evals, state = excluded.state, "
                              "counters = excluded.counters, created = excluded.created",
                          (study_id, batch, start + len(rows), snapshot, json.dumps(counters), now))
            self._execute(tx, "UPDATE studies SET state='running', updated=? WHERE id=?", (now, study_id))

    def _stored(self, tx: Any, study_id: int) -> int:
        """Evaluations stored for the study (one past the last index), by its rows and its blocks, in ``tx``."""
        rows = self._execute(tx, "SELECT COALESCE(MAX(idx) + 1, 0) FROM evaluations WHERE study_id=?",
                             (study_id,)).fetchone()[0]
        last = self._execute(tx, "SELECT start + n FROM batches WHERE study_id=? ORDER BY start DESC LIMIT 1",
                             (study_id,)).fetchone()
        return max(int(rows), int(last[0]) if last else 0)

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
        return int(self._rows("SELECT (SELECT COUNT(*) FROM evaluations WHERE study_id=?) + "
                              "(SELECT COALESCE(SUM(n), 0) FROM batches WHERE study_id=?)", (study_id, study_id))[0][0])

    def load_evaluations(self, study_id: int, n_obj: int, n_con: int) -> dict[str, Any]:
        """All evaluations of a study, one entry per design in index order, whether stored as rows (version 1)
        or in blocks: idx, batch, x (bytes per design), f ``[n, k]``, g ``[n, c]``, ok, error, seconds, worker,
        created."""
        rows = self._rows("SELECT idx, batch, x, f, g, ok, error, seconds, worker, created FROM evaluations "
                          "WHERE study_id=? ORDER BY idx", (study_id,))
        blocks = self._rows("SELECT start, n, batch, width, x, f, g, ok, errors, seconds, worker, created "
                            "FROM batches WHERE study_id=? ORDER BY start", (study_id,))
        return _concat(decode_evaluations(rows, n_obj, n_con), decode_blocks(blocks, n_obj, n_con))

    def delete_study(self, name: str) -> None:
        record = self.get_study(name)
        with self._write() as tx:
            for table in ("evaluations", "batches", "snapshots"):
                self._execute(tx, f"DELETE FROM {table} WHERE study_id=?", (record.id,))
            self._execute(tx, "DELETE FROM studies WHERE id=?", (record.id,))
