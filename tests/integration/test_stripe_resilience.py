"""Stripe slow, failing or raced, with the real app, the real SDK and the emulator over loopback.

- one deadline bounds all of a request's Stripe calls (``stripe.request_deadline``);
- concurrent presses of one order share one Stripe call inside a process;
- a 500 that Stripe keeps under an order's idempotency key does not block the link;
- a key still in use by another process (409) is waited for, briefly, within the deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.config import Settings
from gateway.domain.errors import PaymentProviderUnavailable
from gateway.domain.payments import LineItemRequest, SessionRequest
from gateway.web.keys import PAYMENTS
from tests.harness import Harness, start_harness


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


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, database_url)


def a_session_request(h: Harness, order_id: str = "ord_shared") -> SessionRequest:
    return SessionRequest(
        order_id=order_id,
        link_id="lk_shared",
        ref="2026-04/shared",
        currency="usd",
        items=(LineItemRequest("Spring fee", 15000),),
        customer_email="parent@example.com",
        success_url="http://gw.example/pay/t/return?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://gw.example/pay/t",
        expires_at=datetime.fromtimestamp(h.clock.now() + 3600, UTC),
    )


class TestOneStripeCallPerOrder:
    async def test_300_simultaneous_first_presses_make_one_create_call(self, h: Harness) -> None:
        link = await h.issue()
        # Stripe takes a moment per call, so that the presses overlap the first one's call.
        h.emulator.faults.update({"latency": 0.2})
        responses = await asyncio.gather(*(h.post(link) for _ in range(300)))
        assert {r.status for r in responses} == {303}
        assert len({r.headers["Location"] for r in responses}) == 1
        (order,) = await h.orders(link)
        assert order.status == "pending" and order.stripe_session_id is not None
        assert h.stripe_posts() == [
            ("POST", "/v1/checkout/sessions", f"gateway-checkout-{order.id}")
        ]
        assert h.emulator.sessions_created() == 1

    async def test_a_cancelled_waiter_leaves_the_shared_call_to_the_others(
        self, h: Harness
    ) -> None:
        payments = h.app[PAYMENTS]
        request = a_session_request(h)
        h.emulator.faults.update({"latency": 0.2})
        first = asyncio.create_task(payments.create_session(request))
        second = asyncio.create_task(payments.create_session(request))
        await asyncio.sleep(0)  # both are waiting on the one call now
        first.cancel()
        info = await second
        assert first.cancelled()
        assert h.emulator.sessions[info.id]["client_reference_id"] == "ord_shared"
        assert len(h.stripe_posts()) == 1

    async def test_the_shared_call_s_error_reaches_every_waiter(self, h: Harness) -> None:
        payments = h.app[PAYMENTS]
        request = a_session_request(h)
        h.emulator.faults.update({"fail_next": 1, "latency": 0.1})
        results = await asyncio.gather(
            *(payments.create_session(request) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, PaymentProviderUnavailable) for r in results), results
        assert len(h.stripe_posts()) == 1
        assert h.emulator.sessions_created() == 0
