"""Small reads on SQLite without the async hop: the standard driver, on the event loop's thread.

An indexed read of a few rows takes tens of microseconds in SQLite itself, while aiosqlite's
hand-off to its thread and back costs most of a millisecond and SQLAlchemy's execution machinery
(pool checkout, execution context, result object) another hundred microseconds per statement.
The statements are still written with SQLAlchemy: each is compiled once, with the dialect's
own bind and result processors (so a ``UTCDateTime`` column comes back as an aware datetime
exactly as it would through the ORM), and then runs on a plain ``sqlite3`` cursor.

In WAL mode a reader never waits for a writer, so the loop is not held up; the connection is
read-only (``query_only``) and gives up after a short busy timeout, and the caller falls back to
the asynchronous path when SQLite is busy anyway (a checkpoint).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select

_Processor = Callable[[Any], Any] | None


class _Prepared:
    """One statement, compiled for SQLite: its SQL text, how to bind, how to read a row."""

    __slots__ = ("binds", "make_row", "processors", "sql")

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        names = compiled.positiontup or []
        self.binds: tuple[tuple[str, _Processor], ...] = tuple(
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names
        )
        columns = list(statement.selected_columns)
        self.processors: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (i, processor)
            for i, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
            is not None
        )
        row_type = namedtuple("Row", [c.name for c in columns], rename=True)  # type: ignore[misc]
        self.make_row: Callable[[Sequence[Any]], Any] = row_type._make

    def parameters(self, params: dict[str, Any]) -> list[Any]:
        return [
            processor(params[name]) if processor else params[name] for name, processor in self.binds
        ]

    def rows(self, raw: list[Any]) -> list[Any]:
        if not self.processors:
            return [self.make_row(r) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, processor in self.processors:
                values[i] = processor(values[i])
            out.append(self.make_row(values))
        return out


class QuickReader:
    """A read-only ``sqlite3`` connection and the statements prepared for it."""

    def __init__(self, path: str, dialect: Dialect, busy_timeout_ms: int) -> None:
        self._path = path
        self._dialect = dialect
        self._busy_timeout_ms = busy_timeout_ms
        self._connection: sqlite3.Connection | None = None
        self._prepared: dict[int, tuple[Select[Any], _Prepared]] = {}
        # Reads happen on event loops; the lock only matters if two threads share one Database.
        self._lock = threading.Lock()

    def fetch(self, statement: Select[Any], params: dict[str, Any]) -> list[Any]:
        """Raises ``sqlite3.OperationalError`` when SQLite is busy or the file is unreadable."""
        entry = self._prepared.get(id(statement))
        if entry is None or entry[0] is not statement:
            entry = (statement, _Prepared(statement, self._dialect))
            self._prepared[id(statement)] = entry  # keeps the statement alive: ids stay unique
        prepared = entry[1]
        with self._lock:
            connection = self._connection or self._connect()
            raw = connection.execute(prepared.sql, prepared.parameters(params)).fetchall()
        return prepared.rows(raw)

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
