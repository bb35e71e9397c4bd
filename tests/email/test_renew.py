"""The expired page's "email me a new link": the old link is revoked, a new one is issued for the
same payment and emailed to the address on file only, and it is rate-limited per link."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Link
from gateway.dev.demo_mail import MailSink
from gateway.web.keys import DATABASE, LINKS
from tests.admin.support import AdminHarness, start_admin_harness
from tests.harness import BROWSER_HEADERS

EMAIL = "parent@example.com"  # the harness's address on file
HOUR = 3600


async def renew(h: AdminHarness, token: str, headers: dict[str, str] | None = None) -> Any:
    return await h.client.post(
        f"/pay/{token}/renew",
        headers=headers or {**BROWSER_HEADERS, "Origin": "null"},
        allow_redirects=False,
    )


async def all_links(h: AdminHarness) -> list[Link]:
    async with h.app[DATABASE].read() as session:
        return list(
            (await session.execute(sa.select(Link).order_by(Link.created_at, Link.id))).scalars()
        )


class TestFreshLink:
    async def test_revokes_the_old_link_and_emails_a_new_one_to_the_address_on_file(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        old = await h.issue(["Spring fee=150.00", "Kit=25.00x2"], valid_for=HOUR)
        h.clock.advance(2 * HOUR)
        page = await h.get(old)
        assert page.status == 410
        html = await page.text()
        assert f'action="/pay/{old.token}/renew"' in html
        assert EMAIL not in html and "parent@" not in html

        response = await renew(h, old.token)
        assert response.status == 200
        body = await response.text()
        assert "Check your inbox" in body and EMAIL not in body

        old_row, new_row = await all_links(h)
        assert old_row.id == old.id and old_row.revoked_at is not None
        assert old_row.revoked_by == "visitor"
        assert new_row.replaces_id == old.id
        assert (new_row.email, new_row.ref, new_row.amount_total) == (EMAIL, old_row.ref, 20000)
        (mail,) = mail_sink.messages
        assert mail.recipients == (EMAIL,)
        assert "new payment link" in mail.subject
        url = h.app[LINKS].url_for(new_row.id, new_row.created_at)[1]
        assert url in mail.text()
        fresh = await h.get(url.rsplit("/", 1)[1])
        assert fresh.status == 200 and "200.00" in await fresh.text()
        assert (await h.get(old)).status == 410  # the old link stays withdrawn

    async def test_nothing_the_visitor_sends_chooses_the_recipient(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        old = await h.issue(valid_for=HOUR)
        h.clock.advance(2 * HOUR)
        response = await h.client.post(
            f"/pay/{old.token}/renew?email=attacker@example.com",
            data={"email": "attacker@example.com", "to": "attacker@example.com"},
            headers=BROWSER_HEADERS,
            allow_redirects=False,
        )
        assert response.status == 200
        assert [m.recipients for m in mail_sink.messages] == [(EMAIL,)]

    async def test_repeated_requests_resend_the_same_new_link_then_are_rate_limited(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        old = await h.issue(valid_for=HOUR)
        h.clock.advance(2 * HOUR)
        statuses = [(await renew(h, old.token)).status for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        links = await all_links(h)
        assert len(links) == 2  # one replacement, sent three times, not three replacements
        assert len(mail_sink.messages) == 3
        assert {m.message["X-Gateway-Link"] for m in mail_sink.messages} == {links[1].id}
        # The window passes: the payer may ask again.
        h.clock.advance(25 * HOUR)
        assert (await renew(h, old.token)).status == 200

    async def test_a_payable_link_is_not_renewed(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue()
        response = await renew(h, link.token)
        assert response.status == 303
        assert response.headers["Location"] == f"/pay/{link.token}"
        assert len(await all_links(h)) == 1 and mail_sink.messages == []

    async def test_a_link_revoked_by_an_admin_or_paid_is_not_renewed(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        revoked = await h.issue(ref="r/1", valid_for=HOUR)
        await h.api("POST", f"/links/{revoked.id}/revoke", json={"reason": "left"})
        paid = await h.issue(ref="r/2", valid_for=HOUR)
        await h.pay_flow(paid)
        h.clock.advance(2 * HOUR)
        for link in (revoked, paid):
            assert (await renew(h, link.token)).status == 303
        assert len(await all_links(h)) == 2 and mail_sink.messages == []

    async def test_scanners_pressing_the_button_change_nothing(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        old = await h.issue(valid_for=HOUR)
        h.clock.advance(2 * HOUR)
        slack = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
        for headers in (slack, {**BROWSER_HEADERS, "Origin": "https://evil.example"}):
            assert (await renew(h, old.token, headers)).status == 403
        assert len(await all_links(h)) == 1 and mail_sink.messages == []
        metrics = await (await h.client.get("/metrics")).text()
        assert 'gateway_link_renewals_total{outcome="forbidden"} 2.0' in metrics

    @pytest.mark.parametrize(
        "token", ["lk_garbage", "lk_abcdefghijkl.AAAA.bbbbbbbbbbbbbbbbbbbbbbbbbbb"]
    )
    async def test_a_forged_token_is_a_404(self, h: AdminHarness, token: str) -> None:
        assert (await renew(h, token)).status == 404

    async def test_smtp_failure_is_reported_and_a_later_request_retries(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        from aiohttp.test_utils import unused_port

        port = unused_port()
        h = await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url, smtp_port=port)
        old = await h.issue(valid_for=HOUR)
        h.clock.advance(2 * HOUR)
        response = await renew(h, old.token)
        assert response.status == 503
        assert "could not send" in await response.text()
        sink = MailSink()
        await sink.start(port=port)
        try:
            assert (await renew(h, old.token)).status == 200
            assert len(sink.messages) == 1
        finally:
            await sink.stop()
        assert len(await all_links(h)) == 2


class TestWithoutEmail:
    async def test_the_expired_page_offers_no_form_and_the_post_changes_nothing(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url)
        old = await h.issue(valid_for=HOUR)
        h.clock.advance(2 * HOUR)
        html = await (await h.get(old)).text()
        assert "/renew" not in html and "ask" in html
        assert (await renew(h, old.token)).status == 303
        assert len(await all_links(h)) == 1


class TestLocaleKept:
    @pytest.mark.parametrize("locale", ["pt-BR", None])
    async def test_each_fresh_link_keeps_the_locale_the_first_was_issued_with(
        self, h: AdminHarness, mail_sink: MailSink, locale: str | None
    ) -> None:
        body = {"email": EMAIL, "name": "Sam Rivera", "ref": "2026-04/p1", "items": ["Fee=150"]}
        response = await h.api("POST", "/links", json={**body, "valid_for": "1h", "locale": locale})
        assert response.status == 201, await response.text()
        token = (await response.json())["token"]
        for generation in (2, 3):  # a renewed link that expires in turn is renewed again
            h.clock.advance(2 * HOUR)
            assert (await renew(h, token)).status == 200
            links = await all_links(h)
            assert len(links) == generation
            newest = links[-1]
            assert newest.replaces_id == links[-2].id
            assert [link.locale for link in links] == [locale] * generation
            token = h.app[LINKS].url_for(newest.id, newest.created_at)[0]
        detail = await (await h.api("GET", f"/links/{newest.id}")).json()
        assert detail["locale"] == locale
