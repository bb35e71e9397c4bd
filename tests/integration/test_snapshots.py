"""The GET snapshot: no database round trip per GET, local writes seen at once, other replicas'
writes seen within a poll of the change feed, and a stopped feed falling back to the short TTL."""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import pytest

from gateway.services.snapshots import SnapshotCache
from gateway.web.keys import CHANGE_FEED, CHECKOUT, DATABASE, LINKS, TOKENS
from tests.harness import Harness, start_harness


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestSnapshotCache:
    async def test_hits_within_ttl_and_reloads_after(self) -> None:
        clock, loads = FakeMonotonic(), []

        async def load() -> str:
            loads.append(1)
            return f"v{len(loads)}"

        cache: SnapshotCache[str] = SnapshotCache(ttl=1.0, monotonic=clock)
        assert await cache.get("k", load) == "v1"
        clock.now += 0.9
        assert await cache.get("k", load) == "v1"
        clock.now += 0.2
        assert await cache.get("k", load) == "v2"

    async def test_a_live_feed_extends_entries_and_a_dead_one_does_not(self) -> None:
        clock, loads = FakeMonotonic(), []

        async def load() -> int:
            loads.append(1)
            return len(loads)

        cache: SnapshotCache[int] = SnapshotCache(ttl=1.0, monotonic=clock, long_ttl=300)
        cache.feed_alive()
        await cache.get("k", load)
        clock.now += 2.0
        cache.feed_alive()
        assert await cache.get("k", load) == 1  # feed alive: entry still good
        clock.now += 3.5  # no poll for 3.5 s: the feed is presumed dead
        assert await cache.get("k", load) == 2

    async def test_concurrent_misses_share_one_load(self) -> None:
        loads = []
        gate = asyncio.Event()

        async def load() -> str:
            loads.append(1)
            await gate.wait()
            return "v"

        cache: SnapshotCache[str] = SnapshotCache(ttl=1.0)
        waiters = [asyncio.ensure_future(cache.get("k", load)) for _ in range(10)]
        await asyncio.sleep(0)
        gate.set()
        assert await asyncio.gather(*waiters) == ["v"] * 10
        assert len(loads) == 1

    @pytest.mark.parametrize(
        "others_invalidated",
        [0, 10],  # 10: more than 4 x max_entries, so the per-key counts are reset meanwhile
    )
    async def test_a_load_racing_an_invalidation_is_not_stored(
        self, others_invalidated: int
    ) -> None:
        gate = asyncio.Event()
        values = iter(["old", "new"])

        async def load() -> str:
            value = next(values)
            if value == "old":
                await gate.wait()
            return value

        cache: SnapshotCache[str] = SnapshotCache(ttl=60.0, max_entries=2)
        slow = asyncio.ensure_future(cache.get("k", load))
        await asyncio.sleep(0)
        cache.invalidate("k")  # a write committed while the slow load read the old state
        for i in range(others_invalidated):
            cache.invalidate(f"other{i}")
        gate.set()
        assert await slow == "old"
        assert await cache.get("k", load) == "new"

    async def test_held_to_a_byte_budget_whatever_the_values_weigh(self) -> None:
        budget = 256 * 1024

        async def fill() -> SnapshotCache[bytes]:
            cache: SnapshotCache[bytes] = SnapshotCache(
                ttl=60.0, max_entries=1_000_000, max_bytes=budget
            )
            for i in range(2000):
                await cache.get(f"lk_{i:012d}", lambda: _async(b"x" * 4000))
            return cache

        tracemalloc.start()
        try:
            cache = await fill()
            held = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert cache.bytes <= budget and held <= budget * 1.1
        assert 50 <= cache.count <= 64  # ~4.2 KB each

    async def test_a_sibling_is_invalidated_with_its_snapshot(self) -> None:
        views: SnapshotCache[str] = SnapshotCache(ttl=60.0)
        pages: SnapshotCache[bytes] = views.sibling(max_entries=10, max_bytes=1 << 20)
        await views.get("k", lambda: _async("view 1"))
        await pages.get("k", lambda: _async(b"page 1"))
        views.invalidate("k")  # what writers and the change feed call
        assert await pages.get("k", lambda: _async(b"page 2")) == b"page 2"
        assert await views.get("k", lambda: _async("view 2")) == "view 2"
        pages.clear()
        assert views.count == 0 and pages.count == 0

    async def test_a_sibling_load_racing_an_invalidation_is_not_stored(self) -> None:
        views: SnapshotCache[str] = SnapshotCache(ttl=60.0)
        pages: SnapshotCache[str] = views.sibling(max_entries=10, max_bytes=1 << 20)
        gate = asyncio.Event()

        async def slow() -> str:
            await gate.wait()
            return "old"

        racing = asyncio.ensure_future(pages.get("k", slow))
        await asyncio.sleep(0)
        views.invalidate("k")
        # Asked after the change: not handed the load that started before it.
        assert await pages.get("k", lambda: _async("new")) == "new"
        gate.set()
        assert await racing == "old"
        assert await pages.get("k", lambda: _async("newer")) == "new"


async def _async(value: Any) -> Any:
    return value


class TestChangeFeed:
    async def test_a_change_by_another_replica_shows_after_one_poll(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str
    ) -> None:
        h: Harness = await start_harness(aiohttp_server, aiohttp_client, database_url)
        link = await h.issue()
        assert (await h.get(link)).status == 200
        feed = h.app[CHANGE_FEED]
        await feed.poll()
        # Another replica revokes the link: same database, but not this process's cache.
        from gateway.services.links import LinkService

        other = LinkService(h.app[DATABASE], h.app[TOKENS], h.clock, "http://other")
        assert await other.revoke(link.id, actor="admin:other")
        assert (await h.get(link)).status == 200  # still the snapshot
        assert await feed.poll() == 1
        assert (await h.get(link)).status == 410
        assert await feed.poll() == 0  # seen once, not invalidated again


class TestPackedPages:
    """The GET path's packed pages: a sibling of the snapshot, so every change reaches them."""

    async def test_a_packed_page_stops_at_the_end_of_the_links_validity(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str
    ) -> None:
        h: Harness = await start_harness(aiohttp_server, aiohttp_client, database_url)
        link = await h.issue(valid_for=3600)
        assert (await h.get(link)).status == 200
        h.clock.advance(3599)
        assert (await h.get(link)).status == 200  # still payable, from the packed page
        h.clock.advance(2)
        response = await h.get(link)
        assert response.status == 410 and "expired" in (await response.text()).lower()

    async def test_a_local_change_reaches_the_packed_page_at_once(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str
    ) -> None:
        h: Harness = await start_harness(aiohttp_server, aiohttp_client, database_url)
        link = await h.issue()
        assert (await h.get(link)).status == 200
        assert await h.app[LINKS].revoke(link.id, actor="admin:test")
        assert (await h.get(link)).status == 410

    async def test_opening_a_link_again_reads_nothing_from_the_database(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str
    ) -> None:
        h: Harness = await start_harness(aiohttp_server, aiohttp_client, database_url)
        links = [await h.issue(ref=f"r{i}") for i in range(20)]
        checkout = h.app[CHECKOUT]
        reads: list[str] = []
        fresh_view = checkout.fresh_view

        async def counted(link_id: str) -> Any:
            reads.append(link_id)
            return await fresh_view(link_id)

        checkout.fresh_view = counted  # type: ignore[method-assign]
        for _ in range(3):
            for link in links:
                response = await h.get(link)
                assert response.status == 200 and link.token in await response.text()
        assert sorted(reads) == sorted(link.id for link in links)  # one read per link
