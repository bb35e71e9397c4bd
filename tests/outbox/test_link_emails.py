"""Link emails through the outbox (issue 14 item 3), on SQLite and PostgreSQL with a real SMTP
sink: the admin still gets the answer at once; a send refused for now stays owed and the sender
delivers it later, once, and the link says so throughout; a resend replaces a send still
waiting, so the payer gets one email when the server is back; every send is a row of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.domain.outbox import BACKOFF
from gateway.services.outbox import Outbox
from gateway.web.keys import OUTBOX
from tests.admin.support import AdminHarness, start_admin_harness
from tests.outbox.support import RefusingSink

NEW = {"name": "Sam Rivera", "items": ["Spring fee=150.00"], "send": True}


@pytest.fixture
async def sink() -> AsyncIterator[RefusingSink]:
    server = RefusingSink()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, sink: RefusingSink
) -> AdminHarness:
    return await start_admin_harness(
        aiohttp_server, aiohttp_client, database_url, smtp_port=sink.port
    )


async def create(h: AdminHarness, email: str, ref: str) -> dict[str, Any]:
    response = await h.api("POST", "/links", json={**NEW, "email": email, "ref": ref})
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def delivery(h: AdminHarness, link_id: str) -> tuple[dict[str, Any], list[str]]:
    detail = await (await h.api("GET", f"/links/{link_id}")).json()
    return detail["email_delivery"], [a["action"] for a in detail["audit"]]


async def messages(h: AdminHarness, link_id: str) -> list[dict[str, Any]]:
    page = await (await h.api("GET", "/mail", params={"link": link_id})).json()
    return list(page["messages"])


class TestLinkEmails:
    async def test_each_send_is_a_row_of_its_own_sent_at_once(
        self, h: AdminHarness, sink: RefusingSink
    ) -> None:
        created = await create(h, "sam@example.com", "r/1")
        assert created["email"] == {"sent": True, "error": None}
        resent = await h.api("POST", f"/links/{created['id']}/resend")
        assert resent.status == 200
        rows = await messages(h, created["id"])
        assert [(m["kind"], m["state"]) for m in rows] == [("link", "sent")] * 2
        assert sorted(m["subject"] for m in rows) == [f"{created['id']}/1", f"{created['id']}/2"]
        assert sorted(sink.message_ids()) == sorted(m["message_id"] for m in rows)
        assert sink.messages[0].message["X-Gateway-Link"] == created["id"]

    async def test_an_hour_without_smtp_then_every_link_email_delivered_once(
        self, h: AdminHarness, sink: RefusingSink
    ) -> None:
        outbox: Outbox = h.app[OUTBOX]
        port = sink.port
        await sink.stop()
        links = [await create(h, f"p{n}@example.com", f"r/{n}") for n in range(3)]
        for created in links:
            assert created["email"]["sent"] is False and created["email"]["error"]
            state, actions = await delivery(h, created["id"])
            assert state["sent_count"] == 0 and "tries again" in state["last_error"]
            assert actions.count("link.email_failed") == 1
        waited = 0.0
        for backoff in BACKOFF[:3]:  # 1 m, 5 m, 30 m of trying
            h.clock.advance(backoff.total_seconds())
            waited += backoff.total_seconds()
            report = await outbox.send_due()
            assert [d.outcome for d in report.deliveries] == ["retry"] * 3
        h.clock.advance(3600 - waited)
        await sink.start(port=port)
        h.clock.advance(BACKOFF[3].total_seconds())
        report = await outbox.send_due()
        assert [d.outcome for d in report.deliveries] == ["sent"] * 3
        assert (await outbox.send_due()).deliveries == ()
        assert sorted(r for m in sink.messages for r in m.recipients) == [
            "p0@example.com",
            "p1@example.com",
            "p2@example.com",
        ]
        for created in links:
            # Sent later by the sender, and the link knows: counted, the error cleared.
            state, actions = await delivery(h, created["id"])
            assert (state["sent_count"], state["last_error"]) == (1, None)
            assert actions.count("link.emailed") == 1
            assert created["url"] in sink.to(created["payer_email"])[0].text()

    async def test_a_resend_replaces_a_send_still_waiting(
        self, h: AdminHarness, sink: RefusingSink
    ) -> None:
        outbox: Outbox = h.app[OUTBOX]
        port = sink.port
        await sink.stop()
        created = await create(h, "sam@example.com", "r/1")
        assert (await h.api("POST", f"/links/{created['id']}/resend")).status == 502
        await sink.start(port=port)
        assert (await h.api("POST", f"/links/{created['id']}/resend")).status == 200
        h.clock.advance(BACKOFF[-1].total_seconds())
        assert (await outbox.send_due()).deliveries == ()
        assert len(sink.messages) == 1  # one email for the payer, not three
        rows = await messages(h, created["id"])
        assert sorted(m["state"] for m in rows) == ["canceled", "canceled", "sent"]
        state, _ = await delivery(h, created["id"])
        assert (state["sent_count"], state["last_error"]) == (1, None)

    async def test_a_link_revoked_before_the_retry_is_not_sent(
        self, h: AdminHarness, sink: RefusingSink
    ) -> None:
        outbox: Outbox = h.app[OUTBOX]
        port = sink.port
        await sink.stop()
        created = await create(h, "sam@example.com", "r/1")
        assert (await h.api("POST", f"/links/{created['id']}/revoke", json={})).status == 200
        await sink.start(port=port)
        h.clock.advance(BACKOFF[0].total_seconds())
        assert [d.outcome for d in (await outbox.send_due()).deliveries] == ["skipped"]
        assert sink.messages == []
        [row] = await messages(h, created["id"])
        assert row["state"] == "skipped" and "revoked" in row["last_error"]
        state, _ = await delivery(h, created["id"])
        assert state["sent_count"] == 0 and "revoked" in state["last_error"]
