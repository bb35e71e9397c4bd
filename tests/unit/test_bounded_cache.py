"""Every in-process cache is bounded in bytes as well as entries (issue 10 item 12): keys an
outsider chooses cannot grow the process, whatever their size or number."""

from __future__ import annotations

import tracemalloc

import pytest

from gateway.adapters.tokens import (
    REJECTED_CACHE_BYTES,
    VERIFIED_CACHE_BYTES,
    TokenError,
    TokenService,
)
from gateway.bounded import ENTRY_BYTES, BoundedCache, estimate_bytes
from gateway.dev.clock import FakeClock


def retained(build: object) -> int:
    """Bytes still allocated after ``build()`` returned (what the object it returns holds)."""
    assert callable(build)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return after - before


class TestBoundedCache:
    def test_bounded_by_entries(self) -> None:
        cache: BoundedCache[str, bytes] = BoundedCache(3, 1 << 20)
        for i in range(10):
            cache.put(f"k{i}", b"v")
        assert cache.key_list() == ["k7", "k8", "k9"]

    def test_bounded_by_bytes_whatever_the_number_of_entries(self) -> None:
        cache: BoundedCache[str, bytes] = BoundedCache(1_000_000, 64 * 1024)
        for i in range(1000):
            cache.put(f"k{i}", b"x" * 1000)
        assert cache.bytes <= 64 * 1024
        # ~1,100 bytes each (1,000 of value, its key, the map's share): about 57 fit.
        assert 50 <= len(cache) <= 62

    def test_the_oldest_entry_leaves_first(self) -> None:
        cache: BoundedCache[str, int] = BoundedCache(2, 1 << 20)
        cache.put("a", 1)
        cache.put("b", 2)
        cache.put("a", 10)  # stored again: now the newest
        cache.put("c", 3)
        assert "b" not in cache and cache.get("a") == 10 and cache.get("c") == 3

    def test_steady_replacement_stays_cheap_and_bounded(self) -> None:
        cache: BoundedCache[str, int] = BoundedCache(10_000, 1 << 30)
        for i in range(200_000):  # a dict walking past deleted slots would take minutes
            cache.put(f"k{i}", i)
        assert len(cache) <= 10_000 and cache.get("k199999") == 199_999

    def test_an_entry_bigger_than_its_share_is_not_stored_and_flushes_nothing(self) -> None:
        cache: BoundedCache[str, bytes] = BoundedCache(100, 16 * 1024)
        cache.put("small", b"v")
        assert cache.put("huge", b"x" * 2000) is False  # over 1/16 of 16 KB
        assert "huge" not in cache and cache.get("small") == b"v"

    def test_accounting_returns_to_zero(self) -> None:
        cache: BoundedCache[str, bytes] = BoundedCache(100, 1 << 20)
        for i in range(50):
            cache.put(f"k{i}", b"x" * i)
        cache.put("k3", b"replaced")
        for i in range(0, 50, 2):
            cache.pop(f"k{i}")
        cache.clear()
        assert cache.bytes == 0 and len(cache) == 0
        cache.put("k", b"v")
        assert cache.bytes == ENTRY_BYTES + len("k") + 49 + len(b"v") + 33

    def test_ten_thousand_unique_8_kb_keys_stay_within_the_budget(self) -> None:
        budget = 1 << 20

        def fill() -> BoundedCache[str, int]:
            cache: BoundedCache[str, int] = BoundedCache(100_000, budget)
            for i in range(10_000):
                cache.put(f"{i:08d}" + "A" * 8192, i)
            return cache

        # Bounded by entries alone, these keys held 82 MB; the estimate must not undercount.
        assert retained(fill) <= budget * 1.1

    def test_the_estimate_of_a_nested_value_is_not_below_its_real_size(self) -> None:
        def build() -> list[tuple[str, tuple[int, ...], dict[str, bytes]]]:
            return [(f"name {i}", (i, i + 1, i + 2), {f"k{i}": b"x" * 50}) for i in range(1000)]

        values = build()
        estimated = sum(estimate_bytes(v) for v in values)
        assert retained(build) <= estimated


class TestTokenCaches:
    def service(self) -> TokenService:
        return TokenService(("key",), 86400, FakeClock())

    def test_unique_invalid_tokens_cannot_grow_the_rejected_cache_past_its_budget(self) -> None:
        tokens = self.service()
        # As long as the service accepts (anything longer is refused before the cache).
        length = tokens.max_length

        def hammer() -> TokenService:
            for i in range(12_000):
                with pytest.raises(TokenError):
                    tokens.verify(f"{i:08d}".ljust(length, "A"))
            return tokens

        assert retained(hammer) <= REJECTED_CACHE_BYTES * 1.1
        assert tokens._rejected.bytes <= REJECTED_CACHE_BYTES

    def test_verified_tokens_are_held_to_their_budget(self) -> None:
        tokens = self.service()
        signed = [tokens.sign(f"lk_{i:012d}") for i in range(18_000)]

        def verify_all() -> TokenService:
            for token in signed:
                tokens.verify(token)
            return tokens

        assert retained(verify_all) <= VERIFIED_CACHE_BYTES * 1.1
        assert 10_000 <= len(tokens._cache) < 18_000
