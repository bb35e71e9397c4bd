"""An in-process snapshot of links for the GET path (docs/design.md §8).

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

The snapshot is a :class:`~gateway.bounded.BoundedCache`: bounded in entries and in estimated
bytes (``weigh``). A reader that wants links in another form (the GET path keeps each payable
link as a compressed page, a few hundred bytes, so a large organisation's links all fit) takes a
:meth:`SnapshotCache.sibling`: one invalidation, one change feed and one freshness rule for both.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, Order
from gateway.bounded import BoundedCache, estimate_bytes
from gateway.clock import Clock

T = TypeVar("T")
U = TypeVar("U")

# An entry is (loaded at, value): the tuple, and a share of a float loads started together share.
_STAMPED = 64


class _Load(Generic[T]):
    """One load in flight. ``stale`` once its key is invalidated: its result is not stored."""

    __slots__ = ("future", "stale")

    def __init__(self, future: asyncio.Future[T | None]) -> None:
        self.future = future
        self.stale = False


class _Family:
    """What a snapshot and its siblings share: the members (every invalidation reaches each) and
    when the change feed last answered."""

    __slots__ = ("feed_seen_at", "members")

    def __init__(self) -> None:
        self.members: list[SnapshotCache[Any]] = []
        self.feed_seen_at: float | None = None


class SnapshotCache(Generic[T]):
    def __init__(
        self,
        ttl: float,
        max_entries: int = 20_000,
        monotonic: Callable[[], float] = time.monotonic,
        long_ttl: float = 300.0,
        *,
        max_bytes: int = 8 << 20,
        weigh: Callable[[T], int] = estimate_bytes,
        stamped_at: Callable[[T], float] | None = None,
        _family: _Family | None = None,
    ) -> None:
        self._ttl = ttl
        self._long_ttl = max(long_ttl, ttl)
        self._monotonic = monotonic
        self._weigh = weigh
        self._stamped_at = stamped_at
        # An entry is (loaded at, value), or the value itself when it carries its own stamp.
        self._entries: BoundedCache[str, Any] = BoundedCache(
            max_entries, max_bytes, weigh=self._weigh_entry
        )
        self._loading: dict[str, _Load[T]] = {}
        self._stamp = float("-inf")
        self._family = _family or _Family()
        self._family.members.append(self)

    def _weigh_entry(self, key: str, entry: Any) -> int:
        if self._stamped_at is not None:
            return sys.getsizeof(key) + self._weigh(entry)
        return sys.getsizeof(key) + _STAMPED + self._weigh(entry[1])

    def now(self) -> float:
        """This snapshot's clock (what a value that carries its own stamp is stamped with)."""
        return self._monotonic()

    def sibling(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        weigh: Callable[[U], int] = estimate_bytes,
        stamped_at: Callable[[U], float] | None = None,
    ) -> SnapshotCache[U]:
        """Another snapshot of the same keys, holding another form of their values: what
        invalidates a key in either invalidates it in both (a load racing it is stored by
        neither), and one change feed keeps both fresh.

        With ``stamped_at``, each value carries the time its load started (the loader reads
        :meth:`now` before it reads anything), and no (time, value) pair is kept per entry: 56
        bytes a link, 5.6 MB for 100,000 of them."""
        return SnapshotCache(
            self._ttl,
            max_entries,
            self._monotonic,
            self._long_ttl,
            max_bytes=max_bytes,
            weigh=weigh,
            stamped_at=stamped_at,
            _family=self._family,
        )

    def fresh(self, key: str) -> T | None:
        """The entry if it is fresh, without loading (a hit needs no ``load`` callable)."""
        entry = self._entries.get(key)
        if entry is not None:
            stamped_at = self._stamped_at
            if stamped_at is None:
                if self._monotonic() - entry[0] < self._current_ttl():
                    return entry[1]  # type: ignore[no-any-return]
            elif self._monotonic() - stamped_at(entry) < self._current_ttl():
                return entry  # type: ignore[no-any-return]
        return None

    async def get(self, key: str, load: Callable[[], Awaitable[T | None]]) -> T | None:
        value = self.fresh(key)
        if value is not None:
            return value
        inflight = self._loading.get(key)
        if inflight is not None:
            return await asyncio.shield(inflight.future)
        loading: _Load[T] = _Load(asyncio.get_running_loop().create_future())
        self._loading[key] = loading
        started = self._monotonic()
        if started - self._stamp < self._ttl / 16:
            # Loads started within a moment share one stamp, the earliest: an entry may expire
            # that moment early, and 100,000 entries do not each keep a float of their own.
            started = self._stamp
        else:
            self._stamp = started
        try:
            value = await load()
        except BaseException as exc:
            loading.future.set_exception(exc)
            loading.future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            if self._loading.get(key) is loading:
                del self._loading[key]
        if value is not None and not loading.stale:
            self._entries.put(key, (started, value) if self._stamped_at is None else value)
        loading.future.set_result(value)
        return value

    def _current_ttl(self) -> float:
        seen = self._family.feed_seen_at
        if seen is not None and self._monotonic() - seen < 3 * self._ttl:
            return self._long_ttl
        return self._ttl

    def feed_alive(self) -> None:
        """The change feed just polled successfully: long-lived entries are safe."""
        self._family.feed_seen_at = self._monotonic()

    def invalidate(self, key: str | None) -> None:
        if key is None:
            return
        for member in self._family.members:
            member._entries.pop(key)
            # A load in flight read the link before this change: it must not be stored, and
            # whoever asks from now on waits for a load that starts after the change.
            loading = member._loading.pop(key, None)
            if loading is not None:
                loading.stale = True

    def clear(self) -> None:
        for member in self._family.members:
            for key in member._entries.key_list():
                self.invalidate(key)
            for key in list(member._loading):
                self.invalidate(key)

    @property
    def count(self) -> int:
        """Entries held. (No ``__len__``: callers write ``snapshots or SnapshotCache(...)``, and
        an empty snapshot must not read as false.)"""
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Estimated bytes held (at most ``max_bytes``)."""
        return self._entries.bytes


class ChangeFeed:
    """Polls the database for links changed by anyone (this replica or another) and invalidates
    them in the snapshot. One indexed query per poll, whatever the number of cached links.

    Writers stamp ``orders.updated_at`` and ``links.revoked_at`` with their own clock, and a
    transaction may commit a little after its stamp, so each poll looks ``margin`` seconds further
    back than the last one; what it already saw (link, stamp) it does not invalidate twice.
    """

    def __init__(
        self, db: Database, clock: Clock, cache: SnapshotCache[Any], margin: float = 10.0
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
        changed: sa.CompoundSelect[Any] = sa.union(
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
