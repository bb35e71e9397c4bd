"""Messages to payers besides the receipt (issue 14 item 2), on SQLite and PostgreSQL, with the
Stripe emulator over HTTP and a real SMTP sink: a bank payment that failed (nothing taken, the
link to try again), a payment made twice (when flagged, and when refunded, with the amount and
how long it takes), and refunds made in Stripe's dashboard, one message each. And what every
payer message keeps: a text part saying all the HTML part says, under 100 KB, safe headers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.adapters.db.models import Link
from gateway.dev.demo_mail import MailSink
from gateway.domain.outbox import Kind, State
from gateway.i18n import translate
from gateway.services.email import MAX_MESSAGE_BYTES
from gateway.web.keys import DATABASE, OPENS
from tests.admin.support import AdminHarness, mail_sink
from tests.email.test_language import HTML_ONLY, html_text_nodes
from tests.harness import session_id_from
from tests.outbox.support_payer import (
    PAYER,
    mails,
    payer_harness,
    payload,
    reconcile,
    rows,
    send_due,
    spaced,
)

__all__ = ["mail_sink"]

REFUND_DAYS = "Refunds usually reach your account within 5–10 business days"


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
) -> AdminHarness:
    return await payer_harness(aiohttp_server, aiohttp_client, database_url, mail_sink)


async def pay_later(h: AdminHarness, link: Any) -> str:
    """Press Pay and pay by a method that settles days later (a bank debit)."""
    session_id = session_id_from((await h.post(link)).headers["Location"])
    h.emulator.pay(session_id, outcome="async")
    await h.emulator.deliver_webhooks()
    return session_id


async def pay_twice(h: AdminHarness, link: Any) -> tuple[str, str]:
    """The first attempt's session paid in another tab after a second attempt was paid: the
    second payment recorded is the duplicate. Returns (duplicate session, first paid)."""
    old = session_id_from((await h.post(link)).headers["Location"])
    h.clock.advance(31 * 60)
    new = session_id_from((await h.post(link)).headers["Location"])
    h.emulator.pay(new)
    await h.emulator.deliver_webhooks()
    h.emulator.sessions[old]["status"] = "open"  # as a race would leave it
    h.emulator.pay(old)
    await h.emulator.deliver_webhooks()
    return old, new


class TestBankPaymentFailed:
    async def test_nothing_was_taken_and_here_is_the_link_again(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue(("Spring fee=150.00",))
        session_id = await pay_later(h, link)
        assert await rows(h) == []  # processing: nothing to say yet
        h.emulator.settle_async(session_id, succeed=False)
        await h.emulator.deliver_webhooks()
        await reconcile(h)
        (row,) = await rows(h)
        (order,) = await h.orders(link)
        assert (row.kind, row.subject, order.status) == (Kind.PAYMENT_FAILED, order.id, "failed")
        await send_due(h)
        (mail,) = mails(mail_sink)
        text = spaced(mail.text())
        assert (
            "Your bank payment of $150.00 for Spring season did not go through, so nothing was "
            "taken from your account." in text
        )
        assert link.url in text and link.url in mail.html()
        assert "Reference: 2026-04/p1" in text
        assert "did not go through" in mail.subject
        assert mail.message["Reply-To"] == "treasurer@riverside.example"
        # The link it brings can be paid: the payer lands on the confirm page.
        assert (await h.get(link)).status == 200

    async def test_a_link_paid_since_gets_no_message(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue()
        session_id = await pay_later(h, link)
        h.emulator.settle_async(session_id, succeed=False)
        await h.emulator.deliver_webhooks()
        await h.pay_flow(link)  # paid by card before the message went
        deliveries = await send_due(h)
        assert sorted((d.kind, d.outcome) for d in deliveries) == [
            ("payment_failed", "skipped"),
            ("receipt", "sent"),
        ]
        (mail,) = mails(mail_sink)
        assert "receipt" in mail.subject

    async def test_an_expired_link_says_who_to_ask_instead(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue(valid_for=2 * 86400)
        session_id = await pay_later(h, link)
        h.clock.advance(3 * 86400)  # the bank answers after the link's end
        h.emulator.settle_async(session_id, succeed=False)
        await h.emulator.deliver_webhooks()
        await send_due(h)
        (mail,) = mails(mail_sink)
        text = spaced(mail.text())
        assert "/pay/" not in text
        assert (
            "This payment link can no longer be used: please ask Riverside Youth Basketball "
            "for a new one." in text
        )

    async def test_a_successful_bank_payment_gets_a_receipt_only(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue()
        session_id = await pay_later(h, link)
        h.emulator.settle_async(session_id, succeed=True)
        await h.emulator.deliver_webhooks()
        await send_due(h)
        assert [r.kind for r in await rows(h)] == [Kind.RECEIPT]
        assert len(mails(mail_sink)) == 1


class TestPaidTwice:
    async def test_flagged_then_refunded_by_the_gateway_one_message_each(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
    ) -> None:
        h = await payer_harness(
            aiohttp_server, aiohttp_client, database_url, mail_sink, refund_duplicates=True
        )
        link = await h.issue(("Spring fee=150.00",))
        old, new = await pay_twice(h, link)
        # The refund's own webhook, delivered more than once, and two reconciles add nothing.
        await h.emulator.deliver_webhooks()
        refunded_events = [e for e in h.emulator.events if e["type"] == "charge.refunded"]
        for event in refunded_events * 2:
            h.emulator.webhooks.enqueue(event)
        await h.emulator.deliver_webhooks()
        await reconcile(h)
        await reconcile(h)
        orders = {o.stripe_session_id: o for o in await h.orders(link)}
        duplicate = orders[old]
        assert duplicate.status == "refunded"
        kinds = sorted((r.kind, r.order_id) for r in await rows(h))
        assert kinds == sorted(
            [
                (Kind.RECEIPT, orders[new].id),
                (Kind.PAID_TWICE, duplicate.id),
                (Kind.REFUNDED, duplicate.id),
            ]
        )
        (flagged,) = await rows(h, Kind.PAID_TWICE)
        assert payload(flagged)["refund"] is True
        (refunded,) = await rows(h, Kind.REFUNDED)
        assert payload(refunded) == {"amount": 15000, "duplicate": True, "refunded_total": 15000}
        await send_due(h)
        assert all(r.state == State.SENT for r in await rows(h))
        by_subject = {m.subject: spaced(m.text()) for m in mails(mail_sink)}
        assert len(by_subject) == 3
        twice = by_subject["Riverside Youth Basketball: you paid twice, Spring season"]
        assert "You paid for Spring season twice: a second payment of $150.00" in twice
        assert "will be refunded to you automatically" in twice
        intent = h.emulator.sessions[old]["payment_intent"]
        assert f"Payment reference: {intent[-8:]}" in twice
        back = by_subject["Riverside Youth Basketball: refund of $150.00, Spring season"]
        assert "Your second payment for Spring season has been refunded: $150.00." in back
        assert REFUND_DAYS in back

    async def test_without_automatic_refunds_the_organisation_refunds_it(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue()
        old, _ = await pay_twice(h, link)
        await reconcile(h)
        assert sorted(r.kind for r in await rows(h)) == [Kind.PAID_TWICE, Kind.RECEIPT]
        await send_due(h)
        twice = next(m for m in mails(mail_sink) if "paid twice" in m.subject)
        text = spaced(twice.text())
        assert (
            "Riverside Youth Basketball will refund the second payment to you; there is "
            "nothing you need to do." in text
        )
        # The treasurer refunds it in the dashboard: the payer hears of it.
        intent = h.emulator.sessions[old]["payment_intent"]
        h.emulator.refund_from_dashboard(intent)
        await h.emulator.deliver_webhooks()
        await send_due(h)
        back = next(m for m in mails(mail_sink) if "refund of" in m.subject)
        assert "Your second payment for Spring season has been refunded: $150.00." in spaced(
            back.text()
        )
        assert len(mails(mail_sink)) == 3


class TestRefunds:
    async def test_each_refund_is_one_message_with_its_own_amount(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue(("Spring fee=150.00",), locale="es")
        session_id = await h.pay_flow(link)
        intent = h.emulator.sessions[session_id]["payment_intent"]
        h.emulator.refund_from_dashboard(intent, amount=5000)
        await h.emulator.deliver_webhooks()
        h.clock.advance(60)
        h.emulator.refund_from_dashboard(intent)  # the rest
        await h.emulator.deliver_webhooks()
        await reconcile(h)
        refunds = await rows(h, Kind.REFUNDED)
        assert [payload(r)["amount"] for r in refunds] == [5000, 10000]
        await send_due(h)
        texts = [spaced(m.text()) for m in mails(mail_sink) if m.recipients == (PAYER,)]
        # In the link's language (Spanish), sentence by sentence from its catalog.
        days = translate("es", REFUND_DAYS + ", depending on your bank.")
        refund_texts = [t for t in texts if days in t]
        assert len(refund_texts) == 2

        def refund_of(amount: str) -> str:
            sentence = "A refund of %(amount)s has been made for your payment for %(description)s."
            return translate("es", sentence) % {"amount": amount, "description": "Spring season"}

        # (Sent in any order: a claim returns its rows unordered.)
        assert sorted(refund_of("50,00\xa0US$") in t for t in refund_texts) == [False, True]
        assert sorted(refund_of("100,00\xa0US$") in t for t in refund_texts) == [False, True]
        assert all(m.message["Content-Language"] == "es" for m in mails(mail_sink))


class TestEveryPayerMessage:
    async def test_the_text_part_says_everything_the_html_part_says(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
    ) -> None:
        h = await payer_harness(
            aiohttp_server, aiohttp_client, database_url, mail_sink, refund_duplicates=True
        )
        twice = await h.issue(("Spring fee=150.00", "Jersey=25.00x2"))
        h.app[OPENS].problem_seen(twice.id)  # its receipt says the payment went through
        await h.flush_opens()
        await pay_twice(h, twice)  # a receipt, paid twice, refunded
        failed = await h.issue(ref="2026-04/p2")
        h.emulator.settle_async(await pay_later(h, failed), succeed=False)
        await h.emulator.deliver_webhooks()
        await send_due(h)
        kinds = sorted(r.kind for r in await rows(h))
        assert kinds == ["paid_twice", "payment_failed", "receipt", "refunded"]
        assert len(mail_sink.messages) == 4
        for mail in mail_sink.messages:
            text = " ".join(re.split(r"[^\S\u00a0\u202f]+", mail.text().strip()))
            nodes = html_text_nodes(mail.html())
            assert len(nodes) > 4  # the check below reads real content
            missing = [node for node in nodes if node not in text and node != HTML_ONLY]
            assert missing == [], mail.subject

    async def test_items_in_a_wide_script_are_shortened_to_fit(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        wide = "🏀" * 497
        items = [f"{wide}{n:02d}=15.00x3" for n in range(20)]
        link = await h.issue(items, name="⚽" * 200)
        await h.pay_flow(link)
        await send_due(h)
        (mail,) = mails(mail_sink)
        assert len(mail.message.as_bytes()) < MAX_MESSAGE_BYTES
        assert mail.text().count("🏀…") == 20 and mail.html().count("🏀…") == 20
        assert "Total: $900.00" in mail.text()

    async def test_a_stored_name_with_a_line_break_builds_one_safe_message(
        self, h: AdminHarness, mail_sink: MailSink
    ) -> None:
        link = await h.issue()
        await h.pay_flow(link)
        # A name stored before control characters were refused on create.
        async with h.app[DATABASE].write() as session:
            row = await session.get(Link, link.id)
            assert row is not None
            row.name = "Sam\r\nBcc: everyone@example.com"
        await send_due(h)
        (mail,) = mails(mail_sink)
        assert mail.recipients == (PAYER,)
        assert mail.message["Bcc"] is None
        assert "Sam Bcc: everyone@example.com" in str(mail.message["To"])
