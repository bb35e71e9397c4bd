"""What parents see (issue 11 items 3 and 4): a failed bank debit is told on the link and the
return page, and a link replaced by "Email me a new link" says when the new one was emailed and
offers to send it again."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.dev.demo_mail import MailSink
from tests.admin.support import AdminHarness, mail_sink, start_admin_harness
from tests.harness import BROWSER_HEADERS, Harness, session_id_from, start_harness

HOUR = 3600
ORG = "Riverside Youth Basketball"
CONTACT = "treasurer@riverside.example"
FAKE_DAY = "January 15, 2027"  # FakeClock's start, 1.8e9 seconds after the epoch

__all__ = ["mail_sink"]  # the SMTP sink fixture


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, sqlite_url)


@pytest.fixture
async def mailing(
    aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str, mail_sink: MailSink
) -> AdminHarness:
    return await start_admin_harness(
        aiohttp_server, aiohttp_client, sqlite_url, smtp_port=mail_sink.port
    )


async def text_of(response: Any) -> str:
    return re.sub(r"\s+", " ", await response.text())


# --- item 3: a failed delayed payment -----------------------------------------------------------


class TestFailedBankDebit:
    async def start_bank_debit(self, h: Harness) -> tuple[Any, str]:
        link = await h.issue()
        session_id = session_id_from((await h.post(link)).headers["Location"])
        h.emulator.pay(session_id, outcome="async")
        await h.emulator.deliver_webhooks()
        return link, session_id

    async def test_the_return_page_does_not_promise_nothing_more_to_do(self, h: Harness) -> None:
        link, session_id = await self.start_bank_debit(h)
        page = await h.client.get(
            f"/pay/{link.token}/return?session_id={session_id}", headers=BROWSER_HEADERS
        )
        body = await text_of(page)
        assert "payment processing" in body
        assert "nothing more to do" not in body.lower()
        assert "few working days" in body and "nothing is taken" in body
        # Nor does the link's own page while the bank decides.
        held = await text_of(await h.get(link))
        assert "nothing more to do" not in held.lower() and "nothing is taken" in held

    async def test_the_link_tells_the_parent_the_debit_failed_and_nothing_was_taken(
        self, h: Harness
    ) -> None:
        link, session_id = await self.start_bank_debit(h)
        before = await text_of(await h.get(link))
        assert "did not go through" not in before
        h.emulator.settle_async(session_id, succeed=False)
        await h.emulator.deliver_webhooks()

        page = await h.get(link)
        assert page.status == 200
        body = await text_of(page)
        assert "Your last payment did not go through." in body
        assert f"started on {FAKE_DAY}" in body and "nothing was taken" in body
        assert f'action="/pay/{link.token}"' in body  # and it can be paid again
        returned = await text_of(
            await h.client.get(
                f"/pay/{link.token}/return?session_id={session_id}", headers=BROWSER_HEADERS
            )
        )
        assert "Your payment did not go through" in returned and "nothing was taken" in returned
        assert f'href="/pay/{link.token}">Pay again' in returned

        # A new session opened and left is no payment: the notice stays until one succeeds.
        await h.post(link)
        assert "did not go through" in await text_of(await h.get(link))
        await h.pay_flow(link)
        paid = await text_of(await h.get(link))
        assert "Already paid" in paid and "did not go through" not in paid


# --- item 4: the old link after "Email me a new link" ----------------------------------------


class TestRenewedLink:
    async def renewed(self, h: AdminHarness) -> Any:
        old = await h.issue(valid_for=HOUR)
        h.clock.advance(2 * HOUR)
        renewed = await h.client.post(
            f"/pay/{old.token}/renew", headers={**BROWSER_HEADERS, "Origin": "null"}
        )
        assert renewed.status == 200
        return old

    async def test_says_a_new_link_was_emailed_on_that_date_and_offers_it_again(
        self, mailing: AdminHarness, mail_sink: MailSink
    ) -> None:
        old = await self.renewed(mailing)
        page = await mailing.get(old)
        assert page.status == 410
        body = await text_of(page)
        assert "A new link was emailed to you" in body
        assert f"replaced on {FAKE_DAY}" in body
        assert "withdrawn" not in body and "contact them" not in body
        assert f'action="/pay/{old.token}/renew"' in body
        assert f'href="mailto:{CONTACT}"' in body  # the footer: who to ask

        again = await mailing.client.post(
            f"/pay/{old.token}/renew", headers={**BROWSER_HEADERS, "Origin": "null"}
        )
        assert again.status == 200 and "Check your inbox" in await again.text()
        assert len(mail_sink.messages) == 2
        # The renewal rate limit (3 a day per link) still applies.
        third = await mailing.client.post(
            f"/pay/{old.token}/renew", headers={**BROWSER_HEADERS, "Origin": "null"}
        )
        fourth = await mailing.client.post(
            f"/pay/{old.token}/renew", headers={**BROWSER_HEADERS, "Origin": "null"}
        )
        assert (third.status, fourth.status) == (200, 429)
        assert len(mail_sink.messages) == 3
        new_urls = {re.search(r"/pay/\S+", m.text())[0] for m in mail_sink.messages}  # type: ignore[index]
        assert len(new_urls) == 1  # the same new link, sent again

    async def test_once_the_new_link_is_paid_the_old_one_says_so(
        self, mailing: AdminHarness, mail_sink: MailSink
    ) -> None:
        old = await self.renewed(mailing)
        (mail,) = mail_sink.messages
        found = re.search(r"/pay/([A-Za-z0-9._-]+)", mail.text())
        assert found
        new_token = found[1]
        pressed = await mailing.post(new_token)
        assert pressed.status == 303
        mailing.emulator.pay(session_id_from(pressed.headers["Location"]))
        await mailing.emulator.deliver_webhooks()

        body = await text_of(await mailing.get(old))
        assert "A new link was emailed to you" in body and "has been paid" in body
        assert "/renew" not in body  # nothing to send again

    async def test_a_link_withdrawn_by_the_organisation_still_says_withdrawn(
        self, mailing: AdminHarness
    ) -> None:
        link = await mailing.issue()
        revoked = await mailing.api("POST", f"/links/{link.id}/revoke", json={})
        assert revoked.status == 200
        body = await text_of(await mailing.get(link))
        assert "This link was withdrawn" in body and "new link" not in body
        assert f"please contact {ORG}." in body and f'href="mailto:{CONTACT}"' in body
