"""POST /stripe/webhook: signatures over the raw bytes, each event once, monotonic transitions."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import WebhookEvent
from gateway.app import create_app
from gateway.dev.emulator import sign_webhook
from gateway.services.webhooks import HANDLED_TYPES
from gateway.web.keys import DATABASE
from tests import harness
from tests.harness import WEBHOOK_SECRET, Harness, session_id_from, start_harness
from tests.processes import ROOT


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

    async def test_signature_dated_in_the_future_beyond_the_tolerance_is_refused(
        self, h: Harness
    ) -> None:
        link, session_id = await pending_session(h)
        h.emulator.pay(session_id)
        body = completed_event(h, session_id)
        ahead = sign(body, timestamp=int(time.time()) + 600)
        response = await send(h, body, ahead)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "signature_invalid"
        assert [o.status for o in await h.orders(link)] == ["pending"]
        assert await inbox(h) == []
        # Within the tolerance, a signer's clock a little ahead is fine.
        response = await send(h, body, sign(body, timestamp=int(time.time()) + 60))
        assert (await response.json())["outcome"] == "applied"


async def inbox(h: Harness) -> list[WebhookEvent]:
    async with h.app[DATABASE].read() as session:
        rows = await session.execute(sa.select(WebhookEvent).order_by(WebhookEvent.event_id))
        return list(rows.scalars())


def event_body(event_id: Any, event_type: Any, obj: Any) -> bytes:
    return json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}
    ).encode()


DEEP = 50_000  # far deeper than the JSON parser goes (its recursion limit is about 1000)


class TestUnusableEvents:
    """The rule in gateway/web/stripe_webhook.py: unparseable → 400, signed but unusable → 200
    ``invalid`` (recorded when the id is storable), never a 500, never a change to an order."""

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b'{"id": "evt_1", "type": "checkout.session.completed", "data": {"object": '
            + b"[" * DEEP
            + b"]" * DEEP
            + b"}}",
            b'{"id": "evt_1", "data": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}",
            b'{"id": "evt_1", "type": "charge.refunded", "n": ' + b"7" * 5000 + b"}",
        ],
        ids=["not-json", "deep-array", "deep-object", "5000-digit-number"],
    )
    async def test_unparseable_signed_bodies_are_400_and_record_nothing(
        self, h: Harness, body: bytes
    ) -> None:
        response = await send(h, body)
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "malformed_event"
        assert await inbox(h) == []

    @pytest.mark.parametrize(
        "body",
        [
            b"[]",
            b"5",
            b'{"type": "checkout.session.completed", "data": {"object": {}}}',
            b'{"id": 5, "type": "checkout.session.completed", "data": {"object": {}}}',
            b'{"id": "evt_\\ud800", "type": "checkout.session.completed", "data": {}}',
            b'{"id": "evt_\\u0000", "type": "customer.created", "data": {}}',
            b'{"id": "' + b"e" * 256 + b'", "type": "customer.created", "data": {}}',
        ],
        ids=["array", "number", "no-id", "int-id", "lone-surrogate-id", "nul-id", "long-id"],
    )
    async def test_signed_documents_without_a_storable_id_are_acknowledged_not_recorded(
        self, h: Harness, body: bytes
    ) -> None:
        link, _session_id = await pending_session(h)
        response = await send(h, body)
        assert response.status == 200
        assert (await response.json())["outcome"] == "invalid"
        assert await inbox(h) == []
        assert [o.status for o in await h.orders(link)] == ["pending"]

    async def test_an_event_type_that_is_not_text_is_recorded_escaped(self, h: Harness) -> None:
        body = b'{"id": "evt_t", "type": "charge.\\ud800\\u0000", "data": {"object": {}}}'
        response = await send(h, body)
        assert (await response.json())["outcome"] == "invalid"
        (row,) = await inbox(h)
        assert (row.event_id, row.outcome, row.type) == (
            "evt_t",
            "invalid",
            "charge.\\ud800\\x00",
        )
        assert "type" in (row.error or "")

    @pytest.mark.parametrize(
        "changes",
        [
            {"expires_at": 1e20},
            {"expires_at": 10**20},
            {"expires_at": -1},
            {"expires_at": 1_800_003_600.5},
            {"expires_at": "1800003600"},
            {"expires_at": True},
            {"expires_at": None},
            {"created": -(10**20)},
            {"id": 5},
            {"id": "cs_\ud800"},
            {"id": "cs_\x00"},
            {"id": "cs_" + "x" * 300},
            {"url": 5},
            {"status": 5},
            {"payment_status": None},
            {"client_reference_id": 5},
            {"client_reference_id": "ord_\ud800"},
            {"payment_intent": 5},
            {"payment_intent": {"id": 5}},
            {"payment_intent": "pi_\ud800"},
            {"amount_total": "15000"},
            {"amount_total": 10**30},
            {"metadata": "order"},
            {"metadata": {"order_id": 5}},
            {"metadata": {"order_id": "ord_\ud800"}},
        ],
        ids=repr,
    )
    async def test_a_session_event_with_unusable_fields_is_recorded_invalid_and_changes_nothing(
        self, h: Harness, changes: dict[str, Any]
    ) -> None:
        link, session_id = await pending_session(h)
        h.emulator.pay(session_id)
        body = completed_event(h, session_id, event_id="evt_bad", **changes)
        response = await send(h, body)
        assert response.status == 200
        answer = await response.json()
        assert answer["outcome"] == "invalid"
        assert answer["error"].startswith("data.object.")
        (row,) = await inbox(h)
        assert (row.event_id, row.outcome, row.order_id) == ("evt_bad", "invalid", None)
        assert row.error == answer["error"]
        (order,) = await h.orders(link)
        assert (order.status, order.payment_intent_id) == ("pending", None)
        assert [a.action for a in await h.audit(link)] == ["link.issued", "order.created"]
        # Sent again: the same answer, still nothing applied.
        again = await (await send(h, body)).json()
        assert again["outcome"] in ("invalid", "duplicate")
        assert [o.status for o in await h.orders(link)] == ["pending"]
        # The order itself was fine all along: the real event applies.
        good = await send(h, completed_event(h, session_id, event_id="evt_good"))
        assert (await good.json())["outcome"] == "applied"

    async def test_nan_and_infinity_timestamps_are_invalid(self, h: Harness) -> None:
        link, session_id = await pending_session(h)
        h.emulator.pay(session_id)
        for n, constant in enumerate((b"NaN", b"Infinity", b"-Infinity")):
            body = completed_event(h, session_id, event_id=f"evt_{n}", expires_at=12345)
            body = body.replace(b'"expires_at": 12345', b'"expires_at": ' + constant)
            assert (await (await send(h, body)).json())["outcome"] == "invalid"
        assert [o.status for o in await h.orders(link)] == ["pending"]
        assert [r.outcome for r in await inbox(h)] == ["invalid"] * 3

    @pytest.mark.parametrize(
        ("event_type", "changes"),
        [
            ("charge.refunded", {"amount_refunded": "15000"}),
            ("charge.refunded", {"amount_refunded": 1e20}),
            ("charge.refunded", {"amount_refunded": 10**30}),
            ("charge.refunded", {"amount_refunded": -5}),
            ("charge.refunded", {"refunded": "yes"}),
            ("charge.refunded", {"payment_intent": 5}),
            ("charge.refunded", {"metadata": {"order_id": "\ud800"}}),
            ("charge.dispute.created", {"reason": "fraud\ud800"}),
            ("charge.dispute.created", {"amount": "15000"}),
            ("charge.dispute.created", {"currency": 840}),
            ("charge.dispute.created", {"id": ["dp_1"]}),
        ],
        ids=repr,
    )
    async def test_a_charge_event_with_unusable_fields_is_recorded_invalid_and_changes_nothing(
        self, h: Harness, event_type: str, changes: dict[str, Any]
    ) -> None:
        link = await h.issue()
        await h.pay_flow(link)
        (order,) = await h.orders(link)
        assert order.status == "paid" and order.payment_intent_id
        if event_type == "charge.refunded":
            h.emulator.refund_from_dashboard(order.payment_intent_id)
        else:
            h.emulator.dispute(order.payment_intent_id)
        (event,) = [e for e in h.emulator.events if e["type"] == event_type]
        obj = dict(event["data"]["object"], **changes)
        response = await send(h, event_body("evt_charge", event_type, obj))
        assert response.status == 200
        assert (await response.json())["outcome"] == "invalid"
        (order,) = await h.orders(link)
        assert (order.status, order.refunded_amount, order.disputed) == ("paid", 0, False)
        rows = {r.event_id: r.outcome for r in await inbox(h)}
        assert rows["evt_charge"] == "invalid"
        # The genuine event applies.
        good = await send(h, event_body("evt_real", event_type, event["data"]["object"]))
        assert (await good.json())["outcome"] == "applied"


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


class TestTheEventsTheGatewayNeeds:
    """Issue 10, item 20: one tuple says which event types Stripe must send."""

    def test_the_handled_types_include_refunds_and_disputes(self) -> None:
        assert set(HANDLED_TYPES) == {
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "checkout.session.async_payment_failed",
            "checkout.session.expired",
            "charge.succeeded",
            "charge.refunded",
            "charge.dispute.created",
        }

    def test_the_readme_set_up_lists_every_handled_type(self) -> None:
        readme = (ROOT / "README.md").read_text()
        start = readme.index("In the Stripe dashboard, add a webhook endpoint")
        paragraph = readme[start : readme.index("\n\n", start)]
        for event_type in HANDLED_TYPES:
            assert f"`{event_type}`" in paragraph

    def test_start_up_logs_every_type_the_endpoint_must_send(
        self, caplog: pytest.LogCaptureFixture, sqlite_url: str
    ) -> None:
        settings = harness.test_settings(sqlite_url, "http://127.0.0.1:9")
        with caplog.at_level(logging.INFO, logger="gateway.web.stripe_webhook"):
            create_app(settings, background_tasks=False)
        (record,) = [r for r in caplog.records if "must send" in r.getMessage()]
        assert "/stripe/webhook" in record.getMessage()
        for event_type in HANDLED_TYPES:
            assert event_type in record.getMessage()
        assert record.event_types == list(HANDLED_TYPES)  # type: ignore[attr-defined]
