"""The link timeline (issue 15 item 8), on SQLite and PostgreSQL, from a real history: a link
issued, emailed over real SMTP, previewed by a bot, opened, paid through the Stripe emulator
over HTTP, refunded from Stripe's dashboard, disputed, revoked, and renewed; then a link with
thousands of audit rows and bot previews, whose timeline stays bounded and says how much it
left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, LinkPreview
from gateway.dev.demo_mail import MailSink
from gateway.domain.errors import NotFound
from gateway.domain.locales import OFFERED
from gateway.i18n import localize
from gateway.services import link_timeline
from gateway.services.link_timeline import Entry, EntryKind, Timeline
from gateway.web.keys import ADMIN, CLOCK, DATABASE, LINKS, REMINDERS, TIMELINE
from tests.admin.support import AdminHarness, mail_sink, start_admin_harness
from tests.harness import BROWSER_HEADERS, session_id_from

__all__ = ["mail_sink"]

WHATSAPP = {"User-Agent": "WhatsApp/2.23.20.0 A", "Accept-Language": "en"}
TREASURER = "admin:jane@riverside.example"


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
) -> AdminHarness:
    return await start_admin_harness(
        aiohttp_server, aiohttp_client, database_url, smtp_port=mail_sink.port
    )


def kinds(timeline: Timeline) -> list[str]:
    return [e.kind.value for e in timeline.entries]


def texts(timeline: Timeline, locale: str = "en") -> list[str]:
    return [localize(locale, e.text) for e in timeline.entries]


def one(timeline: Timeline, kind: EntryKind, contains: str = "") -> Entry:
    found = [e for e in timeline.entries if e.kind is kind and contains in e.text]
    assert len(found) == 1, (kind, contains, [(e.kind, str(e.text)) for e in timeline.entries])
    return found[0]


def now(h: AdminHarness) -> datetime:
    return datetime.fromtimestamp(h.app[CLOCK].now(), UTC)


async def test_a_whole_history_in_order_with_who_did_what(
    h: AdminHarness, mail_sink: MailSink
) -> None:
    link = await h.issue(("Spring fee=150.00", "Jersey=25.00"))
    timeline = h.app[TIMELINE]
    fresh = await timeline.for_link(link.id)
    assert fresh.total == "175.00 USD"
    assert [i["description"] for i in fresh.items] == ["Spring fee", "Jersey"]
    assert (fresh.state, fresh.status) == ("payable", "issued")
    assert fresh.url.endswith(f"/pay/{link.token}")
    assert kinds(fresh) == ["created"]
    assert fresh.entries[0].actor == "test"
    assert fresh.omitted == 0 and fresh.more is None

    # Emailed by a treasurer, over real SMTP.
    h.clock.advance(60)
    sent = await h.app[ADMIN].resend(link.id, actor=TREASURER)
    assert sent.ok, sent
    assert len(mail_sink.to("parent@example.com")) == 1
    # A bot fetches a preview twice; the payer opens the page.
    h.clock.advance(60)
    for _ in range(2):
        assert (await h.get(link, headers=WHATSAPP)).status == 200
    h.clock.advance(60)
    assert (await h.get(link)).status == 200
    await h.flush_opens()
    # A treasurer pauses the reminders; the payer stops them.
    h.clock.advance(60)
    assert await h.app[REMINDERS].set_paused(link.id, True, actor=TREASURER)
    h.clock.advance(60)
    assert await h.app[REMINDERS].stop(link.id)
    # Pays through the emulator; then Stripe's dashboard refunds part of it, and a dispute.
    h.clock.advance(60)
    response = await h.post(link)
    session_id = session_id_from(response.headers["Location"])
    h.emulator.pay(session_id)
    h.clock.advance(60)
    await h.emulator.deliver_webhooks()
    (order,) = await h.orders(link)
    assert order.status == "paid" and order.payment_intent_id
    h.clock.advance(60)
    h.emulator.refund_from_dashboard(order.payment_intent_id, 5000)
    await h.emulator.deliver_webhooks()
    h.clock.advance(60)
    h.emulator.dispute(order.payment_intent_id)
    await h.emulator.deliver_webhooks()
    h.clock.advance(60)
    assert await h.app[LINKS].revoke(link.id, actor=TREASURER, reason="Family moved away")

    got = await timeline.for_link(link.id)
    assert got.state == "paid"  # a payment outranks the revocation
    at = [e.at for e in got.entries]
    assert at == sorted(at), "chronological"
    ks = kinds(got)
    assert ks[0] == "created" and ks[-1] == "revoked"
    for kind in ("email", "preview", "opened", "checkout", "payment", "refund", "dispute"):
        assert kind in ks, (kind, ks)
    # The email: the outbox row, with the treasurer who asked (the audit row not said twice).
    emailed = one(got, EntryKind.EMAIL, "Payment link")
    assert localize("en", emailed.text) == "Payment link emailed"
    assert emailed.actor == TREASURER and emailed.account == "jane@riverside.example"
    # The preview, by bot, twice; the open.
    preview = one(got, EntryKind.PREVIEW)
    assert localize("en", preview.text) == "Link preview fetched by WhatsApp, 2 times in all"
    assert preview.until is not None and preview.until == preview.at
    opened = one(got, EntryKind.OPENED)
    assert str(opened.text) == "Opened by the payer" and opened.at < preview.at + timedelta(
        seconds=61
    )
    # The checkout attempt carries its Stripe session and the order's status now.
    attempt = one(got, EntryKind.CHECKOUT, "Checkout attempt started")
    assert attempt.session_id == session_id and attempt.order_id == order.id
    assert str(attempt.text) == "Checkout attempt started (now: paid)"
    assert attempt.who is not None and str(attempt.who) == "the payer"
    paid = one(got, EntryKind.PAYMENT)
    assert str(paid.text) == "Payment received" and paid.session_id == session_id
    assert paid.detail is None  # "session cs_...": the reference says it already
    refund = one(got, EntryKind.REFUND)
    assert str(refund.text) == "Part of the payment refunded: 50.00 USD of 175.00 USD in all"
    assert refund.order_id == order.id
    one(got, EntryKind.DISPUTE)
    paused = one(got, EntryKind.REMINDERS, "paused")
    assert str(paused.text) == "Reminders paused" and paused.account == "jane@riverside.example"
    stopped = one(got, EntryKind.REMINDERS, "stopped")
    assert stopped.who is not None and str(stopped.who) == "the payer"
    assert paused.at < stopped.at < paid.at
    revoked = one(got, EntryKind.REVOKED)
    assert str(revoked.text) == "Link revoked: Family moved away"
    assert revoked.actor == TREASURER
    # Nothing said twice: one entry for the creation and the revocation.
    assert ks.count("created") == 1 and ks.count("revoked") == 1
    # The receipt owed for the payment, and the refund notice, are in it too.
    assert any("Receipt" in t for t in texts(got))
    # Every sentence can be read in every offered language (translated at the edge; the
    # values, such as the reason, as given).
    for locale in OFFERED:
        assert all(texts(got, locale))
        assert any("Family moved away" in t for t in texts(got, locale))


async def test_renewals_both_ways_and_expiry(h: AdminHarness) -> None:
    link = await h.issue(valid_for=3600)
    h.clock.advance(7200)
    expired = await h.app[TIMELINE].for_link(link.id)
    assert expired.state == "expired"
    assert kinds(expired) == ["created", "expired"]
    assert expired.entries[1].at == expired.link.valid_until

    # The payer's "email me a new link": a new link replaces this one.
    result = await h.client.post(f"/pay/{link.token}/renew", headers=BROWSER_HEADERS)
    assert result.status == 200, await result.text()
    old = await h.app[TIMELINE].for_link(link.id)
    (new_id,) = old.replaced_by
    assert old.state == "revoked" and kinds(old)[-1] == "revoked"
    asked = one(old, EntryKind.RENEWAL, "asked for a fresh link")
    assert asked.who is not None and str(asked.who) == "the payer"
    assert asked.detail is None  # the sentence says it all
    # Expired, then at one moment: asked, replaced, revoked (in that order).
    assert kinds(old) == ["created", "expired", "renewal", "renewal", "revoked"]
    assert "Replaced by" in old.entries[3].text
    replaced = one(old, EntryKind.RENEWAL, "Replaced by")
    assert replaced.link_id == new_id
    new = await h.app[TIMELINE].for_link(new_id)
    issued_for = one(new, EntryKind.RENEWAL, "Issued in place of")
    assert issued_for.link_id == link.id
    assert kinds(new)[:2] == ["created", "renewal"]


async def test_an_unknown_link_is_not_found(h: AdminHarness) -> None:
    with pytest.raises(NotFound):
        await h.app[TIMELINE].for_link("lnk_nothere")


async def test_bounded_with_thousands_of_audit_rows_and_previews(
    h: AdminHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_timeline, "LIMIT", 50)
    monkeypatch.setattr(link_timeline, "COUNT_CAP", 3000)
    link = await h.issue()
    start = now(h)
    async with h.app[DATABASE].write() as session:
        await session.execute(
            sa.insert(AuditEntry),
            [
                {
                    "at": start + timedelta(seconds=i),
                    "link_id": link.id,
                    "action": "reminders.paused" if i % 2 else "reminders.resumed",
                    "actor": TREASURER,
                }
                for i in range(2000)
            ],
        )
        await session.execute(
            sa.insert(LinkPreview),
            [
                {
                    "link_id": link.id,
                    "bot_name": f"bot {i}",
                    "count": 3,
                    "first_at": start + timedelta(seconds=i),
                    "last_at": start + timedelta(seconds=i + 5),
                }
                for i in range(1500)
            ],
        )
    got = await h.app[TIMELINE].for_link(link.id)
    # The link's own entry plus the 50 newest of the rest; 3450 left out, said so.
    assert len(got.entries) == 51
    assert got.entries[0].kind is EntryKind.CREATED
    assert got.omitted == 2000 + 1500 - 50 and got.omitted_exact
    assert got.more is not None
    assert localize("en", got.more) == "and 3450 earlier entries, not shown"
    newest = max(e.at for e in got.entries)
    assert newest == start + timedelta(seconds=1999)

    # Past the count's cap: "more than".
    monkeypatch.setattr(link_timeline, "COUNT_CAP", 1000)
    capped = await h.app[TIMELINE].for_link(link.id)
    assert not capped.omitted_exact
    assert capped.more is not None and "more than" in str(capped.more)


async def test_reads_never_write(h: AdminHarness) -> None:
    link = await h.issue()
    await h.app[TIMELINE].for_link(link.id)
    async with h.app[DATABASE].read() as session:
        rows = (
            await session.execute(sa.select(sa.func.count()).select_from(AuditEntry))
        ).scalar_one()
    assert rows == 1  # the issue only
