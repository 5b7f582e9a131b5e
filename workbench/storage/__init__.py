"""Persistent storage of studies, evaluations and optimizer states, addressed by URL."""

from .sqlite import SCHEMA_VERSION, BatchRows, SQLiteStorage, StorageError, StudyRecord, open_storage, parse_url

__all__ = ["SCHEMA_VERSION", "BatchRows", "SQLiteStorage", "StorageError", "StudyRecord", "open_storage", "parse_url"]
