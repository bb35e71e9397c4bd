"""Link emails over real SMTP (aiosmtpd on loopback): what the payer receives, every attempt
recorded on the link, failures visible and retried by a resend, bulk sends once per payer."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

from gateway.dev.demo_mail import MailSink
from tests.admin.support import FROM_ADDRESS, AdminHarness, start_admin_harness

NEW = {
    "email": "sam.parent@example.com",
    "name": "Sam <Rivera>",
    "description": "Spring season",
    "items": ["Spring fee, Maya=150.00", "Spring fee, Leo=120.00"],
    "ref": "2026-04/family-7",
}
TEAM_CSV = """email,name,ref,amount,description
ana@example.com,Ana Lopez,2026-04/p1,150.00,Spring fee
ben@example.com,Ben Okafor,2026-04/p2,150.00,Spring fee
kim@example.com,Kim Ito,2026-04/p3,120.00,Spring fee
"""


def link_in(text: str) -> str:
    match = re.search(r"(http://127\.0\.0\.1:\d+/pay/\S+)", text)
    assert match, text
    return match[1]


class TestMessage:
    async def test_the_payer_receives_what_is_owed_the_link_and_who_to_contact(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        response = await h.api("POST", "/links", json={**NEW, "send": True})
        assert response.status == 201
        created = await response.json()
        assert created["email"] == {"sent": True, "error": None}
        (mail,) = mail_sink.messages
        assert mail.recipients == ("sam.parent@example.com",)
        assert mail.sender == FROM_ADDRESS
        assert "Riverside Youth Basketball" in mail.subject
        assert mail.message["X-Gateway-Link"] == created["id"]
        text = mail.text()
        for expected in (
            "Sam <Rivera>",
            "Spring fee, Maya: $150.00",
            "Total: $270.00",
            "2026-04/family-7",
            "treasurer@riverside.example",
            created["url"],
        ):
            assert expected in text, expected
        html = mail.html()
        assert "Sam &lt;Rivera&gt;" in html and "<Rivera>" not in html
        assert created["url"] in html
        # The emailed link is the link: the payer lands on the confirm page.
        page = await h.get(link_in(text).rsplit("/", 1)[1])
        assert page.status == 200 and "270.00" in await page.text()

    async def test_each_send_is_recorded_on_the_link(self, h: AdminHarness) -> None:
        created = await (await h.api("POST", "/links", json={**NEW, "send": True})).json()
        h.clock.advance(60)
        assert (await h.api("POST", f"/links/{created['id']}/resend")).status == 200
        detail = await (await h.api("GET", f"/links/{created['id']}")).json()
        assert detail["email_delivery"]["sent_count"] == 2
        assert detail["email_delivery"]["last_error"] is None
        assert [a["action"] for a in detail["audit"]].count("link.emailed") == 2

    @pytest.mark.parametrize("state", ["paid", "revoked", "expired"])
    async def test_a_link_that_cannot_be_paid_is_not_emailed(
        self, h: AdminHarness, mail_sink: MailSink, state: str
    ) -> None:
        link = await h.issue(valid_for=3600)
        if state == "paid":
            await h.pay_flow(link)
        elif state == "revoked":
            await h.api("POST", f"/links/{link.id}/revoke")
        else:
            h.clock.advance(7200)
        response = await h.api("POST", f"/links/{link.id}/resend")
        assert response.status == 409
        error = (await response.json())["error"]
        assert (error["code"], error["link_status"]) == ("link_not_sendable", state)
        assert mail_sink.messages == []


class TestSmtpDown:
    async def test_failure_is_visible_the_link_stays_and_a_resend_succeeds_later(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str
    ) -> None:
        port = unused_port()  # nothing listens here yet
        h = await start_admin_harness(aiohttp_server, aiohttp_client, database_url, smtp_port=port)
        response = await h.api("POST", "/links", json={**NEW, "send": True})
        assert response.status == 201
        created = await response.json()
        assert created["email"]["sent"] is False and created["email"]["error"]
        detail = await (await h.api("GET", f"/links/{created['id']}")).json()
        assert detail["email_delivery"]["sent_count"] == 0
        assert detail["email_delivery"]["last_error"]
        assert "link.email_failed" in [a["action"] for a in detail["audit"]]
        assert (await h.get(created["token"])).status == 200  # the link itself works

        response = await h.api("POST", f"/links/{created['id']}/resend")
        assert response.status == 502
        assert (await response.json())["error"]["code"] == "email_failed"

        sink = MailSink()
        await sink.start(port=port)
        try:
            response = await h.api("POST", f"/links/{created['id']}/resend")
            assert response.status == 200, await response.text()
            (mail,) = sink.messages
            assert created["url"] in mail.text()
        finally:
            await sink.stop()
        detail = await (await h.api("GET", f"/links/{created['id']}")).json()
        assert detail["email_delivery"]["sent_count"] == 1
        assert detail["email_delivery"]["last_error"] is None
        metrics = await (await h.client.get("/metrics")).text()
        assert 'gateway_emails_total{outcome="failed",purpose="link"} 2.0' in metrics
        assert 'gateway_emails_total{outcome="sent",purpose="link"} 1.0' in metrics


class TestBulkSend:
    async def send(self, h: AdminHarness, **params: str) -> Any:
        response = await h.api(
            "POST",
            "/links/bulk",
            data=TEAM_CSV,
            headers={"Content-Type": "text/csv"},
            params={"send": "1", **params},
        )
        assert response.status in (200, 201), await response.text()
        return await response.json()

    async def test_one_message_per_payer_with_their_own_link_and_never_twice(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        report = await self.send(h)
        assert report["emails_sent"] == 3
        by_ref = {r["ref"]: r for r in report["rows"]}
        for email, ref in (
            ("ana@example.com", "2026-04/p1"),
            ("ben@example.com", "2026-04/p2"),
            ("kim@example.com", "2026-04/p3"),
        ):
            (mail,) = mail_sink.to(email)
            assert link_in(mail.text()) == by_ref[ref]["url"]
        # The same file again: nothing created, nothing sent.
        again = await self.send(h)
        assert (again["created"], again["existing"], again["emails_sent"]) == (0, 3, 0)
        assert len(mail_sink.messages) == 3
        # Unless asked.
        forced = await self.send(h, resend="1")
        assert forced["emails_sent"] == 3
        assert len(mail_sink.messages) == 6
