"""POST /stripe/webhook: signatures over the raw bytes, each event once, monotonic transitions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gateway.emulator import sign_webhook
from tests.harness import WEBHOOK_SECRET, Harness, session_id_from, start_harness


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, database_url)


def completed_event(
    h: Harness,
    session_id: str,
    event_type: str = "checkout.session.completed",
    event_id: str = "evt_test_1",
    **changes: Any,
) -> bytes:
    session = dict(h.emulator.sessions[session_id], **changes)
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": session},
        }
    ).encode()


def sign(body: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return sign_webhook(body, secret, int(time.time()) if timestamp is None else timestamp)


async def send(h: Harness, body: bytes, signature: str | None = "valid") -> Any:
    headers = {"Content-Type": "application/json"}
    if signature == "valid":
        headers["Stripe-Signature"] = sign(body)
    elif signature is not None:
        headers["Stripe-Signature"] = signature
    return await h.client.post("/stripe/webhook", data=body, headers=headers)


async def pending_session(h: Harness) -> tuple[Any, str]:
    link = await h.issue()
    response = await h.post(link)
    return link, session_id_from(response.headers["Location"])


class TestSignature:
    @pytest.mark.parametrize(
        "signature",
        [
            None,
            "garbage",
            "t=1,v1=deadbeef",
            f"t={int(time.time())},v1=" + "0" * 64,
        ],
    )
    async def test_bad_or_missing_signature_is_400_and_changes_nothing(
        self, h: Harness, signature: str | None
    ) -> None:
        link, session_id = await pending_session(h)
        h.emulator.pay(session_id)
        response = await send(h, completed_event(h, session_id), signature)
        assert response.status == 400
        assert (await response.json())["error"]["code"].startswith("signature")
        assert [o.status for o in await h.orders(link)] == ["pending"]

    async def test_signature_from_another_secret_is_refused(self, h: Harness) -> None:
        link, session_id = await pending_session(h)
        h.emulator.pay(session_id)
        body = completed_event(h, session_id)
        response = await send(h, body, sign(body, "whsec_other"))
        assert response.status == 400
        assert [o.status for o in await h.orders(link)] == ["pending"]

    async def test_body_altered_after_signing_is_refused(self, h: Harness) -> None:
        _link, session_id = await pending_session(h)
        h.emulator.pay(session_id)
        body = completed_event(h, session_id)
        signature = sign(body)
        response = await send(h, body.replace(b'"paid"', b'"paid" '), signature)
        assert response.status == 400

    async def test_old_signature_outside_tolerance_is_refused(self, h: Harness) -> None:
        _link, session_id = await pending_session(h)
        h.emulator.pay(session_id)
        body = completed_event(h, session_id)
        old = sign(body, timestamp=int(time.time()) - 600)
        assert (await send(h, body, old)).status == 400

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"[]",
            b'{"id": "evt_1"}',
            b'{"id": "evt_1", "type": "checkout.session.completed", "data": {}}',
            b'{"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {"id": 5}}}',
        ],
    )
    async def test_malformed_but_signed_events_are_400(self, h: Harness, body: bytes) -> None:
        response = await send(h, body)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "malformed_event"


class TestApplying:
    async def test_unknown_event_types_and_foreign_sessions_are_acknowledged(
        self, h: Harness
    ) -> None:
        other = json.dumps(
            {"id": "evt_x", "type": "customer.created", "data": {"object": {}}}
        ).encode()
        assert (await send(h, other)).status == 200
        link, session_id = await pending_session(h)
        foreign = completed_event(
            h,
            session_id,
            event_id="evt_foreign",
            id="cs_test_notours",
            metadata={},
            client_reference_id=None,
            payment_status="paid",
            status="complete",
        )
        response = await send(h, foreign)
        assert response.status == 200
        assert (await response.json())["outcome"] == "ignored"
        assert [o.status for o in await h.orders(link)] == ["pending"]

    async def test_duplicate_event_changes_nothing(self, h: Harness) -> None:
        link, session_id = await pending_session(h)
        h.emulator.pay(session_id)
        body = completed_event(h, session_id)
        first, second = await send(h, body), await send(h, body)
        assert (await first.json())["outcome"] == "applied"
        assert (await second.json())["outcome"] == "duplicate"
        trail = [a.action for a in await h.audit(link)]
        assert trail.count("order.paid") == 1

    async def test_out_of_order_events_end_in_the_right_state(self, h: Harness) -> None:
        link, session_id = await pending_session(h)
        h.emulator.pay(session_id, outcome="async")
        h.emulator.settle_async(session_id, succeed=True)
        succeeded = completed_event(
            h, session_id, "checkout.session.async_payment_succeeded", event_id="evt_2"
        )
        completed_unpaid = completed_event(h, session_id, event_id="evt_1", payment_status="unpaid")
        assert (await send(h, succeeded)).status == 200
        assert (await send(h, completed_unpaid)).status == 200  # late: must not go back
        assert [o.status for o in await h.orders(link)] == ["paid"]

    async def test_expired_event_after_payment_changes_nothing(self, h: Harness) -> None:
        link, session_id = await pending_session(h)
        h.emulator.pay(session_id)
        assert (await send(h, completed_event(h, session_id))).status == 200
        expired = completed_event(
            h,
            session_id,
            "checkout.session.expired",
            event_id="evt_9",
            status="expired",
            payment_status="unpaid",
        )
        assert (await send(h, expired)).status == 200
        assert [o.status for o in await h.orders(link)] == ["paid"]

    async def test_expired_session_expires_its_pending_order_and_the_link_stays_payable(
        self, h: Harness
    ) -> None:
        link, session_id = await pending_session(h)
        h.clock.advance(61 * 60)
        h.emulator.expire_due_sessions()
        await h.emulator.deliver_webhooks()
        assert [o.status for o in await h.orders(link)] == ["expired"]
        response = await h.post(link)
        assert response.status == 303
        assert session_id_from(response.headers["Location"]) != session_id

    async def test_emulator_delivers_real_signed_webhooks_with_duplicates_and_reordering(
        self, h: Harness
    ) -> None:
        h.emulator.faults.update({"duplicate_webhooks": True, "reorder_webhooks": True})
        link, session_id = await pending_session(h)
        h.emulator.pay(session_id, outcome="async")
        h.emulator.settle_async(session_id, succeed=True)
        await h.emulator.deliver_webhooks()
        (order,) = await h.orders(link)
        assert order.status == "paid"
        assert [a.action for a in await h.audit(link)].count("order.paid") == 1

    async def test_oversized_webhook_is_413(self, h: Harness) -> None:
        response = await send(h, b"{" + b" " * (600 * 1024) + b"}")
        assert response.status == 413
