"""What parents see (issue 11 item 3): a failed bank debit is told on the link and the return
page, and neither promises "nothing more to do" while the bank decides."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.demo_mail import MailSink
from tests.admin.support import AdminHarness, mail_sink, start_admin_harness
from tests.harness import BROWSER_HEADERS, Harness, session_id_from, start_harness

HOUR = 3600
ORG = "Riverside Youth Basketball"
CONTACT = "treasurer@riverside.example"
FAKE_DAY = "15 January 2027"  # FakeClock's start, 1.8e9 seconds after the epoch

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
