"""SQLite storage: WAL mode, one transaction per batch, safe for many writing processes."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import Storage, StorageError

# SQLite's locks do not survive fork(): a child of a process that holds a database open shares the parent's
# in-memory lock bookkeeping without holding its locks, so its writes can be lost when another process checkpoints
# (https://www.sqlite.org/howtocorrupt.html, 2.6). Storages count their open files, a child remembers which files
# its parent held at the fork and refuses them, and never closes an inherited connection (closing it would drop
# the locks of the child's own connections to that file).
_OPEN: dict[str, int] = {}  # real path -> connections this process holds open
_OPEN_AT_FORK: set[str] = set()  # files the parent held open when it forked this process
_INHERITED: list[sqlite3.Connection] = []


def _after_fork_in_child() -> None:
    _OPEN_AT_FORK.update(path for path, n in _OPEN.items() if n > 0)
    _OPEN.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def parse_url(url: str | os.PathLike | None) -> str:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:`` or a plain path -> path."""
    if url is None:
        return "runs.db"
    url = os.fspath(url)
    if "://" in url:
        scheme, rest = url.split("://", 1)
        if scheme != "sqlite":
            raise StorageError(f"not a SQLite URL: {url!r}; expected sqlite:///PATH")
        if not rest.startswith("/"):
            raise StorageError(f"bad SQLite URL {url!r}: expected sqlite:///PATH (three slashes)")
        return rest[1:]
    return url


class SQLiteStorage(Storage):
    """Studies, evaluations and optimizer snapshots in one SQLite file.

    Writers take the database's write lock at the start of each transaction (``BEGIN IMMEDIATE``) and retry
    with a jittered back-off while another process holds it, so many processes may write one file.
    """

    TYPES = {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "int": "INTEGER", "real": "REAL", "blob": "BLOB",
             "evaluations_options": " WITHOUT ROWID", "study_ref": " REFERENCES studies(id)"}

    def __init__(self, url: str | os.PathLike | None = None, create: bool = True, timeout: float = 120.0) -> None:
        self.url = url if isinstance(url, str) and "://" in url else f"sqlite:///{parse_url(url)}"
        self.path = parse_url(url)
        self.timeout = timeout
        self._pid = os.getpid()
        self._file = None if self.path == ":memory:" else os.path.realpath(self.path)
        if self._file is not None:
            p = Path(self.path)
            if not create and not p.exists():
                raise StorageError(f"no storage at {self.path!r} (from {self.url!r}): the file does not exist")
            if self._file in _OPEN_AT_FORK:
                raise self._forked_error()
            if create:
                p.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            if self._file is not None:
                _OPEN[self._file] = _OPEN.get(self._file, 0) + 1
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._retry(lambda: self.conn.execute("PRAGMA journal_mode = WAL").fetchone())
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self._init_schema(create)
        except sqlite3.DatabaseError as err:
            raise StorageError(f"cannot open storage {self.url!r}: {err}") from None

    # ----------------------------------------------------------------- plumbing
    def _forked_error(self) -> StorageError:
        return StorageError(f"{self.url!r} was open in the parent process when it forked this one, and SQLite's "
                            f"locks do not survive a fork (writing here could lose rows): open the storage only in "
                            f"the child, close it before forking, start workers with the 'spawn' method, or use a "
                            f"postgresql:// storage")

    def _connection(self) -> sqlite3.Connection:
        if os.getpid() != self._pid:
            raise self._forked_error()
        conn = self.__dict__.get("conn")
        if conn is None:
            raise StorageError(f"storage {self.url!r} was closed; open it again with open_storage")
        return conn

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

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._connection().execute(sql, params).fetchall()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locked) transaction, retried while another writer holds the lock."""
        conn = self._connection()
        self._retry(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._retry(lambda: conn.execute("COMMIT"))

    def _table_names(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def close(self) -> None:
        """Close the connection now (Python's sqlite3 would wait for the garbage collector), in the process that
        opened it only; an inherited one is kept open, unused (see the note on fork above)."""
        conn = self.__dict__.pop("conn", None)
        if conn is None:
            return
        if os.getpid() != self._pid:
            _INHERITED.append(conn)
            return
        conn.close()
        if self._file is not None:
            _OPEN[self._file] -= 1

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the module's globals are gone; the OS closes the file
            pass
