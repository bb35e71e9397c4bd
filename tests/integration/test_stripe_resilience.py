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

from gateway.app import create_app
from gateway.config import Settings
from gateway.domain.errors import PaymentProviderUnavailable
from gateway.domain.payments import LineItemRequest, SessionRequest
from gateway.services.checkout import KEY_IN_USE_BACKOFF
from gateway.web.keys import CHECKOUT, PAYMENTS, SETTINGS
from tests.harness import BROWSER_HEADERS, Harness, session_id_from, start_harness


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


class TestKeptServerError:
    """Stripe keeps a 500 under the idempotency key and replays it for 24 hours."""

    async def test_the_next_press_replaces_the_order_at_once(self, h: Harness) -> None:
        link = await h.issue()
        h.emulator.faults.update({"fail_next": 1})
        failed = await h.post(link)
        assert failed.status == 503
        (first,) = await h.orders(link)

        pressed = await h.post(link)
        assert pressed.status == 303
        orders = {o.id: o for o in await h.orders(link)}  # both made at the same (fake) time
        old = orders.pop(first.id)
        (new,) = orders.values()
        assert (old.status, old.cancel_reason, old.stripe_session_id) == (
            "canceled",
            "superseded",
            None,
        )
        assert new.status == "pending"
        assert new.stripe_session_id == session_id_from(pressed.headers["Location"])
        assert h.emulator.sessions[new.stripe_session_id]["metadata"]["order_id"] == new.id
        assert h.emulator.sessions_created() == 1
        # The old key was asked once more (its 500 replayed), the sessions searched, then a
        # new order went to Stripe with its own key.
        assert [(m, p, k) for m, p, k in h.emulator.request_log] == [
            ("POST", "/v1/checkout/sessions", f"gateway-checkout-{old.id}"),
            ("POST", "/v1/checkout/sessions", f"gateway-checkout-{old.id}"),
            ("GET", "/v1/checkout/sessions", None),
            ("POST", "/v1/checkout/sessions", f"gateway-checkout-{new.id}"),
        ]
        canceled = [a for a in await h.audit(link) if a.action == "order.canceled"]
        assert len(canceled) == 1 and "server error" in (canceled[0].detail or "")

    async def test_a_session_made_despite_the_500_is_found_and_used(self, h: Harness) -> None:
        link = await h.issue()
        h.emulator.faults.update({"fail_after_apply_next": 1})
        assert (await h.post(link)).status == 503
        (made,) = h.emulator.sessions.values()  # Stripe made it; the answer said 500

        pressed = await h.post(link)
        assert pressed.status == 303
        assert session_id_from(pressed.headers["Location"]) == made["id"]
        (order,) = await h.orders(link)
        assert (order.status, order.stripe_session_id) == ("pending", made["id"])
        assert h.emulator.sessions_created() == 1  # never a second session for the link

    async def test_a_stale_order_whose_key_holds_a_500_is_replaced(self, h: Harness) -> None:
        link = await h.issue()
        h.emulator.faults.update({"fail_next": 1})
        assert (await h.post(link)).status == 503
        h.clock.advance(31 * 60)
        pressed = await h.post(link)
        assert pressed.status == 303
        old, new = await h.orders(link)
        assert (old.status, old.cancel_reason) == ("canceled", "stale")
        assert new.stripe_session_id == session_id_from(pressed.headers["Location"])
        assert h.emulator.sessions_created() == 1

    async def test_stripe_down_for_the_search_too_changes_nothing(self, h: Harness) -> None:
        link = await h.issue()
        h.emulator.faults.update({"fail_next": 1})
        assert (await h.post(link)).status == 503
        h.emulator.faults.update({"fail_next": 2})  # the replayed create, then the search
        assert (await h.post(link)).status == 503
        (order,) = await h.orders(link)
        assert order.status == "pending"  # not canceled: a session might exist for it
        assert (await h.post(link)).status == 303


class TestKeyInUseByAnotherReplica:
    """Two gateway processes (here: two apps on one database and one Stripe) pressing the same
    order: the second meets Stripe's 409 while the first's call runs, and asks again."""

    async def replica(self, h: Harness, aiohttp_client: Any) -> Any:
        app = create_app(h.app[SETTINGS], clock=h.clock, background_tasks=False)
        return await aiohttp_client(app)

    async def test_the_second_replica_waits_and_gets_the_same_session(
        self, h: Harness, aiohttp_client: Any
    ) -> None:
        link = await h.issue()
        other = await self.replica(h, aiohttp_client)
        h.emulator.faults.update({"hold_next": 1})
        first = asyncio.create_task(h.post(link))
        await h.emulator.held.wait_for(1)  # the first replica's create is made, not answered

        waits: list[float] = []

        async def first_one_finishes(delay: float) -> None:
            waits.append(delay)
            h.emulator.held.release()
            await first

        other.app[CHECKOUT].sleep = first_one_finishes
        second = await other.post(h.path(link), headers=BROWSER_HEADERS, allow_redirects=False)
        assert second.status == 303
        assert second.headers["Location"] == (await first).headers["Location"]
        assert waits == [KEY_IN_USE_BACKOFF[0]]
        (order,) = await h.orders(link)
        key = f"gateway-checkout-{order.id}"
        # The first's call, the second's refused one (409), the second's again (a replay).
        assert [k for _, _, k in h.stripe_posts()] == [key, key, key]
        assert h.emulator.sessions_created() == 1

    async def test_the_waiting_is_bounded_then_a_503(self, h: Harness, aiohttp_client: Any) -> None:
        link = await h.issue()
        other = await self.replica(h, aiohttp_client)
        h.emulator.faults.update({"hold_next": 1})
        first = asyncio.create_task(h.post(link))
        await h.emulator.held.wait_for(1)

        waits: list[float] = []

        async def no_wait(delay: float) -> None:
            waits.append(delay)

        other.app[CHECKOUT].sleep = no_wait
        second = await other.post(h.path(link), headers=BROWSER_HEADERS, allow_redirects=False)
        assert second.status == 503
        assert "Reference:" in await second.text()
        assert waits == list(KEY_IN_USE_BACKOFF)
        assert len(h.stripe_posts()) == 1 + len(KEY_IN_USE_BACKOFF) + 1
        h.emulator.held.release()
        assert (await first).status == 303
        assert h.emulator.sessions_created() == 1
