"""Objects served by the emulator have the top-level keys of real Stripe objects."""

from __future__ import annotations

from typing import Any

import aiohttp
import stripe

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator
from gateway.dev.emulator.formdecode import decode_form
from gateway.dev.emulator.store import NO_REQUEST
from tests.emulator.conftest import API_KEY, session_params
from tests.emulator.test_formdecode import sdk_wire

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def get_json(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url, headers=AUTH) as response:
        assert response.status == 200, await response.text()
        data: dict[str, Any] = await response.json()
        return data


async def test_every_object_matches_the_fixture_keys(
    client: stripe.StripeClient,
    clock: FakeClock,
    emulator: StripeEmulator,
    http: aiohttp.ClientSession,
    base_url: str,
    fixtures: dict[str, Any],
) -> None:
    created = await client.v1.checkout.sessions.create_async(session_params(clock))
    emulator.pay(created.id)
    session = await get_json(http, f"{base_url}/v1/checkout/sessions/{created.id}")
    intent = await get_json(http, f"{base_url}/v1/payment_intents/{session['payment_intent']}")
    charge = await get_json(http, f"{base_url}/v1/charges/{intent['latest_charge']}")
    refund_obj = await client.v1.refunds.create_async({"payment_intent": intent["id"]})
    refund = await get_json(http, f"{base_url}/v1/refunds/{refund_obj.id}")
    event = await get_json(http, f"{base_url}/v1/events/{emulator.events[-1]['id']}")

    assert set(session) == set(fixtures["checkout.session"])
    assert set(intent) == set(fixtures["payment_intent"])
    assert set(charge) == set(fixtures["charge"])
    assert set(refund) == set(fixtures["refund"])
    assert set(event) == set(fixtures["event"])
    assert session["object"] == "checkout.session"
    assert intent["object"] == "payment_intent"
    assert charge["object"] == "charge"
    assert refund["object"] == "refund"
    assert event["object"] == "event"


async def test_session_events_carry_a_session_shaped_snapshot(
    client: stripe.StripeClient,
    clock: FakeClock,
    emulator: StripeEmulator,
    fixtures: dict[str, Any],
) -> None:
    created = await client.v1.checkout.sessions.create_async(session_params(clock))
    emulator.pay(created.id)
    (completed,) = [e for e in emulator.events if e["type"] == "checkout.session.completed"]
    snapshot = completed["data"]["object"]
    assert set(snapshot) == set(fixtures["checkout.session"])
    assert snapshot["status"] == "complete"
    assert snapshot["payment_status"] == "paid"
    assert set(completed["request"]) == {"id", "idempotency_key"}
    assert completed["livemode"] is False
    assert completed["id"].startswith("evt_")


def test_ids_are_reproducible_from_the_seed(clock: FakeClock) -> None:
    params = decode_form(sdk_wire(session_params(clock)))
    a = StripeEmulator(clock=clock, seed=7).checkout.create(params, NO_REQUEST)
    b = StripeEmulator(clock=clock, seed=7).checkout.create(params, NO_REQUEST)
    c = StripeEmulator(clock=clock, seed=8).checkout.create(params, NO_REQUEST)
    assert a["id"] == b["id"]
    assert a["id"] != c["id"]
