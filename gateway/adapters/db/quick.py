"""Small reads on SQLite without the async hop: the standard driver, on the event loop's thread.

An indexed read of a few rows takes tens of microseconds in SQLite itself, while aiosqlite's
hand-off to its thread and back costs most of a millisecond and SQLAlchemy's execution machinery
(pool checkout, execution context, result object) another hundred microseconds per statement.
The statements are still written with SQLAlchemy and compiled once
(:mod:`gateway.adapters.db.prepared`), then run on a plain ``sqlite3`` cursor.

In WAL mode a reader never waits for a writer, so the loop is not held up; the connection is
read-only (``query_only``) and gives up after a short busy timeout, and the caller falls back to
the asynchronous path when SQLite is busy anyway (a checkpoint).
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select

from gateway.adapters.db.prepared import PreparedStatements


class QuickReader:
    """A read-only ``sqlite3`` connection and the statements prepared for it."""

    def __init__(self, path: str, dialect: Dialect, busy_timeout_ms: int) -> None:
        self._path = path
        self._dialect = dialect
        self._busy_timeout_ms = busy_timeout_ms
        self._connection: sqlite3.Connection | None = None
        self._prepared = PreparedStatements(dialect)
        # Reads happen on event loops; the lock only matters if two threads share one Database.
        self._lock = threading.Lock()

    def fetch(self, statement: Select[Any], params: dict[str, Any]) -> list[Any]:
        """Raises ``sqlite3.OperationalError`` when SQLite is busy or the file is unreadable."""
        prepared = self._prepared[statement]
        with self._lock:
            connection = self._connection or self._connect()
            return prepared.run(connection, params)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,  # autocommit: each read sees the latest commit
            check_same_thread=False,
        )
        connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        connection.execute("PRAGMA query_only=ON")  # this connection only ever reads
        self._connection = connection
        return connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
