"""The SQLite quick reader (GET misses and every Pay press read through it) must return exactly
what SQLAlchemy's own execution returns: the same columns, the same values, aware datetimes."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from gateway.adapters.db.engine import Database
from gateway.adapters.db.quick import QuickReader
from gateway.services.checkout import _ITEMS_OF_LINK, _LINK_BY_ID, _ORDERS_OF_LINK
from gateway.web.keys import DATABASE
from tests.harness import Harness, start_harness


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, sqlite_url)


async def _through_sqlalchemy(db: Database, statement: Any, params: dict[str, Any]) -> list[Any]:
    async with db.engine.connect() as connection:
        return list((await connection.execute(statement, params)).all())


async def test_rows_match_sqlalchemy_for_every_read(h: Harness) -> None:
    link = await h.issue(["Spring fee, Maya=150.00", "Jersey=25.00x2"])
    assert (await h.post(link)).status == 303  # an order with a session: every column filled
    db = h.app[DATABASE]
    params = {"link_id": link.id}
    for statement in (_LINK_BY_ID, _ITEMS_OF_LINK, _ORDERS_OF_LINK):
        quick = await db.fetch(statement, params)
        expected = await _through_sqlalchemy(db, statement, params)
        assert [tuple(r) for r in quick] == [tuple(r) for r in expected]
        assert [r._fields for r in quick] == [tuple(r._fields) for r in expected]
        assert quick, "each read found rows"
    (order,) = await db.fetch(_ORDERS_OF_LINK, params)
    assert order.created_at.tzinfo is not None and order.session_url
    assert await db.fetch(_LINK_BY_ID, {"link_id": "lk_doesnotexist"}) == []


async def test_a_reader_that_cannot_read_falls_back_to_the_async_path(
    h: Harness, tmp_path: Any
) -> None:
    link = await h.issue()
    working = h.app[DATABASE]
    # A directory is not a database: sqlite3 raises OperationalError on every read.
    broken = QuickReader(str(tmp_path), working.engine.dialect, busy_timeout_ms=20)
    with pytest.raises(sqlite3.OperationalError):
        broken.fetch(_LINK_BY_ID, {"link_id": link.id})
    db = Database(working.engine, broken)
    (row,) = await db.fetch(_LINK_BY_ID, {"link_id": link.id})
    assert row.id == link.id
