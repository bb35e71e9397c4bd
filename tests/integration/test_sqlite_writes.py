"""SQLite write transactions run on the loop's thread (gateway.adapters.db.sqlite_direct), as an
ORM session (``write``) or on the driver's connection (``write_rows``): either must queue behind
the others in-process, wait for another process's write lock without failing, and roll back
cleanly."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.adapters.db.engine import Database, RowTransaction, create_database, run
from gateway.adapters.db.migrate import upgrade
from gateway.adapters.db.models import KeyValue

NOW = datetime(2026, 12, 2, tzinfo=UTC)
Put = Callable[[Database, str, str], Awaitable[None]]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = create_database(f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3")
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


_kv = KeyValue.__table__
_PUT = sa.insert(_kv).values(
    key=sa.bindparam("p_key", type_=_kv.c.key.type),
    value=sa.bindparam("p_value", type_=_kv.c.value.type),
    updated_at=sa.bindparam("p_at", type_=_kv.c.updated_at.type),
)


async def _put(db: Database, key: str, value: str) -> None:
    async with db.write() as session:
        session.add(KeyValue(key=key, value=value, updated_at=NOW))


async def _put_row(db: Database, key: str, value: str) -> None:
    """The same through write_rows: the driver's connection, a statement built once."""
    async with db.write_rows() as transaction:
        assert isinstance(transaction, RowTransaction)
        await run(transaction, _PUT, {"p_key": key, "p_value": value, "p_at": NOW})


@pytest.fixture(params=["session", "rows"])
def put(request: pytest.FixtureRequest) -> Put:
    return _put if request.param == "session" else _put_row


async def _values(db: Database) -> dict[str, str]:
    async with db.read() as session:
        rows = await session.execute(sa.select(KeyValue.key, KeyValue.value))
        return {row.key: row.value for row in rows}


async def test_many_concurrent_writers_all_commit(db: Database, put: Put) -> None:
    await asyncio.gather(*(put(db, f"k{i}", str(i)) for i in range(50)))
    assert await _values(db) == {f"k{i}": str(i) for i in range(50)}


async def test_a_failed_transaction_rolls_back_and_the_next_one_proceeds(db: Database) -> None:
    async def fail_after_writing() -> None:
        async with db.write() as session:
            session.add(KeyValue(key="lost", value="x", updated_at=NOW))
            await session.flush()
            raise RuntimeError("boom")

    async def fail_after_writing_rows() -> None:
        async with db.write_rows() as transaction:
            await run(transaction, _PUT, {"p_key": "lost2", "p_value": "x", "p_at": NOW})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_after_writing()
    with pytest.raises(RuntimeError):
        await fail_after_writing_rows()
    await _put(db, "kept", "y")
    assert await _values(db) == {"kept": "y"}


async def test_a_write_waits_for_another_process_lock_then_commits(
    db: Database, tmp_path: Path, put: Put
) -> None:
    # Another process (a CLI command, say) holds SQLite's write lock.
    holder = sqlite3.connect(tmp_path / "gateway.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        task = asyncio.create_task(put(db, "after", "z"))
        done, _ = await asyncio.wait({task}, timeout=0.2)
        # Still waiting, and the loop ran meanwhile (this coroutine got control back).
        assert not done
    finally:
        holder.commit()
        holder.close()
    await task
    assert await _values(db) == {"after": "z"}
