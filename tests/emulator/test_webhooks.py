"""Webhook delivery: signatures the SDK verifies, retries, auto mode, webhook faults."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import stripe
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.dev.clock import FakeClock
from gateway.dev.emulator import StripeEmulator, create_emulator_app, sign_webhook
from gateway.dev.emulator.store import NO_REQUEST
from tests.emulator.receiver import Receiver

SECRET = "whsec_test_secret"

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
Make = Callable[..., Awaitable[tuple[StripeEmulator, Receiver]]]


@pytest.fixture
def make(aiohttp_server: ServerFactory, clock: FakeClock) -> Make:
    """An emulator app whose webhooks go to a recording receiver."""

    async def build(**kwargs: Any) -> tuple[StripeEmulator, Receiver]:
        receiver = Receiver(statuses=list(kwargs.pop("statuses", [])))
        receiver_server = await aiohttp_server(receiver.app())
        emulator = StripeEmulator(
            clock=clock,
            webhook_url=str(receiver_server.make_url("/stripe/webhook")),
            webhook_secret=SECRET,
            **kwargs,
        )
        await aiohttp_server(create_emulator_app(emulator))
        return emulator, receiver

    return build


def new_session(emulator: StripeEmulator, clock: FakeClock) -> str:
    params = {
        "mode": "payment",
        "success_url": "https://gw.example/ok",
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": "1000",
                    "product_data": {"name": "Fee"},
                },
                "quantity": "1",
            }
        ],
        "expires_at": str(int(clock.now()) + 3600),
    }
    session_id: str = emulator.checkout.create(params, NO_REQUEST)["id"]
    return session_id


async def test_deliveries_verify_with_the_sdk(make: Make, clock: FakeClock) -> None:
    emulator, receiver = await make(webhook_mode="manual")
    emulator.pay(new_session(emulator, clock))
    assert receiver.deliveries == []  # manual mode: nothing until asked
    await emulator.deliver_webhooks()
    types = [d.event["type"] for d in receiver.deliveries]
    assert types == ["charge.succeeded", "payment_intent.succeeded", "checkout.session.completed"]
    for delivery in receiver.deliveries:
        event = stripe.Webhook.construct_event(delivery.body, delivery.signature, SECRET)
        assert event.id == delivery.event["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            receiver.deliveries[0].body, receiver.deliveries[0].signature, "whsec_wrong"
        )
    assert all(e["pending_webhooks"] == 0 for e in emulator.events)


def test_signature_format_matches_stripe() -> None:
    header = sign_webhook(b'{"id": "evt_1"}', "whsec_x", 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    with pytest.raises(stripe.SignatureVerificationError):
        # The SDK rejects a signature older than its 5-minute tolerance: t must be wall time.
        stripe.Webhook.construct_event('{"id": "evt_1"}', header, "whsec_x")


async def test_failed_deliveries_are_retried_on_the_next_manual_drain(
    make: Make, clock: FakeClock
) -> None:
    emulator, receiver = await make(webhook_mode="manual", statuses=[500, 503])
    session_id = new_session(emulator, clock)
    emulator.checkout.expire(session_id, NO_REQUEST)
    await emulator.deliver_webhooks()
    assert [d.status for d in receiver.deliveries] == [500]
    assert emulator.events[-1]["pending_webhooks"] == 1
    await emulator.deliver_webhooks()
    await emulator.deliver_webhooks()
    assert [d.status for d in receiver.deliveries] == [500, 503, 200]
    assert receiver.deliveries[0].body != b""
    assert [a.attempt for a in emulator.webhooks.attempts] == [1, 2, 3]
    assert emulator.events[-1]["pending_webhooks"] == 0


async def test_delivery_gives_up_after_the_retry_schedule(make: Make, clock: FakeClock) -> None:
    emulator, receiver = await make(
        webhook_mode="manual", webhook_retry_delays=(1, 1), statuses=[500] * 10
    )
    emulator.checkout.expire(new_session(emulator, clock), NO_REQUEST)
    for _ in range(5):
        await emulator.deliver_webhooks()
    assert len(receiver.deliveries) == 3  # the first attempt and two retries
    assert emulator.webhooks.given_up == [emulator.events[-1]["id"]]


async def test_unreachable_endpoint_is_retried(clock: FakeClock) -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    emulator = StripeEmulator(
        clock=clock, webhook_url=f"http://127.0.0.1:{port}/nowhere", webhook_mode="manual"
    )
    emulator.checkout.expire(new_session(emulator, clock), NO_REQUEST)
    await emulator.deliver_webhooks()  # no app running: the sender uses a temporary session
    (attempt,) = emulator.webhooks.attempts
    assert attempt.status is None
    assert attempt.error is not None
    assert emulator.webhooks.pending == 1


async def test_auto_mode_delivers_without_being_asked(make: Make, clock: FakeClock) -> None:
    emulator, receiver = await make()
    emulator.pay(new_session(emulator, clock))
    await receiver.wait_for_accepted(3)
    assert receiver.accepted[-1]["type"] == "checkout.session.completed"


async def test_auto_mode_deliver_webhooks_is_a_barrier(make: Make, clock: FakeClock) -> None:
    emulator, receiver = await make()
    emulator.pay(new_session(emulator, clock))
    await emulator.deliver_webhooks()
    assert len(receiver.accepted) == 3
    assert emulator.webhooks.pending == 0


async def test_auto_mode_retries_after_the_delay(make: Make, clock: FakeClock) -> None:
    emulator, receiver = await make(webhook_retry_delays=(0.01, 0.01), statuses=[500, 500])
    emulator.checkout.expire(new_session(emulator, clock), NO_REQUEST)
    await receiver.wait_for_accepted(1)
    assert [d.status for d in receiver.deliveries] == [500, 500, 200]
    assert len({d.event["id"] for d in receiver.deliveries}) == 1


async def test_lost_webhooks_stay_in_the_event_list(make: Make, clock: FakeClock) -> None:
    emulator, receiver = await make(webhook_mode="manual")
    emulator.faults.lose_next_webhooks = 2
    emulator.pay(new_session(emulator, clock))
    await emulator.deliver_webhooks()
    assert [d.event["type"] for d in receiver.deliveries] == ["checkout.session.completed"]
    assert len(emulator.events) == 3
    assert emulator.webhooks.lost == [e["id"] for e in emulator.events[:2]]


async def test_loss_rate_loses_everything_at_one(make: Make, clock: FakeClock) -> None:
    emulator, receiver = await make(webhook_mode="manual")
    emulator.faults.webhook_loss_rate = 1.0
    emulator.pay(new_session(emulator, clock))
    await emulator.deliver_webhooks()
    assert receiver.deliveries == []
    assert len(emulator.webhooks.lost) == 3


async def test_duplicated_webhooks_arrive_twice(make: Make, clock: FakeClock) -> None:
    emulator, receiver = await make(webhook_mode="manual")
    emulator.faults.duplicate_webhooks = True
    emulator.checkout.expire(new_session(emulator, clock), NO_REQUEST)
    await emulator.deliver_webhooks()
    assert [d.event["id"] for d in receiver.deliveries] == [emulator.events[0]["id"]] * 2
    for delivery in receiver.deliveries:
        stripe.Webhook.construct_event(delivery.body, delivery.signature, SECRET)


async def test_reordered_webhooks_arrive_in_reverse(make: Make, clock: FakeClock) -> None:
    emulator, receiver = await make(webhook_mode="manual")
    emulator.faults.reorder_webhooks = True
    emulator.pay(new_session(emulator, clock))
    await emulator.deliver_webhooks()
    delivered = [d.event["id"] for d in receiver.deliveries]
    assert delivered == [e["id"] for e in reversed(emulator.events)]


async def test_no_webhook_url_means_no_deliveries(clock: FakeClock) -> None:
    emulator = StripeEmulator(clock=clock)
    emulator.pay(new_session(emulator, clock))
    await emulator.deliver_webhooks()
    assert emulator.webhooks.attempts == []
    assert all(e["pending_webhooks"] == 0 for e in emulator.events)
