"""Requests held after they were applied, until a test releases them: a slow Stripe whose
timing the test decides (no sleeps). While held, a request keeps its idempotency key in use, so
another request with the key meets Stripe's 409 ``idempotency_key_in_use``."""

from __future__ import annotations

import asyncio


class HeldRequests:
    def __init__(self) -> None:
        self._waiting: list[asyncio.Future[None]] = []
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        # Made on first use, inside the running loop (the emulator may be built before it).
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def __len__(self) -> int:
        return len(self._waiting)

    async def hold(self) -> None:
        """Wait here until :meth:`release`."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        changed = self._condition()
        async with changed:
            changed.notify_all()
        try:
            await waiter
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)

    async def wait_for(self, count: int = 1) -> None:
        """Until at least ``count`` requests are held."""
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: len(self._waiting) >= count)

    def release(self) -> int:
        """Let every held request answer; returns how many there were."""
        released = [w for w in self._waiting if not w.done()]
        for waiter in released:
            waiter.set_result(None)
        self._waiting.clear()
        return len(released)
