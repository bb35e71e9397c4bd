"""One bounded cache for every in-process cache of the gateway (docs/design.md §8: caches are
bounded in bytes, not only in entries, because an outsider chooses the keys).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable
from datetime import datetime
from enum import Enum
from itertools import islice
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# What one entry of the map itself costs, beyond its key and value: a plain dict's index and
# entry slots with the room it keeps free and the entries deleted but not yet compacted (77 bytes
# measured on CPython 3.11 at 100,000 entries under steady replacement), rounded up.
ENTRY_BYTES = 80


def shallow_size(key: object, value: object) -> int:
    """The default weight: the key and the value as ``sys.getsizeof`` sees them. Exact for str
    and bytes (a long key costs its length); a caller whose values hold other objects passes a
    ``weigh`` that counts them."""
    return sys.getsizeof(key) + sys.getsizeof(value)


class BoundedCache(Generic[K, V]):
    """A map held to two bounds at once, entries and estimated bytes; the oldest entries leave
    first.

    The rule: every entry costs ``ENTRY_BYTES + weigh(key, value)`` estimated bytes. After each
    :meth:`put`, the entries stored longest ago are dropped until the cache holds at most
    ``max_entries`` entries **and** at most ``max_bytes`` bytes (a thirty-second of them at a
    time, so it may hold a little less). An entry that alone would cost more than
    ``max_item_bytes`` (by default a sixteenth of ``max_bytes``) is not stored at all: one
    oversized key, however long an outsider makes it, cannot flush what the cache holds.

    First in, first out, on a plain dict: half the memory of an ``OrderedDict`` (whose links
    cost ~75 bytes an entry), and a hit costs one lookup. A hot entry that leaves is loaded once
    more; a cache sized for its working set never drops anything.

    ``weigh`` must give the same answer for the same entry every time (entries are treated as
    immutable): it is called again when the entry leaves, instead of storing each weight. Values
    may not be ``None`` (``get`` answers ``None`` for a miss).
    """

    __slots__ = ("_bytes", "_data", "_weigh", "max_bytes", "max_entries", "max_item_bytes")

    def __init__(
        self,
        max_entries: int,
        max_bytes: int,
        *,
        weigh: Callable[[K, V], int] = shallow_size,
        max_item_bytes: int | None = None,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("a bounded cache needs room for at least one entry and one byte")
        self._data: dict[K, V] = {}
        self._bytes = 0
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes if max_item_bytes is not None else max_bytes // 16
        self._weigh = weigh

    def get(self, key: K) -> V | None:
        return self._data.get(key)

    def put(self, key: K, value: V) -> bool:
        """Store ``value`` under ``key`` (replacing any); False if it is too big to keep."""
        cost = ENTRY_BYTES + self._weigh(key, value)
        self.pop(key)
        if cost > self.max_item_bytes:
            return False
        self._data[key] = value
        self._bytes += cost
        if len(self._data) > self.max_entries or self._bytes > self.max_bytes:
            self._evict()
        return True

    def _evict(self) -> None:
        # A batch at a time: a dict finds its oldest entry by walking past the slots of those
        # deleted before it (until it next compacts), so one at a time would walk once each.
        data = self._data
        batch = max(1, len(data) // 32)
        while len(data) > self.max_entries or self._bytes > self.max_bytes:
            for old in list(islice(data, batch)):
                self._bytes -= ENTRY_BYTES + self._weigh(old, data.pop(old))

    def pop(self, key: K) -> V | None:
        value = self._data.pop(key, None)
        if value is not None:
            self._bytes -= ENTRY_BYTES + self._weigh(key, value)
        return value

    def clear(self) -> None:
        self._data.clear()
        self._bytes = 0

    def key_list(self) -> list[K]:
        """The keys, oldest first (a copy: safe to change the cache meanwhile)."""
        return list(self._data)

    @property
    def bytes(self) -> int:
        """The estimated bytes held now (never above ``max_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data


def estimate_bytes(obj: object, _depth: int = 0) -> int:
    """A deep size estimate for a cached value built of str, bytes, numbers, datetimes, tuples,
    lists, dicts and (slotted) dataclasses. Enum members, None and booleans are shared and cost
    nothing; everything else is counted as if it were not shared (an estimate on the high side).
    """
    if obj is None or isinstance(obj, bool | Enum):
        return 0
    size = sys.getsizeof(obj)
    if _depth > 8 or isinstance(obj, str | bytes | int | float | datetime):
        return size
    if isinstance(obj, tuple | list | frozenset | set):
        return size + sum(estimate_bytes(item, _depth + 1) for item in obj)
    if isinstance(obj, dict):
        return size + sum(
            estimate_bytes(k, _depth + 1) + estimate_bytes(v, _depth + 1) for k, v in obj.items()
        )
    for cls in type(obj).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            size += estimate_bytes(getattr(obj, name, None), _depth + 1)
    fields = getattr(obj, "__dict__", None)
    if fields is not None:
        size += estimate_bytes(fields, _depth + 1)
    return size
