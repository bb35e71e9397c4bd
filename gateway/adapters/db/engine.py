"""Engines and transactions for SQLite (embedded default) and PostgreSQL (several replicas).

SQLite: WAL so readers never wait for the writer, a busy timeout so writers queue instead of
failing, foreign keys on, and ``BEGIN IMMEDIATE`` for write transactions. The last one matters:
a deferred transaction that reads and then writes fails at once with SQLITE_BUSY when another
connection wrote in between, and a busy timeout cannot help it; taking the write lock up front
makes writers queue in order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import Select

from gateway.adapters.db.quick import QuickReader

SQLITE_BUSY_TIMEOUT_MS = 10_000
# The quick reader runs on the event loop: it must never wait long.
QUICK_READ_BUSY_TIMEOUT_MS = 20


class Database:
    def __init__(self, engine: AsyncEngine, quick_reader: QuickReader | None = None) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._quick = quick_reader
        self._reader = async_sessionmaker(engine, expire_on_commit=False)
        writer_engine = engine.execution_options(gateway_write=True) if self.is_sqlite else engine
        self._writer = async_sessionmaker(writer_engine, expire_on_commit=False)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (nothing is committed)."""
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed on success, rolled back on any exception."""
        async with self._writer() as session, session.begin():
            yield session

    async def fetch(
        self, statement: Select[Any], params: dict[str, Any] | None = None
    ) -> Sequence[Any]:
        """Run one small read and return its rows (named tuples of the selected columns).

        On SQLite this runs on the event loop's own thread with the standard driver (see
        :mod:`gateway.adapters.db.quick`); if SQLite is busy, the read goes the usual
        asynchronous way.
        """
        if self._quick is not None:
            try:
                return self._quick.fetch(statement, params or {})
            except sqlite3.OperationalError:
                pass
        async with self.engine.connect() as connection:
            result = await connection.execute(statement, params)
            return list(result.all())

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._quick is not None:
            self._quick.close()


def _setup_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("gateway_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_database(url: str, *, pool_size: int = 10, echo: bool = False) -> Database:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": False}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise ValueError("use a file for SQLite (several connections must share it)")
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    # Keep connections open: an aiosqlite connection is a thread plus PRAGMAs to set up, and a
    # PostgreSQL one a TCP handshake; opening one per burst of requests costs more than the query.
    kwargs["pool_size"] = pool_size
    kwargs["max_overflow"] = pool_size
    engine = create_async_engine(url, **kwargs)
    quick: QuickReader | None = None
    if engine.dialect.name == "sqlite":
        _setup_sqlite(engine)
        quick = QuickReader(database, engine.dialect, QUICK_READ_BUSY_TIMEOUT_MS)
    return Database(engine, quick)
