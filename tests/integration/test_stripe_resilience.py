"""Stripe slow, failing or raced, with the real app, the real SDK and the emulator over loopback.

- one deadline bounds all of a request's Stripe calls (``stripe.request_deadline``);
- concurrent presses of one order share one Stripe call inside a process;
- a 500 that Stripe keeps under an order's idempotency key does not block the link;
- a key still in use by another process (409) is waited for, briefly, within the deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from gateway.config import Settings
from tests.harness import start_harness


def stripe_settings(**changes: Any) -> Any:
    def configure(settings: Settings) -> Settings:
        return settings.replace(stripe=dataclasses.replace(settings.stripe, **changes))

    return configure


class TestRequestDeadline:
    async def test_a_hung_stripe_is_a_503_by_the_deadline_not_after_every_sdk_retry(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        # Each SDK try waits 2 s and there are two retries: 6 s and more without a deadline.
        h = await start_harness(
            aiohttp_server,
            aiohttp_client,
            sqlite_url,
            configure=stripe_settings(timeout=2.0, max_retries=2, request_deadline=0.3),
        )
        link = await h.issue()
        h.emulator.faults.update({"latency": 30.0})
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await h.post(link)
        elapsed = loop.time() - started
        assert response.status == 503
        assert response.headers["Retry-After"]
        assert "Reference:" in await response.text()
        # Less than ONE of the SDK's 2 s tries: the deadline, not the client timeout, ended it.
        assert elapsed < 1.5, elapsed
        (order,) = await h.orders(link)
        assert order.status == "pending"  # written before Stripe was called, kept for the retry

    async def test_the_deadline_is_a_setting_with_a_10s_default(self) -> None:
        from gateway.config import ConfigError, load_settings

        assert load_settings(path=None, env={}).stripe.request_deadline == 10.0
        env = {"GATEWAY_STRIPE_REQUEST_DEADLINE": "4s"}
        assert load_settings(path=None, env=env).stripe.request_deadline == 4.0
        with pytest.raises(ConfigError, match=r"stripe\.request_deadline"):
            load_settings(path=None, env={"GATEWAY_STRIPE_REQUEST_DEADLINE": "0"})
