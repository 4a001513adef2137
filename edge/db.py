"""Opening the SQLite store: WAL, full fsync on commit, foreign keys, migrated to the latest schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.errors import StoreError
from edge.migrations import migrate


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode; callers open explicit transactions (BEGIN IMMEDIATE)."""
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            # Durability is the promise: a commit is on disk before we acknowledge to the broker.
            conn.execute("PRAGMA synchronous = FULL")
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open database: {exc}") from exc
    return conn


def open_store(path: Path) -> sqlite3.Connection:
    conn = connect(path)
    try:
        migrate(conn)
    except (sqlite3.Error, RuntimeError) as exc:
        conn.close()
        raise StoreError(f"{path}: cannot migrate database: {exc}") from exc
    return conn
