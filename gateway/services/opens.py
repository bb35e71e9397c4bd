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
from typing import TypeVar

import sqlalchemy as sa

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
        self.first = min(self.first, when)
        self.last = max(self.last, when)


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
                for link_id, tally in opens.items():
                    first = datetime.fromtimestamp(tally.first, UTC)
                    last = datetime.fromtimestamp(tally.last, UTC)
                    await session.execute(
                        sa.update(Link)
                        .where(Link.id == link_id)
                        .values(
                            open_count=Link.open_count + tally.count,
                            first_opened_at=sa.func.coalesce(Link.first_opened_at, first),
                            last_opened_at=sa.case(
                                (
                                    Link.last_opened_at.is_(None) | (Link.last_opened_at < last),
                                    last,
                                ),
                                else_=Link.last_opened_at,
                            ),
                        )
                    )
                for (link_id, bot), tally in previews.items():
                    first = datetime.fromtimestamp(tally.first, UTC)
                    last = datetime.fromtimestamp(tally.last, UTC)
                    row = await session.get(LinkPreview, (link_id, bot))
                    if row is None:
                        session.add(
                            LinkPreview(
                                link_id=link_id,
                                bot_name=bot,
                                count=tally.count,
                                first_at=first,
                                last_at=last,
                            )
                        )
                    else:
                        row.count += tally.count
                        row.last_at = last
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
