"""Engines and transactions for SQLite (embedded default) and PostgreSQL (several replicas).

SQLite: WAL so readers never wait for the writer, a busy timeout so writers queue instead of
failing, foreign keys on, and ``BEGIN IMMEDIATE`` for write transactions. The last one matters:
a deferred transaction that reads and then writes fails at once with SQLITE_BUSY when another
connection wrote in between, and a busy timeout cannot help it; taking the write lock up front
makes writers queue in order.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import OperationalError, ResourceClosedError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import Executable, Select

from gateway.adapters.db import sqlite_direct
from gateway.adapters.db.prepared import PreparedStatements
from gateway.adapters.db.quick import QuickReader
from gateway.adapters.db.statements import check_constant, enter_write, leave_write

if TYPE_CHECKING:
    from gateway.adapters.db.dialects import ByDialect

SQLITE_BUSY_TIMEOUT_MS = 10_000
# The quick reader runs on the event loop: it must never wait long.
QUICK_READ_BUSY_TIMEOUT_MS = 20


class Database:
    def __init__(
        self,
        engine: AsyncEngine,
        quick_reader: QuickReader | None = None,
        write_engine: AsyncEngine | None = None,
    ) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._quick = quick_reader
        self._write_engine = write_engine
        self._reader = async_sessionmaker(engine, expire_on_commit=False)
        writer_engine = write_engine or engine
        if self.is_sqlite:
            writer_engine = writer_engine.execution_options(gateway_write=True)
        self._writer = async_sessionmaker(writer_engine, expire_on_commit=False)
        # SQLite has one writer at a time. Left to SQLite, writers of this process that find
        # the lock taken sleep in its busy handler (1, 2, 5, 10... ms) and wake long after it
        # was released; queued here, the next one starts the moment the last one commits.
        # Other processes still queue through the busy timeout.
        self._write_turn: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (nothing is committed)."""
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed on success, rolled back on any exception.

        Never nest two: on SQLite the inner one would wait for the outer one forever, so the
        inner one raises :class:`~gateway.adapters.db.statements.NestedWrite` instead.
        """
        token = enter_write()
        try:
            if self._write_turn is None:
                async with self._writer() as session, session.begin():
                    yield session
                return
            async with self._write_turn:
                session = await self._begin_immediately()
                try:
                    yield session
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
                finally:
                    await session.close()
        finally:
            leave_write(token)

    async def _begin_immediately(self) -> AsyncSession:
        """A session whose transaction holds SQLite's write lock (``BEGIN IMMEDIATE``)."""

        async def attempt() -> AsyncSession:
            session = self._writer()
            try:
                await session.connection()  # begins the transaction: the lock is ours
            except BaseException:
                await session.close()
                raise
            return session

        return await _while_locked(attempt)

    @asynccontextmanager
    async def write_rows(self) -> AsyncIterator[AsyncSession | RowTransaction]:
        """A write transaction for work made only of :func:`run` statements.

        On SQLite it is the driver's connection itself, with no ORM session around it (a
        session's begin, commit and bookkeeping cost more than the statements of a webhook);
        elsewhere it is :meth:`write`'s session. Same queue, same waiting for another process.
        """
        if self._write_turn is None or self._write_engine is None:
            async with self.write() as session:
                yield session
            return
        token = enter_write()
        try:
            async with self._write_turn:
                pooled = await self._write_engine.raw_connection()
                try:
                    connection = cast(sqlite3.Connection, pooled.driver_connection)

                    async def begin() -> None:
                        connection.execute("BEGIN IMMEDIATE")

                    await _while_locked(begin)
                    try:
                        yield RowTransaction(connection, self._write_engine.dialect)
                        connection.commit()
                    except BaseException:
                        connection.rollback()
                        raise
                finally:
                    pooled.close()
        finally:
            leave_write(token)

    async def fetch(
        self, statement: Select[Any], params: dict[str, Any] | None = None
    ) -> Sequence[Any]:
        """Run one small read and return its rows (named tuples of the selected columns).

        On SQLite this runs on the event loop's own thread with the standard driver (see
        :mod:`gateway.adapters.db.quick`); if SQLite is busy, the read goes the usual
        asynchronous way. ``statement`` is a module-level constant (see :mod:`gateway.adapters.db`).
        """
        check_constant(statement)
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
        if self._write_engine is not None:
            await self._write_engine.dispose()
        if self._quick is not None:
            self._quick.close()


T = TypeVar("T")


async def _while_locked(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` until it is not refused because another process holds SQLite's write
    lock, waiting between tries without holding the loop (1 ms, doubling, at most 50 ms).
    Any other error is raised."""
    delay = 0.001
    while True:
        try:
            return await attempt()
        except (OperationalError, sqlite3.OperationalError) as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


# Statements prepared for the direct SQLite driver, shared by every Database of the process
# (a statement compiles the same for every file).
_prepared_for_sqlite: PreparedStatements | None = None


class RowTransaction:
    """A SQLite write transaction held directly on the driver's connection (see
    :meth:`Database.write_rows`); statements run in it through :func:`run`."""

    __slots__ = ("connection", "dialect")

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect) -> None:
        self.connection = connection
        self.dialect = dialect


def prepared_for(dialect: Dialect) -> PreparedStatements:
    return _prepared(dialect)


def _prepared(dialect: Dialect) -> PreparedStatements:
    global _prepared_for_sqlite
    if _prepared_for_sqlite is None:
        _prepared_for_sqlite = PreparedStatements(dialect)
    return _prepared_for_sqlite


async def run(
    session: AsyncSession | RowTransaction,
    statement: Executable | ByDialect,
    params: dict[str, Any],
) -> list[Any]:
    """One statement inside a write transaction, returning its rows (if any).

    In a SQLite write transaction it runs straight on the transaction's ``sqlite3`` connection,
    compiled once (:mod:`gateway.adapters.db.prepared`): build ``statement`` once, as a
    module-level constant with bind parameters (checked: see :mod:`gateway.adapters.db`).
    A :class:`~gateway.adapters.db.dialects.ByDialect` runs its spelling for the session's
    database. Elsewhere it goes through the session.
    """
    if not isinstance(statement, Executable):
        statement = statement.pick(session)
    check_constant(statement)
    if isinstance(session, RowTransaction):
        return _prepared(session.dialect)[statement].run(session.connection, params)
    connection = (await session.connection()).sync_connection
    assert connection is not None
    if connection.dialect.driver != sqlite_direct.DRIVER:
        result = await session.execute(statement, params)
        try:
            return list(result.all())
        except ResourceClosedError:  # a statement that returns no rows
            return []
    driver = cast(sqlite3.Connection, connection.connection.dbapi_connection)
    return _prepared(connection.dialect)[statement].run(driver, params)


def _setup_sqlite(engine: AsyncEngine, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    if engine.dialect.driver == sqlite_direct.DRIVER:
        return  # its dialect begins every transaction with BEGIN IMMEDIATE itself

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
    if engine.dialect.name != "sqlite":
        return Database(engine)
    _setup_sqlite(engine)
    quick = QuickReader(database, engine.dialect, QUICK_READ_BUSY_TIMEOUT_MS)
    writes = create_async_engine(
        parsed.set(drivername=f"sqlite+{sqlite_direct.DRIVER}"),
        echo=echo,
        pool_size=2,
        max_overflow=2,
    )
    _setup_sqlite(writes, sqlite_direct.BUSY_TIMEOUT_MS)
    return Database(engine, quick, writes)
