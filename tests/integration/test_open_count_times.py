"""The open counts' times as flushed (gateway.services.opens): to the microsecond, in the form
the database already holds them, the first open kept and the last one only moving forward.

On SQLite the flush writes the times itself (SQLite formats them from whole microseconds): the
text must be exactly what SQLAlchemy writes for the same moment, or the string comparisons
SQLite makes for every time filter (``last_opened_at < :since``) would order them wrongly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Link
from gateway.web.keys import DATABASE, OPENS
from tests.harness import Harness, start_harness

# Moments whose microseconds a careless conversion gets wrong: a fraction just under a second
# (rounds up to the next second), one exactly half a microsecond, and whole seconds.
FIRST = 1_800_000_000.999_999_7
LATER = 1_800_000_061.250_000_5
WHOLE = 1_800_000_120.0


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, database_url)


def moment(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


async def opens_of(h: Harness, link_id: str) -> tuple[int, datetime | None, datetime | None]:
    async with h.app[DATABASE].read() as session:
        row = await session.get(Link, link_id)
        assert row is not None
        return row.open_count, row.first_opened_at, row.last_opened_at


async def open_at(h: Harness, link_id: str, *moments: float) -> None:
    for when in moments:
        h.clock.set(when)
        h.app[OPENS].human_open(link_id)
    await h.flush_opens()


async def test_times_are_stored_to_the_microsecond_and_last_only_moves_forward(
    h: Harness,
) -> None:
    link = await h.issue()
    await open_at(h, link.id, FIRST)
    assert await opens_of(h, link.id) == (1, moment(FIRST), moment(FIRST))
    await open_at(h, link.id, LATER, WHOLE)
    assert await opens_of(h, link.id) == (3, moment(FIRST), moment(WHOLE))
    # A flush carrying an earlier moment (another replica's, or a clock stepped back) adds its
    # count and moves neither end.
    await open_at(h, link.id, LATER)
    assert await opens_of(h, link.id) == (4, moment(FIRST), moment(WHOLE))


async def test_on_sqlite_the_text_is_what_sqlalchemy_writes(
    aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
) -> None:
    h = await start_harness(aiohttp_server, aiohttp_client, sqlite_url)
    first, second = await h.issue(ref="a"), await h.issue(ref="b")
    await open_at(h, first.id, FIRST)
    await open_at(h, second.id, LATER)
    table = cast(sa.Table, Link.__table__)
    written = sa.select(sa.text("last_opened_at")).select_from(table).where(table.c.id == first.id)
    # What SQLAlchemy's own binding stores for the same moment (the column's bind processor).
    dialect = h.app[DATABASE].engine.dialect
    processor = table.c.last_opened_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    async with h.app[DATABASE].read() as session:
        assert (await session.execute(written)).scalar_one() == processor(moment(FIRST))
        # And a time filter orders flushed times with bound ones.
        since = sa.select(sa.func.count()).where(table.c.last_opened_at > moment(FIRST))
        assert (await session.execute(since)).scalar_one() == 1
