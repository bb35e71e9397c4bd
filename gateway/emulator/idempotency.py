"""Idempotency keys as Stripe implements them.

A POST with an ``Idempotency-Key`` stores its successful response, or the 500 it failed with,
for 24 hours (emulator clock); the same key with the same method, path and parameters replays
that response byte for byte, anything else with the key is an ``idempotency_error``. Requests
sharing a key are serialized so two concurrent first attempts cannot both create an object.
Requests refused by validation are not stored (Stripe saves nothing for a request whose endpoint
never began), so a corrected retry can succeed; a 500 is stored, as Stripe stores it, so the
same key keeps answering 500 until it is forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from gateway.clock import Clock
from gateway.emulator.errors import StripeError

KEY_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class StoredResponse:
    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: bytes
    request_id: str
    stored_at: float


class IdempotencyStore:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._responses: dict[str, StoredResponse] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def serialized(self, key: str) -> AsyncIterator[None]:
        """Hold the per-key lock; the lock is dropped once nobody waits on it."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                del self._locks[key]

    def in_use(self, key: str) -> bool:
        """A request with this key is being processed now."""
        return key in self._users

    def lookup(
        self, key: str, method: str, path: str, params: dict[str, Any]
    ) -> StoredResponse | None:
        self._forget_expired()
        stored = self._responses.get(key)
        if stored is None:
            return None
        if (stored.method, stored.path) != (method, path):
            raise StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{stored.method} {stored.path}' vs '{method} {path}'). "
                f"Try using a key other than '{key}' if you meant to execute a different request.",
            )
        if stored.params != params:
            raise StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were "
                f"first used with. Try using a key other than '{key}' if you meant to execute a "
                "different request.",
            )
        return stored

    def store(
        self,
        key: str,
        *,
        method: str,
        path: str,
        params: dict[str, Any],
        status: int,
        body: bytes,
        request_id: str,
    ) -> None:
        self._responses[key] = StoredResponse(
            method, path, params, status, body, request_id, self._clock.now()
        )

    def __len__(self) -> int:
        self._forget_expired()
        return len(self._responses)

    def _forget_expired(self) -> None:
        # Entries are stored in clock order, so the expired ones are a prefix of the dict.
        cutoff = self._clock.now() - KEY_TTL_SECONDS
        expired: list[str] = []
        for key, stored in self._responses.items():
            if stored.stored_at > cutoff:
                break
            expired.append(key)
        for key in expired:
            del self._responses[key]
