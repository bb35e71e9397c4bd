"""The JSON control API under ``/_emulator/``, as a test driving a separate process uses it."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import stripe
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.clock import SystemClock
from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator, create_emulator_app
from tests.emulator.conftest import session_params
from tests.emulator.receiver import Receiver


async def call(
    http: aiohttp.ClientSession, base_url: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    method = "GET" if body is None else "POST"
    async with http.request(method, f"{base_url}/_emulator{path}", json=body) as resp:
        return resp.status, await resp.json()


async def test_state_and_sessions(
    client: stripe.StripeClient,
    clock: FakeClock,
    emulator: StripeEmulator,
    http: aiohttp.ClientSession,
    base_url: str,
) -> None:
    a = await client.v1.checkout.sessions.create_async(session_params(clock))
    await client.v1.checkout.sessions.create_async(session_params(clock))
    emulator.pay(a.id)
    status, state = await call(http, base_url, "/state")
    assert status == 200
    assert state["sessions"]["total"] == 2
    assert state["sessions"]["by_status"] == {"complete": 1, "open": 1}
    assert state["payment_intents"]["by_status"] == {"succeeded": 1}
    assert state["events"]["by_type"]["checkout.session.completed"] == 1
    status, listing = await call(http, base_url, "/sessions")
    assert {s["id"] for s in listing["data"]} == set(emulator.sessions)


async def test_pay_settle_refund_dispute(
    client: stripe.StripeClient,
    clock: FakeClock,
    emulator: StripeEmulator,
    http: aiohttp.ClientSession,
    base_url: str,
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    status, body = await call(http, base_url, f"/sessions/{session.id}/pay", {"outcome": "async"})
    assert (status, body["status"], body["payment_status"]) == (200, "complete", "unpaid")
    pi = body["payment_intent"]
    status, intent = await call(http, base_url, f"/payment_intents/{pi}/settle", {"succeed": True})
    assert (status, intent["status"]) == (200, "succeeded")
    status, refund = await call(http, base_url, f"/payment_intents/{pi}/refund", {"amount": 100})
    assert (status, refund["amount"]) == (200, 100)
    status, dispute = await call(http, base_url, f"/payment_intents/{pi}/dispute", {})
    assert (status, dispute["object"]) == (200, "dispute")
    types = [e["type"] for e in emulator.events]
    assert types[-2:] == ["refund.created", "charge.dispute.created"]


async def test_declined_pay_keeps_the_session_open(
    client: stripe.StripeClient,
    clock: FakeClock,
    http: aiohttp.ClientSession,
    base_url: str,
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    status, body = await call(
        http, base_url, f"/sessions/{session.id}/pay", {"outcome": "declined"}
    )
    assert (status, body["status"]) == (200, "open")


async def test_errors_use_stripes_shape(http: aiohttp.ClientSession, base_url: str) -> None:
    status, body = await call(http, base_url, "/sessions/cs_test_nope/pay", {})
    assert status == 404
    assert body["error"]["code"] == "resource_missing"
    status, body = await call(http, base_url, "/faults", {"fail_next": "many"})
    assert status == 400


async def test_faults_are_set_over_http(
    client: stripe.StripeClient,
    emulator: StripeEmulator,
    http: aiohttp.ClientSession,
    base_url: str,
) -> None:
    status, faults = await call(http, base_url, "/faults", {"fail_next": 1, "latency": 0})
    assert (status, faults["fail_next"]) == (200, 1)
    with pytest.raises(stripe.APIError):
        await client.v1.events.list_async()
    assert emulator.faults.fail_next == 0


async def test_clock_advance_expires_due_sessions(
    client: stripe.StripeClient,
    clock: FakeClock,
    emulator: StripeEmulator,
    http: aiohttp.ClientSession,
    base_url: str,
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    status, body = await call(http, base_url, "/clock/advance", {"seconds": 3600})
    assert status == 200
    assert body["expired"] == [session.id]
    assert body["now"] == clock.now()
    status, body = await call(http, base_url, "/expire_due", {})
    assert body == {"expired": []}


async def test_clock_advance_needs_a_fake_clock(
    aiohttp_server: Any, http: aiohttp.ClientSession
) -> None:
    app: web.Application = create_emulator_app(StripeEmulator(clock=SystemClock()))
    server: TestServer = await aiohttp_server(app)
    base_url = str(server.make_url("")).rstrip("/")
    status, _ = await call(http, base_url, "/clock/advance", {"seconds": 1})
    assert status == 409


async def test_deliver_webhooks_drains_the_queue(
    client: stripe.StripeClient,
    clock: FakeClock,
    emulator: StripeEmulator,
    http: aiohttp.ClientSession,
    base_url: str,
    aiohttp_server: Any,
) -> None:
    receiver = Receiver()
    receiver_server: TestServer = await aiohttp_server(receiver.app())
    emulator.webhooks.url = str(receiver_server.make_url("/stripe/webhook"))
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    await client.v1.checkout.sessions.expire_async(session.id)
    assert emulator.webhooks.pending == 1  # manual mode: queued, not sent
    status, body = await call(http, base_url, "/webhooks/deliver", {})
    assert (status, body) == (200, {"pending": 0})
    assert [e["type"] for e in receiver.accepted] == ["checkout.session.expired"]
    status, body = await call(http, base_url, "/webhooks")
    assert body["attempts"][0]["event_type"] == "checkout.session.expired"
    assert body["attempts"][0]["status"] == 200
