"""SQLite write transactions run on the loop's thread (gateway.adapters.db.sqlite_direct): they
must queue behind each other in-process, wait for another process's write lock without failing,
and roll back cleanly."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.adapters.db.engine import Database, create_database
from gateway.adapters.db.migrate import upgrade
from gateway.adapters.db.models import KeyValue

NOW = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = create_database(f"sqlite+aiosqlite:///{tmp_path}/gateway.sqlite3")
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


async def _put(db: Database, key: str, value: str) -> None:
    async with db.write() as session:
        session.add(KeyValue(key=key, value=value, updated_at=NOW))


async def _values(db: Database) -> dict[str, str]:
    async with db.read() as session:
        rows = await session.execute(sa.select(KeyValue.key, KeyValue.value))
        return {row.key: row.value for row in rows}


async def test_many_concurrent_writers_all_commit(db: Database) -> None:
    await asyncio.gather(*(_put(db, f"k{i}", str(i)) for i in range(50)))
    assert await _values(db) == {f"k{i}": str(i) for i in range(50)}


async def test_a_failed_transaction_rolls_back_and_the_next_one_proceeds(db: Database) -> None:
    async def fail_after_writing() -> None:
        async with db.write() as session:
            session.add(KeyValue(key="lost", value="x", updated_at=NOW))
            await session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await fail_after_writing()
    await _put(db, "kept", "y")
    assert await _values(db) == {"kept": "y"}


async def test_a_write_waits_for_another_process_lock_then_commits(
    db: Database, tmp_path: Path
) -> None:
    # Another process (a CLI command, say) holds SQLite's write lock.
    holder = sqlite3.connect(tmp_path / "gateway.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        task = asyncio.create_task(_put(db, "after", "z"))
        done, _ = await asyncio.wait({task}, timeout=0.2)
        # Still waiting, and the loop ran meanwhile (this coroutine got control back).
        assert not done
    finally:
        holder.commit()
        holder.close()
    await task
    assert await _values(db) == {"after": "z"}
