"""A tiny webhook endpoint that records what it receives and answers as told."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Delivery:
    body: bytes
    signature: str
    status: int

    @property
    def event(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """``statuses`` are answered in turn (then 200 forever)."""

    statuses: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        status = self.statuses.pop(0) if self.statuses else 200
        body = await request.read()
        async with self._changed:
            self.deliveries.append(
                Delivery(body, request.headers.get("Stripe-Signature", ""), status)
            )
            self._changed.notify_all()
        return web.Response(status=status, text="ok")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/stripe/webhook", self.handle)
        return app

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [d.event for d in self.deliveries if 200 <= d.status < 300]

    async def wait_for_accepted(self, count: int) -> None:
        """Wait (on a condition, not a sleep) until ``count`` deliveries were answered 2xx;
        a generous bound turns a lost delivery into a failure instead of a hang."""
        async with asyncio.timeout(5), self._changed:
            await self._changed.wait_for(lambda: len(self.accepted) >= count)
