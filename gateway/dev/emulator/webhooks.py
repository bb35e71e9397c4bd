"""Webhook delivery: signing, a queue with retries, and the webhook faults.

One ``WebhookSender`` per emulator. Events are queued when they are created; ``drain()``
delivers whatever is due, one at a time (a deterministic order makes the reorder fault and the
tests meaningful). In ``auto`` mode a background task started by the app drains as soon as
something is queued or a retry falls due (real time, ``retry_delays``). In ``manual`` mode only an
explicit ``drain()`` delivers, and every queued delivery counts as due, so a test retries a
failed delivery by draining again instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from gateway.dev.emulator.faults import FaultDecider

log = logging.getLogger(__name__)

WebhookMode = Literal["auto", "manual"]

DELIVERY_TIMEOUT_SECONDS = 10.0


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header: HMAC-SHA256 of ``"{t}.{payload}"`` keyed by the secret."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class _Delivery:
    event: dict[str, Any]
    failures: int = 0
    due: float = 0.0  # time.monotonic()


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST to the webhook endpoint, kept for tests and the control API."""

    event_id: str
    event_type: str
    attempt: int
    status: int | None
    error: str | None
    duplicate: bool


class WebhookSender:
    def __init__(
        self,
        *,
        url: str | None,
        secret: str,
        mode: WebhookMode,
        retry_delays: Sequence[float],
        decider: FaultDecider,
    ) -> None:
        self.url = url
        self.secret = secret
        self.mode = mode
        self.retry_delays = tuple(retry_delays)
        self._decider = decider
        self._queue: list[_Delivery] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.attempts: list[DeliveryAttempt] = []
        self.lost: list[str] = []
        self.given_up: list[str] = []
        self.session: aiohttp.ClientSession | None = None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def enqueue(self, event: dict[str, Any]) -> None:
        if self.url is None:
            return
        if self._decider.lose_webhook():
            self.lost.append(event["id"])
            return
        event["pending_webhooks"] += 1
        self._queue.append(_Delivery(event, due=time.monotonic()))
        self._wake.set()

    async def drain(self) -> None:
        """Deliver every delivery that is due now and wait for the outcome."""
        async with self._lock:
            now = time.monotonic()
            due = [d for d in self._queue if self.mode == "manual" or d.due <= now]
            if not due:
                return
            taken = {id(d) for d in due}
            self._queue = [d for d in self._queue if id(d) not in taken]
            if self._decider.faults.reorder_webhooks:
                due.reverse()
            if self.session is not None:
                await self._deliver_all(self.session, due)
            else:
                # Called without a running app (a purely in-process test): a short-lived session.
                async with aiohttp.ClientSession() as session:
                    await self._deliver_all(session, due)

    async def run(self) -> None:
        """The auto-mode loop: sleep until something is queued or a retry is due, then drain."""
        while True:
            self._wake.clear()
            delay = self._seconds_until_due()
            if delay is None:
                await self._wake.wait()
            elif delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
            try:
                await self.drain()
            except Exception:  # the sender must outlive any one bad delivery
                log.exception("webhook drain failed")

    def _seconds_until_due(self) -> float | None:
        if not self._queue:
            return None
        return max(0.0, min(d.due for d in self._queue) - time.monotonic())

    async def _deliver_all(self, session: aiohttp.ClientSession, due: list[_Delivery]) -> None:
        for delivery in due:
            delivered = await self._post(session, delivery, duplicate=False)
            if delivered:
                delivery.event["pending_webhooks"] -= 1
                if self._decider.duplicate_webhook():
                    await self._post(session, delivery, duplicate=True)
                continue
            delivery.failures += 1
            if delivery.failures > len(self.retry_delays):
                self.given_up.append(delivery.event["id"])
                continue
            delivery.due = time.monotonic() + self.retry_delays[delivery.failures - 1]
            self._queue.append(delivery)
            self._wake.set()

    async def _post(
        self, session: aiohttp.ClientSession, delivery: _Delivery, *, duplicate: bool
    ) -> bool:
        assert self.url is not None
        event = delivery.event
        body = json.dumps(event, indent=2).encode()
        # Stripe signs at delivery time with the wall clock, whatever the emulator clock says,
        # so that receivers' timestamp tolerance checks pass.
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, self.secret, int(time.time())),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        status: int | None = None
        error: str | None = None
        try:
            async with session.post(
                self.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_SECONDS),
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.attempts.append(
            DeliveryAttempt(
                event["id"], event["type"], delivery.failures + 1, status, error, duplicate
            )
        )
        return status is not None and 200 <= status < 300
