"""``GET /v1/events``: newest first, filters, cursors, retrieval."""

from __future__ import annotations

import pytest
import stripe

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator
from tests.emulator.conftest import session_params


async def make_events(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    """Two paid sessions and one expired one, a minute apart: 7 events."""
    for _ in range(2):
        session = await client.v1.checkout.sessions.create_async(session_params(clock))
        emulator.pay(session.id)
        clock.advance(60)
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    await client.v1.checkout.sessions.expire_async(session.id)


async def test_events_are_newest_first_and_paginate(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    await make_events(client, clock, emulator)
    newest_first = [e["id"] for e in reversed(emulator.events)]
    page = await client.v1.events.list_async({"limit": 3})
    assert [e.id for e in page.data] == newest_first[:3]
    assert page.has_more is True
    page2 = await client.v1.events.list_async({"limit": 3, "starting_after": page.data[-1].id})
    assert [e.id for e in page2.data] == newest_first[3:6]
    last = await client.v1.events.list_async({"limit": 3, "starting_after": page2.data[-1].id})
    assert [e.id for e in last.data] == newest_first[6:]
    assert last.has_more is False
    before = await client.v1.events.list_async({"limit": 2, "ending_before": newest_first[3]})
    assert [e.id for e in before.data] == newest_first[1:3]
    assert before.has_more is True
    assert [e.id async for e in page.auto_paging_iter()] == newest_first


async def test_events_filter_by_type_types_and_created(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    start = int(clock.now())
    await make_events(client, clock, emulator)
    completed = await client.v1.events.list_async({"type": "checkout.session.completed"})
    assert len(completed.data) == 2
    assert {e.data.object.object for e in completed.data} == {"checkout.session"}
    wildcard = await client.v1.events.list_async({"type": "checkout.session.*"})
    assert len(wildcard.data) == 3
    several = await client.v1.events.list_async(
        {"types": ["checkout.session.expired", "charge.succeeded"]}
    )
    assert sorted(e.type for e in several.data) == [
        "charge.succeeded",
        "charge.succeeded",
        "checkout.session.expired",
    ]
    late = await client.v1.events.list_async({"created": {"gte": start + 60}})
    assert [e.type for e in late.data] == [
        "checkout.session.expired",
        "checkout.session.completed",
        "payment_intent.succeeded",
        "charge.succeeded",
    ]
    early = await client.v1.events.list_async({"created": {"lt": start + 60}})
    assert len(early.data) == 3
    exact = await client.v1.events.list_async({"created": start + 120})
    assert [e.type for e in exact.data] == ["checkout.session.expired"]


async def test_retrieve_event_and_404(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    await make_events(client, clock, emulator)
    first = emulator.events[0]
    event = await client.v1.events.retrieve_async(first["id"])
    assert event.type == first["type"]
    assert event.data.object.id == first["data"]["object"]["id"]
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.events.retrieve_async("evt_nope")
    assert caught.value.http_status == 404
    assert caught.value.json_body["error"]["code"] == "resource_missing"


async def test_event_snapshots_do_not_change_afterwards(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    emulator.pay(session.id)
    pi = emulator.sessions[session.id]["payment_intent"]
    emulator.refund_from_dashboard(pi)
    succeeded = next(e for e in emulator.events if e["type"] == "charge.succeeded")
    assert succeeded["data"]["object"]["refunded"] is False
    assert emulator.charges[succeeded["data"]["object"]["id"]]["refunded"] is True


async def test_bad_list_params_are_400s(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.events.list_async({"created": {"after": 1}})  # type: ignore[typeddict-item]
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.events.list_async({"starting_after": "evt_unknown"})
