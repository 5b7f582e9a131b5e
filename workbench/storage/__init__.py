"""Persistent storage of studies, evaluations and optimizer states, addressed by URL."""

from __future__ import annotations

import os

from .base import SCHEMA_VERSION, BatchRows, Storage, StorageError, StudyRecord, redact_url
from .postgres import SCHEMES as POSTGRES_SCHEMES
from .postgres import PostgresStorage
from .sqlite import SQLiteStorage, parse_url


def open_storage(url: str | os.PathLike | None = None, create: bool = True) -> Storage:
    """Open the storage a URL names: ``sqlite:///PATH`` (the default ``sqlite:///runs.db`` when None, also a
    plain path) or ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE``."""
    if url is None or not isinstance(url, str) or "://" not in url:
        return SQLiteStorage(url, create=create)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        return SQLiteStorage(url, create=create)
    if scheme in POSTGRES_SCHEMES:
        return PostgresStorage(url, create=create)
    raise StorageError(f"unsupported storage URL {redact_url(url)!r}: use sqlite:///PATH or "
                       f"postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")


__all__ = ["SCHEMA_VERSION", "BatchRows", "PostgresStorage", "SQLiteStorage", "Storage", "StorageError",
           "StudyRecord", "open_storage", "parse_url", "redact_url"]
