"""An in-process snapshot of links for the GET path (DESIGN §8).

A GET must not cost a database round trip: parents and bots open links far more often than
anything changes. What a GET shows may lag a change made by *another* replica by about ``ttl``
seconds; a change made in this process is seen at once (writers invalidate the link). Nothing that
decides money uses this: POST and webhooks always read the database.

Two ways keep it fresh. Alone, an entry lives ``ttl`` seconds. With the :class:`ChangeFeed`
running (``gateway serve``), one query per ``ttl`` learns which links changed anywhere and
invalidates just those, so entries can live long (``long_ttl``) and a GET almost never waits for
the database, however many links are open. If the feed stops answering, entries fall back to
``ttl`` at once: the bound on staleness holds either way.

Concurrent misses for one link share one load, and a load that raced an invalidation is not
stored, so an invalidated link can never be refilled with what it was before.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from gateway.adapters.db.models import Link, Order

T = TypeVar("T")


class SnapshotCache(Generic[T]):
    def __init__(
        self,
        ttl: float,
        max_entries: int = 20_000,
        monotonic: Callable[[], float] = time.monotonic,
        long_ttl: float = 300.0,
    ) -> None:
        self._ttl = ttl
        self._long_ttl = max(long_ttl, ttl)
        self._feed_seen_at: float | None = None
        self._max = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._generation: dict[str, int] = {}
        # Bumped when the generations are forgotten, so a load that started before cannot
        # mistake a reset count for "nothing changed".
        self._epoch = 0
        self._loading: dict[str, asyncio.Future[T | None]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[T | None]]) -> T | None:
        entry = self._entries.get(key)
        if entry is not None and self._monotonic() - entry[0] < self._current_ttl():
            return entry[1]
        inflight = self._loading.get(key)
        if inflight is not None:
            return await asyncio.shield(inflight)
        future: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = (self._epoch, self._generation.get(key, 0))
        started = self._monotonic()
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            self._loading.pop(key, None)
        if value is not None and (self._epoch, self._generation.get(key, 0)) == generation:
            self._entries[key] = (started, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        future.set_result(value)
        return value

    def _current_ttl(self) -> float:
        seen = self._feed_seen_at
        if seen is not None and self._monotonic() - seen < 3 * self._ttl:
            return self._long_ttl
        return self._ttl

    def feed_alive(self) -> None:
        """The change feed just polled successfully: long-lived entries are safe."""
        self._feed_seen_at = self._monotonic()

    def invalidate(self, key: str | None) -> None:
        if key is None:
            return
        self._entries.pop(key, None)
        self._generation[key] = self._generation.get(key, 0) + 1
        if len(self._generation) > 4 * self._max:
            self._generation.clear()  # bounded; a stale generation only costs one reload
            self._epoch += 1

    def clear(self) -> None:
        for key in list(self._entries):
            self.invalidate(key)


class ChangeFeed:
    """Polls the database for links changed by anyone (this replica or another) and invalidates
    them in the snapshot. One indexed query per poll, whatever the number of cached links.

    Writers stamp ``orders.updated_at`` and ``links.revoked_at`` with their own clock, and a
    transaction may commit a little after its stamp, so each poll looks ``margin`` seconds further
    back than the last one; what it already saw (link, stamp) it does not invalidate twice.
    """

    def __init__(
        self, db: Any, clock: Any, cache: SnapshotCache[Any], margin: float = 10.0
    ) -> None:
        self._db = db
        self._clock = clock
        self._cache = cache
        self._margin = margin
        self._last: float | None = None
        self._seen: dict[tuple[str, datetime], None] = {}

    async def poll(self) -> int:
        now = self._clock.now()
        since = datetime.fromtimestamp(
            (self._last if self._last is not None else now) - self._margin, UTC
        )
        changed: Any = sa.union(
            sa.select(Order.link_id, Order.updated_at).where(Order.updated_at >= since),
            sa.select(Link.id, Link.revoked_at).where(Link.revoked_at >= since),
        )
        async with self._db.read() as session:
            rows = (await session.execute(changed)).all()
        fresh = 0
        for link_id, stamp in rows:
            stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
            if (link_id, stamp) in self._seen:
                continue
            self._seen[(link_id, stamp)] = None
            self._cache.invalidate(link_id)
            fresh += 1
        # Forget what fell out of the window, so the memory stays bounded.
        self._seen = {key: None for key in self._seen if key[1] >= since}
        self._last = now
        self._cache.feed_alive()
        return fresh
