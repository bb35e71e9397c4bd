"""Counting who opened a link, without a write transaction per GET.

Human opens and bot previews are added up in memory and flushed in one transaction every few
seconds (and at shutdown). Losing a few seconds of counts in a crash is acceptable; a database
write on every page view, on the path bots hammer, is not.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, LinkPreview
from gateway.clock import Clock

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)


@dataclass(slots=True)
class _Tally:
    count: int
    first: float
    last: float

    def add(self, when: float) -> None:
        self.count += 1
        if when > self.last:
            self.last = when
        elif when < self.first:  # an injected clock may step back
            self.first = when


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


_links = cast(sa.Table, Link.__table__)
_last = sa.bindparam("b_last", type_=_links.c.last_opened_at.type)
_ADD_OPENS = (
    sa.update(_links)
    .where(_links.c.id == sa.bindparam("b_id"))
    .values(
        open_count=_links.c.open_count + sa.bindparam("b_count", type_=sa.Integer),
        first_opened_at=sa.func.coalesce(
            _links.c.first_opened_at,
            sa.bindparam("b_first", type_=_links.c.first_opened_at.type),
        ),
        last_opened_at=sa.case(
            (
                _links.c.last_opened_at.is_(None) | (_links.c.last_opened_at < _last),
                _last,
            ),
            else_=_links.c.last_opened_at,
        ),
    )
)


def _add_previews(sqlite: bool) -> Any:
    """Insert a (link, bot) tally, or add to the one there (several replicas may flush)."""
    previews = cast(sa.Table, LinkPreview.__table__)
    insert = (sqlite_insert if sqlite else postgres_insert)(previews)
    added = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[previews.c.link_id, previews.c.bot_name],
        set_={
            "count": previews.c.count + added.count,
            "last_at": sa.case(
                (previews.c.last_at < added.last_at, added.last_at), else_=previews.c.last_at
            ),
        },
    )


class OpenRecorder:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._opens: dict[str, _Tally] = {}
        self._previews: dict[tuple[str, str], _Tally] = {}

    def human_open(self, link_id: str) -> None:
        self._bump(self._opens, link_id)

    def bot_preview(self, link_id: str, bot_name: str) -> None:
        self._bump(self._previews, (link_id, bot_name[:100] or "unknown"))

    def _bump(self, table: dict[K, _Tally], key: K) -> None:
        now = self._clock.now()
        tally = table.get(key)
        if tally is None:
            table[key] = _Tally(1, now, now)
        else:
            tally.add(now)

    @property
    def pending(self) -> int:
        return len(self._opens) + len(self._previews)

    async def flush(self) -> None:
        """Write what was counted since the last flush, in one transaction."""
        if not self._opens and not self._previews:
            return
        opens, previews = self._opens, self._previews
        self._opens, self._previews = {}, {}
        try:
            async with self._db.write() as session:
                # Two statements however many links were opened: one executemany each.
                if opens:
                    await session.execute(
                        _ADD_OPENS,
                        [
                            {
                                "b_id": link_id,
                                "b_count": tally.count,
                                "b_first": _utc(tally.first),
                                "b_last": _utc(tally.last),
                            }
                            for link_id, tally in opens.items()
                        ],
                    )
                if previews:
                    await session.execute(
                        _add_previews(self._db.is_sqlite),
                        [
                            {
                                "link_id": link_id,
                                "bot_name": bot,
                                "count": tally.count,
                                "first_at": _utc(tally.first),
                                "last_at": _utc(tally.last),
                            }
                            for (link_id, bot), tally in previews.items()
                        ],
                    )
        except Exception:
            # Put the counts back so the next flush tries again, then let the caller log it.
            for key, tally in opens.items():
                self._merge(self._opens, key, tally)
            for pkey, tally in previews.items():
                self._merge(self._previews, pkey, tally)
            raise

    @staticmethod
    def _merge(table: dict[K, _Tally], key: K, tally: _Tally) -> None:
        existing = table.get(key)
        if existing is None:
            table[key] = tally
        else:
            existing.count += tally.count
            existing.first = min(existing.first, tally.first)
            existing.last = max(existing.last, tally.last)
