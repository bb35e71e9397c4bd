"""Refunds (API and dashboard) and disputes, with their events."""

from __future__ import annotations

import pytest
import stripe

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator, StripeError
from tests.emulator.conftest import session_params


async def paid_intent(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> str:
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    emulator.pay(session.id)
    intent_id: str = emulator.sessions[session.id]["payment_intent"]
    return intent_id


async def test_partial_then_full_refund(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    pi = await paid_intent(client, clock, emulator)
    partial = await client.v1.refunds.create_async(
        {"payment_intent": pi, "amount": 1000, "metadata": {"why": "sibling discount"}},
        options={"idempotency_key": "refund-1"},
    )
    assert partial.id.startswith("re_")
    assert (partial.amount, partial.status, partial.payment_intent) == (1000, "succeeded", pi)
    assert partial.metadata["why"] == "sibling discount"
    charge = await client.v1.charges.retrieve_async(partial.charge)
    assert (charge.amount_refunded, charge.refunded) == (1000, False)

    rest = await client.v1.refunds.create_async({"charge": charge.id})
    assert rest.amount == 8500 - 1000
    charge = await client.v1.charges.retrieve_async(charge.id)
    assert (charge.amount_refunded, charge.refunded) == (8500, True)
    assert [r.id for r in charge.refunds.data] == [rest.id, partial.id]

    refunded = [e for e in emulator.events if e["type"] == "charge.refunded"]
    assert [e["data"]["object"]["amount_refunded"] for e in refunded] == [1000, 8500]
    assert refunded[0]["data"]["object"]["object"] == "charge"
    assert refunded[0]["request"]["idempotency_key"] == "refund-1"
    created = [e["data"]["object"]["id"] for e in emulator.events if e["type"] == "refund.created"]
    assert created == [partial.id, rest.id]


async def test_refund_more_than_remaining_is_a_400(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    pi = await paid_intent(client, clock, emulator)
    await client.v1.refunds.create_async({"payment_intent": pi, "amount": 8000})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.refunds.create_async({"payment_intent": pi, "amount": 501})
    assert caught.value.param == "amount"
    await client.v1.refunds.create_async({"payment_intent": pi})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.refunds.create_async({"payment_intent": pi})
    assert caught.value.code == "charge_already_refunded"
    assert len(emulator.refunds) == 2


async def test_refund_needs_a_target_and_a_settled_charge(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.refunds.create_async({"amount": 100})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.refunds.create_async({"payment_intent": "pi_missing"})
    assert caught.value.http_status == 404
    session = await client.v1.checkout.sessions.create_async(session_params(clock))
    emulator.pay(session.id, "async")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.refunds.create_async(
            {"payment_intent": emulator.sessions[session.id]["payment_intent"]}
        )
    assert caught.value.code == "charge_not_refundable"


async def test_dashboard_refund_emits_charge_refunded_without_a_request(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    pi = await paid_intent(client, clock, emulator)
    refund = emulator.refund_from_dashboard(pi, 500)
    assert refund["amount"] == 500
    event = [e for e in emulator.events if e["type"] == "charge.refunded"][-1]
    assert event["data"]["object"]["amount_refunded"] == 500
    assert event["request"] == {"id": None, "idempotency_key": None}
    fetched = await client.v1.refunds.retrieve_async(refund["id"])
    assert fetched.amount == 500


async def test_dispute_emits_charge_dispute_created(
    client: stripe.StripeClient, clock: FakeClock, emulator: StripeEmulator
) -> None:
    pi = await paid_intent(client, clock, emulator)
    dispute = emulator.dispute(pi)
    assert dispute["id"].startswith("dp_")
    assert (dispute["payment_intent"], dispute["amount"], dispute["status"]) == (
        pi,
        8500,
        "needs_response",
    )
    assert dispute["reason"] == "fraudulent"
    event = emulator.events[-1]
    assert event["type"] == "charge.dispute.created"
    assert event["data"]["object"]["charge"] == emulator.payment_intents[pi]["latest_charge"]
    charge = await client.v1.charges.retrieve_async(dispute["charge"])
    assert charge.disputed is True
    with pytest.raises(StripeError):
        emulator.dispute(pi)


async def test_unknown_payment_intent_and_charge_are_404s(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.payment_intents.retrieve_async("pi_nope")
    assert caught.value.http_status == 404
    assert caught.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        await client.v1.charges.retrieve_async("ch_nope")
    assert caught.value.http_status == 404
