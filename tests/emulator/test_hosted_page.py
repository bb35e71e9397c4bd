"""The hosted checkout page, driven like a browser with plain form posts."""

from __future__ import annotations

import aiohttp
import stripe

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator
from tests.emulator.conftest import session_params


async def open_session(client: stripe.StripeClient, clock: FakeClock) -> stripe.checkout.Session:
    return await client.v1.checkout.sessions.create_async(session_params(clock))


async def press(
    http: aiohttp.ClientSession, session: stripe.checkout.Session, action: str
) -> aiohttp.ClientResponse:
    async with http.post(session.url, data={"action": action}, allow_redirects=False) as resp:
        await resp.read()
        return resp


async def test_page_shows_line_items_and_total(
    client: stripe.StripeClient, clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    session = await open_session(client, clock)
    async with http.get(session.url) as resp:
        html = await resp.text()
        assert resp.status == 200
        assert resp.headers["Request-Id"].startswith("req_")
    assert "Season fee — Alice" in html
    assert "Jersey × 2" in html
    assert "85.00 EUR" in html
    for action in ("pay", "decline", "pay_later", "cancel"):
        assert f'value="{action}"' in html


async def test_page_escapes_product_names(
    client: stripe.StripeClient, clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    items = session_params(clock)["line_items"]
    items[0]["price_data"]["product_data"]["name"] = "<script>alert(1)</script>"
    session = await client.v1.checkout.sessions.create_async(
        session_params(clock, line_items=items)
    )
    async with http.get(session.url) as resp:
        html = await resp.text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


async def test_pay_redirects_to_success_url_with_the_session_id(
    client: stripe.StripeClient,
    clock: FakeClock,
    http: aiohttp.ClientSession,
    emulator: StripeEmulator,
) -> None:
    session = await open_session(client, clock)
    resp = await press(http, session, "pay")
    assert resp.status == 303
    assert resp.headers["Location"] == (
        f"https://gw.example/pay/tok/return?session_id={session.id}"
    )
    paid = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    intent = await client.v1.payment_intents.retrieve_async(paid.payment_intent)
    assert intent.status == "succeeded"
    assert intent.amount == 8500
    assert intent.metadata.to_dict() == {"order_id": "order-1", "link_id": "link-1"}
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert (charge.paid, charge.amount, charge.payment_intent) == (True, 8500, intent.id)
    assert charge.metadata["order_id"] == "order-1"
    types = [e["type"] for e in emulator.events]
    assert types == ["charge.succeeded", "payment_intent.succeeded", "checkout.session.completed"]


async def test_paid_session_shows_a_clear_page_and_cannot_be_paid_again(
    client: stripe.StripeClient,
    clock: FakeClock,
    http: aiohttp.ClientSession,
    emulator: StripeEmulator,
) -> None:
    session = await open_session(client, clock)
    await press(http, session, "pay")
    async with http.get(session.url) as resp:
        html = await resp.text()
    assert "already paid" in html
    assert 'value="pay"' not in html
    resp = await press(http, session, "pay")
    assert resp.status == 409
    assert len(emulator.payment_intents) == 1


async def test_cancel_redirects_to_cancel_url_and_leaves_the_session_open(
    client: stripe.StripeClient, clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    session = await open_session(client, clock)
    resp = await press(http, session, "cancel")
    assert resp.status == 303
    assert resp.headers["Location"] == "https://gw.example/pay/tok"
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"


async def test_decline_shows_the_error_and_keeps_the_session_open(
    client: stripe.StripeClient,
    clock: FakeClock,
    http: aiohttp.ClientSession,
    emulator: StripeEmulator,
) -> None:
    session = await open_session(client, clock)
    async with http.post(session.url, data={"action": "decline"}) as resp:
        html = await resp.text()
        assert resp.status == 402
    assert "Your card was declined." in html
    assert 'value="pay"' in html  # the payer can try again
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
    assert emulator.events == []
    assert emulator.summary()["sessions"]["declines"] == 1


async def test_pay_later_then_settle_success(
    client: stripe.StripeClient,
    clock: FakeClock,
    http: aiohttp.ClientSession,
    emulator: StripeEmulator,
) -> None:
    session = await open_session(client, clock)
    resp = await press(http, session, "pay_later")
    assert resp.status == 303
    assert resp.headers["Location"].endswith(f"session_id={session.id}")
    pending = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (pending.status, pending.payment_status) == ("complete", "unpaid")
    intent = await client.v1.payment_intents.retrieve_async(pending.payment_intent)
    assert intent.status == "processing"
    async with http.get(session.url) as page:
        assert 'value="settle_success"' in await page.text()
    await press(http, session, "settle_success")
    settled = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert settled.payment_status == "paid"
    intent = await client.v1.payment_intents.retrieve_async(pending.payment_intent)
    assert intent.status == "succeeded"
    types = [e["type"] for e in emulator.events]
    assert "checkout.session.completed" in types
    assert types[-1] == "checkout.session.async_payment_succeeded"
    assert emulator.events[-1]["data"]["object"]["payment_status"] == "paid"


async def test_pay_later_then_settle_failure(
    client: stripe.StripeClient,
    clock: FakeClock,
    http: aiohttp.ClientSession,
    emulator: StripeEmulator,
) -> None:
    session = await open_session(client, clock)
    await press(http, session, "pay_later")
    await press(http, session, "settle_failure")
    failed = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (failed.status, failed.payment_status) == ("complete", "unpaid")
    intent = await client.v1.payment_intents.retrieve_async(failed.payment_intent)
    assert intent.status == "requires_payment_method"
    assert emulator.events[-1]["type"] == "checkout.session.async_payment_failed"


async def test_settle_in_process_by_session_id(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    session = await open_session(client, clock)
    emulator.pay(session.id, "async")
    emulator.settle_async(session.id, succeed=True)
    assert emulator.sessions[session.id]["payment_status"] == "paid"


async def test_expired_session_shows_a_clear_page(
    client: stripe.StripeClient,
    clock: FakeClock,
    http: aiohttp.ClientSession,
    emulator: StripeEmulator,
) -> None:
    session = await open_session(client, clock)
    clock.advance(3600)
    async with http.get(session.url) as resp:
        html = await resp.text()
    assert "expired" in html
    assert 'value="pay"' not in html
    resp = await press(http, session, "pay")
    assert resp.status == 409
    assert emulator.payment_intents == {}


async def test_unknown_session_is_a_404_page(http: aiohttp.ClientSession, base_url: str) -> None:
    async with http.get(f"{base_url}/checkout/cs_test_nope") as resp:
        assert resp.status == 404
        assert "No such checkout session" in await resp.text()
