"""Idempotency keys as Stripe implements them.

A POST with an ``Idempotency-Key`` stores its successful response, or the 500 it failed with,
for 24 hours (emulator clock); the same key with the same method, path and parameters replays
that response byte for byte, anything else with the key is an ``idempotency_error``. A request
whose key is held by another one still running gets Stripe's 409 ``idempotency_key_in_use``
(not a wait): two concurrent first attempts can never both create an object.
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
from gateway.dev.emulator.errors import StripeError

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
        self._in_progress: set[str] = set()
        self._settled: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        # Made on first use, inside the running loop (the store may be built before it).
        if self._settled is None:
            self._settled = asyncio.Condition()
        return self._settled

    @asynccontextmanager
    async def claim(self, key: str) -> AsyncIterator[None]:
        """Mark the key in use while a request with it runs; if another request already runs
        with it, answer as Stripe does. Stripe saves nothing for the refused request."""
        if key in self._in_progress:
            raise StripeError(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still going "
                f"through): {key}. Please try again later.",
                code="idempotency_key_in_use",
            )
        self._in_progress.add(key)
        try:
            yield
        finally:
            self._in_progress.discard(key)
            settled = self._condition()
            async with settled:
                settled.notify_all()

    def in_use(self, key: str) -> bool:
        """A request with this key is being processed now."""
        return key in self._in_progress

    async def wait_settled(self, key: str) -> None:
        """Until no request with ``key`` is running (for tests that let one finish)."""
        settled = self._condition()
        async with settled:
            await settled.wait_for(lambda: key not in self._in_progress)

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
