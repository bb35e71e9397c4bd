"""Checkout Sessions through the SDK: create, retrieve, list, expire, lazy expiry."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator, StripeError
from tests.emulator.conftest import session_params


async def create(client: stripe.StripeClient, clock: FakeClock, **overrides: Any) -> Any:
    return await client.v1.checkout.sessions.create_async(session_params(clock, **overrides))


async def test_create_computes_totals_and_points_at_the_hosted_page(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator, base_url: str
) -> None:
    session = await create(client, clock)
    assert session.id.startswith("cs_test_")
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert session.amount_total == session.amount_subtotal == 4500 + 2 * 2000
    assert session.currency == "eur"
    assert session.url == f"{base_url}/checkout/{session.id}"
    assert session.client_reference_id == "order-1"
    assert session.customer_email == "parent@example.com"
    assert session.metadata.to_dict() == {
        "order_id": "order-1",
        "link_id": "link-1",
        "ref": "2026-04/player-26",
    }
    assert session.payment_intent is None
    assert session.created == int(clock.now())
    assert session.expires_at == int(clock.now()) + 3600
    assert emulator.sessions_created() == 1


async def test_retrieve_returns_the_stored_session(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    session = await create(client, clock)
    again = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert again.to_dict() == session.to_dict()


async def test_line_items_can_be_expanded_and_listed(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    session = await create(client, clock)
    expanded = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["line_items"]}
    )
    names = [item.description for item in expanded.line_items.data]
    assert names == ["Season fee — Alice", "Jersey"]
    listed = await client.v1.checkout.sessions.line_items.list_async(session.id)
    assert [item.amount_total for item in listed.data] == [4500, 4000]
    assert [item.quantity for item in listed.data] == [1, 2]


async def test_payment_intent_can_be_expanded_once_paid(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    session = await create(client, clock)
    emulator.pay(session.id)
    expanded = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["payment_intent.latest_charge"]}
    )
    assert expanded.payment_intent.object == "payment_intent"
    assert expanded.payment_intent.metadata["order_id"] == "order-1"
    assert expanded.payment_intent.latest_charge.object == "charge"


@pytest.mark.parametrize(
    ("delta", "accepted"),
    [(29 * 60, False), (30 * 60, True), (24 * 3600, True), (24 * 3600 + 1, False)],
)
async def test_expires_at_must_be_between_30_minutes_and_24_hours(
    client: stripe.StripeClient, clock: FakeClock, delta: int, accepted: bool
) -> None:
    expires_at = int(clock.now()) + delta
    if accepted:
        session = await create(client, clock, expires_at=expires_at)
        assert session.expires_at == expires_at
        return
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await create(client, clock, expires_at=expires_at)
    assert caught.value.http_status == 400
    assert caught.value.param == "expires_at"


async def test_expires_at_defaults_to_24_hours(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    params = session_params(clock)
    del params["expires_at"]
    session = await client.v1.checkout.sessions.create_async(params)
    assert session.expires_at == int(clock.now()) + 24 * 3600


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"mode": None}, "mode"),
        ({"mode": "subscription"}, "mode"),
        ({"success_url": None}, "success_url"),
        ({"line_items": None}, "line_items"),
        ({"line_items": [{"quantity": 1}]}, "line_items[0][price_data]"),
        (
            {"line_items": [{"price_data": {"currency": "eur", "unit_amount": 5}}]},
            "line_items[0][quantity]",
        ),
        (
            {"line_items": [{"price_data": {"currency": "eur", "unit_amount": 5}, "quantity": 1}]},
            "line_items[0][price_data][product_data][name]",
        ),
        (
            {
                "line_items": [
                    {
                        "price_data": {
                            "currency": "eur",
                            "unit_amount": "ten",
                            "product_data": {"name": "x"},
                        },
                        "quantity": 1,
                    }
                ]
            },
            "line_items[0][price_data][unit_amount]",
        ),
        ({"expires_at": "soon"}, "expires_at"),
    ],
)
async def test_invalid_params_are_rejected_with_the_param_named(
    client: stripe.StripeClient,
    clock: FakeClock,
    emulator: StripeEmulator,
    change: dict[str, Any],
    param: str,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await create(client, clock, **change)
    assert caught.value.http_status == 400
    assert caught.value.param == param
    assert caught.value.json_body["error"]["type"] == "invalid_request_error"
    assert emulator.sessions_created() == 0


async def test_mixed_currencies_are_rejected(client: stripe.StripeClient, clock: FakeClock) -> None:
    items = session_params(clock)["line_items"]
    items[1]["price_data"]["currency"] = "usd"
    with pytest.raises(stripe.InvalidRequestError):
        await create(client, clock, line_items=items)


async def test_list_is_newest_first_and_paginates(
    client: stripe.StripeClient, clock: FakeClock
) -> None:
    ids = []
    for _ in range(5):
        ids.append((await create(client, clock)).id)
        clock.advance(1)
    page = await client.v1.checkout.sessions.list_async({"limit": 2})
    assert [s.id for s in page.data] == ids[::-1][:2]
    assert page.has_more is True
    assert page.url == "/v1/checkout/sessions"
    nxt = await client.v1.checkout.sessions.list_async(
        {"limit": 2, "starting_after": page.data[-1].id}
    )
    assert [s.id for s in nxt.data] == ids[::-1][2:4]
    back = await client.v1.checkout.sessions.list_async({"limit": 2, "ending_before": ids[2]})
    assert [s.id for s in back.data] == [ids[4], ids[3]]
    everything = [s.id async for s in page.auto_paging_iter()]
    assert everything == ids[::-1]


async def test_list_filters_by_created_status_and_payment_intent(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    old = await create(client, clock)
    clock.advance(100)
    paid = await create(client, clock)
    emulator.pay(paid.id)
    start = int(clock.now())
    recent = await client.v1.checkout.sessions.list_async({"created": {"gte": start}})
    assert [s.id for s in recent.data] == [paid.id]
    before = await client.v1.checkout.sessions.list_async({"created": {"lt": start}})
    assert [s.id for s in before.data] == [old.id]
    complete = await client.v1.checkout.sessions.list_async({"status": "complete"})
    assert [s.id for s in complete.data] == [paid.id]
    pi = emulator.sessions[paid.id]["payment_intent"]
    by_pi = await client.v1.checkout.sessions.list_async({"payment_intent": pi})
    assert [s.id for s in by_pi.data] == [paid.id]


async def test_limit_out_of_range_is_a_400(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.list_async({"limit": 101})
    assert caught.value.param == "limit"


async def test_expire_an_open_session(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    session = await create(client, clock)
    expired = await client.v1.checkout.sessions.expire_async(
        session.id, options={"idempotency_key": "expire-1"}
    )
    assert expired.status == "expired"
    (event,) = [e for e in emulator.events if e["type"] == "checkout.session.expired"]
    assert event["data"]["object"]["id"] == session.id
    assert event["request"]["idempotency_key"] == "expire-1"
    assert event["request"]["id"] is not None


async def test_expire_twice_is_a_400(client: stripe.StripeClient, clock: FakeClock) -> None:
    session = await create(client, clock)
    await client.v1.checkout.sessions.expire_async(session.id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.expire_async(session.id)
    assert caught.value.http_status == 400
    assert "expired" in str(caught.value.user_message)


async def test_expire_a_completed_session_says_it_is_complete(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    session = await create(client, clock)
    emulator.pay(session.id)
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.checkout.sessions.expire_async(session.id)
    assert caught.value.http_status == 400
    assert "complete" in str(caught.value.user_message)
    again = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert again.status == "complete"


async def test_sessions_expire_lazily_when_the_clock_passes_expires_at(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    session = await create(client, clock)
    clock.advance(3599)
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
    assert not [e for e in emulator.events if e["type"] == "checkout.session.expired"]
    clock.advance(1)
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "expired"
    expired_events = [e for e in emulator.events if e["type"] == "checkout.session.expired"]
    assert len(expired_events) == 1
    assert expired_events[0]["request"] == {"id": None, "idempotency_key": None}


async def test_expire_due_sessions_sweeps_only_overdue_open_sessions(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    short = await create(client, clock, expires_at=int(clock.now()) + 1800)
    long = await create(client, clock, expires_at=int(clock.now()) + 7200)
    paid = await create(client, clock, expires_at=int(clock.now()) + 1800)
    emulator.pay(paid.id)
    clock.advance(3600)
    assert emulator.expire_due_sessions() == [short.id]
    assert emulator.expire_due_sessions() == []
    assert emulator.sessions[long.id]["status"] == "open"
    assert emulator.sessions[paid.id]["status"] == "complete"


async def test_paying_an_expired_session_is_refused(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    session = await create(client, clock)
    clock.advance(3600)
    with pytest.raises(StripeError) as caught:
        emulator.pay(session.id)
    assert "expired" in str(caught.value)
    assert emulator.payment_intents == {}
