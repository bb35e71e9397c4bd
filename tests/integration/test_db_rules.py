"""The database rules of gateway.adapters.db fail loudly instead of leaking or hanging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import cast

import pytest
import sqlalchemy as sa

from gateway.adapters.db import statements
from gateway.adapters.db.engine import Database, create_database, run
from gateway.adapters.db.migrate import upgrade
from gateway.adapters.db.models import KeyValue
from gateway.adapters.db.statements import NestedWrite, StatementNotConstant

NOW = datetime(2026, 12, 2, tzinfo=UTC)
_kv = cast(sa.Table, KeyValue.__table__)
_GET = sa.select(_kv.c.value).where(_kv.c.key == sa.bindparam("p_key"))
_PUT = sa.insert(_kv).values(
    key=sa.bindparam("p_key", type_=_kv.c.key.type),
    value=sa.bindparam("p_value", type_=_kv.c.value.type),
    updated_at=sa.bindparam("p_at", type_=_kv.c.updated_at.type),
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = create_database(database_url)
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


def test_the_suite_runs_with_the_checks_on() -> None:
    assert statements.checking()


async def test_a_statement_built_per_call_is_refused(db: Database) -> None:
    def built_here() -> sa.Select[tuple[str]]:
        return sa.select(_kv.c.value).where(_kv.c.key == sa.bindparam("p_key"))

    with pytest.raises(StatementNotConstant):
        await db.fetch(built_here(), {"p_key": "a"})
    async with db.write_rows() as transaction:
        with pytest.raises(StatementNotConstant):
            await run(transaction, built_here(), {"p_key": "a"})
    async with db.write() as session:
        with pytest.raises(StatementNotConstant):
            await run(session, built_here(), {"p_key": "a"})


async def test_module_level_statements_run(db: Database) -> None:
    async with db.write_rows() as transaction:
        await run(transaction, _PUT, {"p_key": "a", "p_value": "1", "p_at": NOW})
    assert [tuple(row) for row in await db.fetch(_GET, {"p_key": "a"})] == [("1",)]


async def test_a_nested_write_raises_instead_of_waiting_forever(db: Database) -> None:
    async def nested() -> None:
        async with db.write() as session:
            session.add(KeyValue(key="outer", value="1", updated_at=NOW))
            async with db.write_rows():
                pass  # pragma: no cover - never entered

    # Bounded: before the check, this waited for the outer transaction's lock for good.
    with pytest.raises(NestedWrite):
        await asyncio.wait_for(nested(), timeout=30)
    async with db.write() as session:
        async with db.read() as reading:  # a read inside a write is fine
            await reading.execute(sa.select(1))
        session.add(KeyValue(key="after", value="2", updated_at=NOW))
    assert [tuple(row) for row in await db.fetch(_GET, {"p_key": "outer"})] == []
    assert [tuple(row) for row in await db.fetch(_GET, {"p_key": "after"})] == [("2",)]


async def test_writes_in_other_tasks_are_not_nested(db: Database) -> None:
    """A task started inside a write owns no transaction: it waits its turn (after the outer
    one commits) instead of being refused."""
    async with db.write() as session:
        session.add(KeyValue(key="first", value="1", updated_at=NOW))

        async def put() -> None:
            async with db.write() as inner:
                inner.add(KeyValue(key="second", value="2", updated_at=NOW))

        task = asyncio.create_task(put())
    await task
    assert [tuple(row) for row in await db.fetch(_GET, {"p_key": "second"})] == [("2",)]
