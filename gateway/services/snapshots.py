"""An in-process snapshot of links for the GET path (DESIGN §8).

A GET must not cost a database round trip: parents and bots open links far more often than
anything changes. What a GET shows may lag a change made by *another* replica by at most ``ttl``
seconds; a change made in this process is seen at once (writers invalidate the link). Nothing that
decides money uses this: POST and webhooks always read the database under a lock.

Concurrent misses for one link share one load, and a load that raced an invalidation is not
stored, so an invalidated link can never be refilled with what it was before.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SnapshotCache(Generic[T]):
    def __init__(
        self, ttl: float, max_entries: int = 20_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._generation: dict[str, int] = {}
        self._loading: dict[str, asyncio.Future[T | None]] = {}

    async def get(self, key: str, load: Callable[[], Awaitable[T | None]]) -> T | None:
        entry = self._entries.get(key)
        if entry is not None and self._monotonic() - entry[0] < self._ttl:
            return entry[1]
        inflight = self._loading.get(key)
        if inflight is not None:
            return await asyncio.shield(inflight)
        future: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = self._generation.get(key, 0)
        started = self._monotonic()
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        finally:
            self._loading.pop(key, None)
        if value is not None and self._generation.get(key, 0) == generation:
            self._entries[key] = (started, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        future.set_result(value)
        return value

    def invalidate(self, key: str | None) -> None:
        if key is None:
            return
        self._entries.pop(key, None)
        self._generation[key] = self._generation.get(key, 0) + 1
        if len(self._generation) > 4 * self._max:
            self._generation.clear()  # bounded; a stale generation only costs one reload

    def clear(self) -> None:
        for key in list(self._entries):
            self.invalidate(key)
