"""Receipts (issue 14 items 2 and 5), on SQLite and PostgreSQL, with the Stripe emulator over
HTTP and a real SMTP sink: exactly one receipt however often and by whichever path a payment is
recorded; what the receipt says, in the link's language; "your payment went through" when the
payer may think it failed (recorded by the reconciler, or after an error or expired page); none
when receipts are off; and a receipt that cannot be built is kept, failed, and can be retried.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.mail import SmtpMailer
from gateway.dev.demo_mail import MailSink
from gateway.domain.outbox import Kind, State
from gateway.i18n import Formats
from gateway.resources import resource_dir
from gateway.services.email import email_environments
from gateway.services.messages.payer import PayerMail
from gateway.services.messages.receipts import ReceiptComposer
from gateway.services.outbox import Outbox
from gateway.web.keys import CLOCK, DATABASE, OPENS, OUTBOX, SETTINGS
from tests.admin.support import AdminHarness, mail_sink
from tests.harness import BROWSER_HEADERS, IPHONE_SAFARI, session_id_from
from tests.outbox.support_payer import (
    PAYER,
    link_row,
    mails,
    payer_harness,
    payload,
    reconcile,
    rows,
    send_due,
    spaced,
)

__all__ = ["mail_sink"]

ZONE = "America/Sao_Paulo"
ITEMS = ("Spring fee=150.00", "Jersey=25.00", "Socks=5.00")


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
) -> AdminHarness:
    return await payer_harness(
        aiohttp_server, aiohttp_client, database_url, mail_sink, timezone=ZONE
    )


def completed_event(h: AdminHarness, session_id: str) -> dict[str, Any]:
    return next(
        e
        for e in h.emulator.events
        if e["type"] == "checkout.session.completed" and e["data"]["object"]["id"] == session_id
    )


class TestExactlyOnce:
    async def test_webhook_three_times_return_page_and_reconcile_make_one_receipt(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue(ITEMS)
        session_id = session_id_from((await h.post(link)).headers["Location"])
        h.emulator.pay(session_id)
        # The payer is back before any webhook: the return page records the payment.
        returned = await h.client.get(
            f"/pay/{link.token}/return?session_id={session_id}", headers=BROWSER_HEADERS
        )
        assert returned.status == 200
        assert [d.outcome for d in await send_due(h)] == ["sent"]
        event = completed_event(h, session_id)
        for _ in range(2):  # the queued delivery, then the same event twice more
            await h.emulator.deliver_webhooks()
            h.emulator.webhooks.enqueue(event)
            await send_due(h)
        await h.emulator.deliver_webhooks()
        await reconcile(h)
        await send_due(h)
        receipts = await rows(h, Kind.RECEIPT)
        assert len(receipts) == 1
        (order,) = await h.orders(link)
        assert (receipts[0].subject, receipts[0].state) == (order.id, State.SENT)
        assert len(mails(mail_sink)) == 1
        assert sum(1 for a in h.emulator.webhooks.attempts if a.status == 200) >= 3

    async def test_webhook_first_then_the_return_page_and_a_reconcile(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue(ITEMS)
        session_id = await h.pay_flow(link)  # the webhook records it
        h.emulator.webhooks.enqueue(completed_event(h, session_id))
        h.emulator.webhooks.enqueue(completed_event(h, session_id))
        await h.emulator.deliver_webhooks()
        await h.client.get(
            f"/pay/{link.token}/return?session_id={session_id}", headers=BROWSER_HEADERS
        )
        await reconcile(h)
        await send_due(h)
        await send_due(h)
        (receipt,) = await rows(h, Kind.RECEIPT)
        assert payload(receipt) == {"recovered": False, "recorded_by": "webhook"}
        assert len(mails(mail_sink)) == 1


class TestWhatTheReceiptSays:
    async def test_items_total_paid_time_with_zone_and_references(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue((*ITEMS, "Bag=12.50"), name="Sam <Rivera>")
        session_id = await h.pay_flow(link)
        await send_due(h)
        (mail,) = mails(mail_sink)
        (order,) = await h.orders(link)
        intent = h.emulator.sessions[session_id]["payment_intent"]
        paid = Formats("en", ZONE).datetime(order.paid_at)
        assert "Brasilia" in paid  # the organisation's zone, named
        text = spaced(mail.text())
        for expected in (
            "Hello Sam <Rivera>,",
            "Riverside Youth Basketball has received your payment for: Spring season.",
            "- Spring fee: $150.00",
            "- Jersey: $25.00",
            "- Socks: $5.00",
            "- Bag: $12.50",
            "Total: $192.50",
            f"Paid on {paid}",
            "Reference: 2026-04/p1",
            f"Payment reference: {intent[-8:]}",
            "treasurer@riverside.example",
        ):
            assert expected in text, expected
        assert "went through" not in text  # nothing went wrong
        html = mail.html()
        assert '<html lang="en">' in html and "Sam &lt;Rivera&gt;" in html
        assert "$192.50" in html and intent[-8:] in html
        assert mail.message["Content-Language"] == "en"
        assert mail.message["Reply-To"] == "treasurer@riverside.example"
        assert mail.message["X-Gateway-Link"] == link.id
        assert mail.subject == "Riverside Youth Basketball: receipt, Spring season"
        (row,) = await rows(h, Kind.RECEIPT)
        assert mail.message["Message-ID"] == row.message_id
        assert mail.recipients == (PAYER,)

    @pytest.mark.parametrize(
        ("locale", "total"),
        [("pt-BR", "US$\xa0180,00"), ("es", "180,00\xa0US$")],
    )
    async def test_in_the_links_language(
        self, h: AdminHarness, mail_sink: MailSink, locale: str, total: str
    ) -> None:
        link = await h.issue(ITEMS, locale=locale)
        await h.pay_flow(link)
        await send_due(h)
        (mail,) = mails(mail_sink)
        (order,) = await h.orders(link)
        assert mail.message["Content-Language"] == locale
        assert f'<html lang="{locale}">' in mail.html()
        text = mail.text()
        assert total in text and total in mail.html()
        assert Formats(locale, ZONE).datetime(order.paid_at) in text
        (row,) = await rows(h, Kind.RECEIPT)
        assert row.locale == locale


class TestAfterAProblem:
    async def test_a_payment_the_reconciler_found_says_it_went_through(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue()
        h.emulator.faults.update({"lose_next_webhooks": 100})
        await h.pay_flow(link)
        assert await rows(h, Kind.RECEIPT) == []
        await reconcile(h)
        (row,) = await rows(h, Kind.RECEIPT)
        assert payload(row)["recovered"] is True
        await send_due(h)
        (mail,) = mails(mail_sink)
        assert "Good news: your payment went through." in spaced(mail.text())
        assert "your payment went through" in mail.subject
        assert "Good news: your payment went through." in spaced(mail.html())

    async def test_a_payment_on_an_attempt_already_given_up_says_it_went_through(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue()
        old = session_id_from((await h.post(link)).headers["Location"])
        h.clock.advance(31 * 60)
        await h.post(link)  # the stale attempt is canceled and replaced
        h.emulator.sessions[old]["status"] = "open"  # paid in another tab just before that
        h.emulator.pay(old)
        await h.emulator.deliver_webhooks()  # recorded by the webhook, on a canceled order
        (row,) = await rows(h, Kind.RECEIPT)
        assert payload(row) == {"recovered": True, "recorded_by": "webhook"}
        await send_due(h)
        (mail,) = mails(mail_sink)
        assert "Good news: your payment went through." in spaced(mail.text())

    async def test_a_payment_after_the_payer_saw_the_error_page_says_it_went_through(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue()
        h.emulator.faults.update({"drop_next": 1})
        assert (await h.post(link)).status == 503  # Stripe unreachable: the error page
        # Tallied in memory, not written by the request...
        assert (await link_row(h, link.id)).problem_seen_at is None
        await h.flush_opens()  # ...but by the flush, as open counts are.
        seen = (await link_row(h, link.id)).problem_seen_at
        assert seen is not None and seen.timestamp() == h.clock.now()
        h.clock.advance(60)
        await h.pay_flow(link)  # the same order, resumed, paid through the webhook
        await send_due(h)
        (row,) = await rows(h, Kind.RECEIPT)
        assert payload(row)["recovered"] is False  # the wording comes from problem_seen_at
        (mail,) = mails(mail_sink)
        assert "Good news: your payment went through." in spaced(mail.text())

    async def test_an_error_page_before_this_order_was_made_changes_nothing(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue()
        h.app[OPENS].problem_seen(link.id)  # an error page on an earlier visit
        await h.flush_opens()
        h.clock.advance(60)
        await h.pay_flow(link)
        await send_due(h)
        (mail,) = mails(mail_sink)
        assert "went through" not in mail.text()

    async def test_the_expired_page_is_noted_for_people_not_for_bots(self, h: AdminHarness) -> None:
        link = await h.issue(valid_for=3600)
        h.clock.advance(2 * 3600)
        bot = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
        assert (await h.get(link, headers=bot)).status in (200, 410)
        await h.flush_opens()
        assert (await link_row(h, link.id)).problem_seen_at is None
        page = await h.get(link, headers={"User-Agent": IPHONE_SAFARI})
        assert page.status == 410
        await h.flush_opens()
        assert (await link_row(h, link.id)).problem_seen_at is not None


class TestReceiptsOff:
    async def test_no_receipt_rows_but_other_messages_still_go(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
    ) -> None:
        h = await payer_harness(
            aiohttp_server, aiohttp_client, database_url, mail_sink, email={"receipts": False}
        )
        link = await h.issue()
        session_id = await h.pay_flow(link)
        await reconcile(h)
        assert await rows(h, Kind.RECEIPT) == []
        intent = h.emulator.sessions[session_id]["payment_intent"]
        h.emulator.refund_from_dashboard(intent, amount=5000)
        await h.emulator.deliver_webhooks()
        assert [r.kind for r in await rows(h)] == [Kind.REFUNDED]
        await send_due(h)
        (mail,) = mails(mail_sink)
        assert "refund" in mail.subject.lower()

    async def test_start_up_says_stripe_sends_none_in_test_mode(
        self,
        aiohttp_server: Any,
        aiohttp_client: Any,
        database_url: str,
        mail_sink: MailSink,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        await payer_harness(
            aiohttp_server, aiohttp_client, database_url, mail_sink, email={"receipts": False}
        )
        assert any("Stripe sends no receipts in test mode" in r.message for r in caplog.records)

    async def test_no_note_when_receipts_are_on(
        self,
        aiohttp_server: Any,
        aiohttp_client: Any,
        database_url: str,
        mail_sink: MailSink,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        await payer_harness(aiohttp_server, aiohttp_client, database_url, mail_sink)
        assert not any("Stripe sends no receipts" in r.message for r in caplog.records)


class TestUnbuildable:
    async def test_an_unknown_template_variable_fails_the_row_and_keeps_it(
        self, h: AdminHarness, mail_sink: MailSink, tmp_path: Path
    ) -> None:
        templates = tmp_path / "templates"
        shutil.copytree(resource_dir("templates"), templates)
        receipt = templates / "email" / "receipt.txt"
        text = receipt.read_text().replace("{% endblock %}", "{{ no_such_value }}{% endblock %}")
        receipt.write_text(text)
        settings = h.app[SETTINGS]
        db = h.app[DATABASE]
        broken = Outbox(
            db,
            h.app[CLOCK],
            mailer=SmtpMailer(settings.email),
            composers={
                Kind.RECEIPT: ReceiptComposer(
                    PayerMail(
                        db,
                        settings,
                        h.app[CLOCK],
                        email_environments(str(templates), settings.checkout.timezone),
                    )
                )
            },
            domain="riverside.example",
        )
        link = await h.issue()
        await h.pay_flow(link)
        (delivery,) = (await broken.send_due()).deliveries
        assert delivery.outcome == "failed"
        (row,) = await rows(h, Kind.RECEIPT)
        assert row.state == State.FAILED
        assert row.last_error is not None and "no_such_value" in row.last_error
        assert mails(mail_sink) == []
        # Kept, so a person can send it again once the template is fixed.
        await h.app[OUTBOX].retry(row.id)
        assert [d.outcome for d in await send_due(h)] == ["sent"]
        assert len(mails(mail_sink)) == 1
