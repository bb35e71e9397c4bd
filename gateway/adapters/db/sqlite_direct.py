"""SQLite write transactions on the event loop's own thread.

aiosqlite runs every driver call on a thread of its own: a cursor, an execute, a fetch and a
close are four hand-offs per statement, each a queue put, a thread wake-up and a loop wake-up.
A webhook is two small transactions of a handful of statements, so it spent most of its time
handing work back and forth (docs/design.md §8: at least 1,000 events/s on SQLite). SQLite itself
writes such a transaction in tens of microseconds (WAL, ``synchronous=NORMAL``: no fsync per
commit), less than the hand-offs cost.

So write transactions use the standard ``sqlite3`` driver, called directly. SQLAlchemy's asyncio
layer accepts it as an async dialect: its greenlet bridge simply never has to wait. The one
thing that may block is SQLite's write lock held by *another process* (a CLI command, a second
server): the connection gives up after :data:`BUSY_TIMEOUT_MS`, and
:meth:`gateway.adapters.db.engine.Database.write` waits asynchronously and tries again. Writers
of this process queue on an ``asyncio.Lock`` and never meet the lock taken.

Reads outside a write transaction keep going through aiosqlite (a long admin listing must not
hold the loop), or through the quick reader for the small hot-path reads.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool

DRIVER = "gateway_direct"
# How long one attempt to take the write lock may hold the loop before yielding to it.
BUSY_TIMEOUT_MS = 20


class _Cursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """What SQLAlchemy's asyncio layer calls on a result it buffered; nothing to wait for."""


class _Connection(sqlite3.Connection):
    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)


class SQLiteDialectDirect(SQLiteDialect_pysqlite):
    driver = DRIVER
    is_async = True
    supports_statement_cache = True

    def do_begin(self, dbapi_connection: Any) -> None:
        # Only write transactions use this dialect: take the write lock up front (see
        # gateway.adapters.db.engine). Errors here reach the caller as SQLAlchemy's own.
        dbapi_connection.execute("BEGIN IMMEDIATE")

    @classmethod
    def get_pool_class(cls, url: URL) -> type[Pool]:
        return AsyncAdaptedQueuePool

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        # Connections are pooled by SQLAlchemy and used from whichever thread runs the loop.
        kwargs["check_same_thread"] = False
        kwargs["timeout"] = BUSY_TIMEOUT_MS / 1000
        kwargs["factory"] = _Connection
        return args, kwargs


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialectDirect")
