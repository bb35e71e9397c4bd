"""The alert digest (issue 14 items 4 and 5: "the digest fires once per interval"), on SQLite and
PostgreSQL with a real SMTP sink and an injected clock: nothing to report, no row and no email;
what needs a person in a window, one digest listing it; any number of runs and two replicas in
a window, one digest; the next window, only what is new; no ``alerts.email``, nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import (
    AuditEntry,
    KeyValue,
    Link,
    Order,
    OutboxMessage,
    WebhookEvent,
)
from gateway.adapters.mail import SmtpMailer
from gateway.config import ConfigError, Duration, Settings, load_settings
from gateway.dev.clock import FakeClock
from gateway.dev.demo_mail import SentMail
from gateway.domain.outbox import Kind, State
from gateway.domain.payments import RefundInfo
from gateway.resources import resource_dir
from gateway.services.alerts import (
    CHECKED_KEY,
    GRACE,
    MAX_CATCH_UP,
    SHOWN,
    AlertFinder,
    AlertItem,
    AlertScheduler,
    AlertSection,
    Digest,
    Section,
    due_window,
    stamp,
)
from gateway.services.email import MAX_MESSAGE_BYTES, email_environments
from gateway.services.links import IssuedLink
from gateway.services.messages.alerts import AlertDigestComposer
from gateway.services.outbox import Outbox
from gateway.services.payments import PaymentRecorder, record_dispute, record_refund
from gateway.services.snapshots import SnapshotCache
from gateway.web.keys import ALERTS, OUTBOX, RECONCILER
from tests.harness import Harness, session_id_from, start_harness
from tests.outbox.support import RefusingSink, db, sink

__all__ = ["db", "sink"]

HOUR = 3600.0
TREASURER = "treasurer@example.org"
# FakeClock starts on the hour (1_800_000_000 is a multiple of 3600): the first window.
START = FakeClock().now()
WINDOW_START = datetime.fromtimestamp(START, UTC)


def environments_for(settings: Settings) -> dict[str, Any]:
    return email_environments(str(resource_dir("templates")), settings.checkout.timezone)


def settings_for(port: int, *, alerts_email: str = TREASURER, locale: str = "en") -> Settings:
    base = Settings()
    return base.replace(
        checkout=dataclasses.replace(
            base.checkout,
            org_name="Riverside Youth Basketball",
            timezone="Europe/Lisbon",
            default_locale=locale,
        ),
        email=dataclasses.replace(
            base.email,
            host="127.0.0.1",
            port=port,
            from_address="club@example.com",
            timeout=Duration(5.0),
        ),
        alerts=dataclasses.replace(base.alerts, email=alerts_email, interval=Duration(HOUR)),
    )


class Replica:
    """One gateway process's outbox and alert scheduler, wired as gateway.wiring does."""

    def __init__(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        finder = AlertFinder(db)
        templates = str(resource_dir("templates"))
        self.outbox = Outbox(
            db,
            clock,
            mailer=SmtpMailer(settings.email),
            composers={
                Kind.ALERT_DIGEST: AlertDigestComposer(
                    finder,
                    settings,
                    clock,
                    email_environments(templates, settings.checkout.timezone),
                )
            },
            domain="example.com",
        )
        self.alerts = AlertScheduler(db, clock, self.outbox, finder, settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def replica(db: Database, clock: FakeClock, sink: RefusingSink) -> Replica:
    return Replica(db, clock, settings_for(sink.port))


def at(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC)


# --- what happened ------------------------------------------------------------------------


async def a_link(db: Database, clock: FakeClock, link_id: str, ref: str) -> None:
    now = at(clock)
    async with db.write() as session:
        session.add(
            Link(
                id=link_id,
                email="parent@example.com",
                name="Ana Souza",
                description="Spring season",
                currency="eur",
                amount_total=4500,
                ref=ref,
                created_at=now,
                created_by="test",
                valid_until=now + timedelta(days=30),
            )
        )


async def a_paid_order(
    db: Database,
    clock: FakeClock,
    order_id: str,
    link_id: str,
    *,
    duplicate_of: str | None = None,
    intent: str | None = None,
) -> None:
    now = at(clock)
    async with db.write() as session:
        session.add(
            Order(
                id=order_id,
                link_id=link_id,
                status="paid",
                amount_total=4500,
                currency="eur",
                created_at=now,
                updated_at=now,
                paid_at=now,
                duplicate_of=duplicate_of,
                payment_intent_id=intent or f"pi_{order_id}",
            )
        )


async def a_duplicate(db: Database, clock: FakeClock, link_id: str, ref: str) -> str:
    """A link paid twice: the second payment flagged, not refunded."""
    await a_link(db, clock, link_id, ref)
    await a_paid_order(db, clock, f"ord_{link_id}_1", link_id)
    await a_paid_order(db, clock, f"ord_{link_id}_2", link_id, duplicate_of=f"ord_{link_id}_1")
    return f"ord_{link_id}_2"


async def a_failed_event(
    db: Database, clock: FakeClock, event_id: str, *, outcome: str = "failed"
) -> None:
    now = at(clock)
    async with db.write() as session:
        session.add(
            WebhookEvent(
                event_id=event_id,
                type="charge.refunded",
                received_at=now,
                processed_at=now,
                source="webhook",
                outcome=outcome,
                error="OperationalError: database is locked",
                attempts=1,
            )
        )


async def a_missed_payment(db: Database, clock: FakeClock, link_id: str, ref: str) -> None:
    """What the reconciler writes when it finds a payment no webhook brought."""
    await a_link(db, clock, link_id, ref)
    await a_paid_order(db, clock, f"ord_{link_id}", link_id)
    async with db.write() as session:
        session.add(
            AuditEntry(
                at=at(clock),
                link_id=link_id,
                order_id=f"ord_{link_id}",
                action="order.paid",
                from_status="pending",
                to_status="paid",
                actor="reconciler",
                detail="session cs_1",
            )
        )


async def a_failed_message(
    db: Database, clock: FakeClock, row_id: str, *, error: str = "550 5.1.1 no such mailbox"
) -> None:
    now = at(clock)
    async with db.write() as session:
        session.add(
            OutboxMessage(
                id=row_id,
                kind=Kind.RECEIPT.value,
                subject=f"ord_{row_id}",
                recipient="typo@example.com",
                locale="en",
                payload="{}",
                state=State.FAILED.value,
                attempts=1,
                crash_resends=0,
                next_attempt_at=now,
                message_id=f"<{row_id}@example.com>",
                last_error=error,
                created_at=now,
                updated_at=now,
            )
        )


# --- what the gateway did about it --------------------------------------------------------


async def digests(db: Database) -> list[OutboxMessage]:
    async with db.read() as session:
        found = await session.execute(
            sa.select(OutboxMessage)
            .where(OutboxMessage.kind == Kind.ALERT_DIGEST.value)
            .order_by(OutboxMessage.subject)
        )
        return list(found.scalars())


def window(row: OutboxMessage) -> tuple[str, str]:
    payload = json.loads(row.payload)
    return payload["since"], payload["until"]


def hours_later(hours: float) -> datetime:
    return WINDOW_START + timedelta(hours=hours)


class TestWindows:
    @pytest.mark.parametrize(
        ("now", "checked", "expected"),
        [
            # A window is due once it ended, plus the grace: until then, the one before it.
            (hours_later(1), None, (hours_later(-1), hours_later(0))),
            (hours_later(1) + GRACE, None, (hours_later(0), hours_later(1))),
            (hours_later(1.9), None, (hours_later(0), hours_later(1))),
            # Checked already: nothing until the next window ends.
            (hours_later(1.9), hours_later(1), None),
            # Runs missed: from where checking stopped...
            (hours_later(5.5), hours_later(1), (hours_later(1), hours_later(5))),
            # ...at most a week back.
            (
                hours_later(720) + GRACE,
                hours_later(1),
                (hours_later(720) - MAX_CATCH_UP, hours_later(720)),
            ),
        ],
    )
    def test_due_window(
        self,
        now: datetime,
        checked: datetime | None,
        expected: tuple[datetime, datetime] | None,
    ) -> None:
        assert due_window(now, timedelta(hours=1), checked) == expected


class TestSettings:
    def test_alerts_settings_are_read_and_checked(self) -> None:
        env = {"GATEWAY_ALERTS_EMAIL": "treasurer@example.org", "GATEWAY_ALERTS_INTERVAL": "30m"}
        alerts = load_settings(path=None, env=env).alerts
        assert (alerts.email, alerts.interval) == ("treasurer@example.org", 1800.0)
        assert load_settings(path=None, env={}).alerts.interval == HOUR

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("EMAIL", "treasurer"),
            ("EMAIL", "a@example.org, b@example.org"),
            ("EMAIL", "a@example.org\r\nBcc: x@example.org"),
            ("INTERVAL", "30s"),
            ("INTERVAL", "8d"),
            ("INTERVAL", "90.5"),
        ],
    )
    def test_a_bad_value_stops_the_start(self, key: str, value: str) -> None:
        with pytest.raises(ConfigError, match=f"alerts.{key.lower()}"):
            load_settings(path=None, env={f"GATEWAY_ALERTS_{key}": value})


class TestDigest:
    async def test_nothing_to_report_is_no_row_and_no_email(
        self, replica: Replica, db: Database, clock: FakeClock, sink: RefusingSink
    ) -> None:
        # What needs nobody: a link paid once, an event applied, an event Stripe will retry.
        await a_link(db, clock, "lk_ok", "2026-12/ok")
        await a_paid_order(db, clock, "ord_ok", "lk_ok")
        await a_failed_event(db, clock, "evt_applied", outcome="applied")
        await a_failed_event(db, clock, "evt_later", outcome="deferred")
        for _ in range(30):  # two and a half days of runs every five minutes... and more
            clock.advance(2 * HOUR)
            assert not (await replica.alerts.run()).written
            await replica.outbox.send_due()
        assert await digests(db) == []
        assert sink.messages == []

    async def test_a_duplicate_and_a_failed_event_make_one_digest_listing_both(
        self, replica: Replica, db: Database, clock: FakeClock, sink: RefusingSink
    ) -> None:
        clock.advance(600)
        duplicate = await a_duplicate(db, clock, "lk_twice", "2026-12/p1")
        await a_failed_event(db, clock, "evt_broken")
        clock.set(START + HOUR)  # the window is over, but not by the grace yet
        early = await replica.alerts.run()
        assert not early.written and early.window == (
            WINDOW_START - timedelta(hours=1),
            WINDOW_START,
        )
        clock.advance(GRACE.total_seconds())
        run = await replica.alerts.run()
        assert run.written and run.count == 2
        [row] = await digests(db)
        assert row.subject == stamp(WINDOW_START) == "2027-01-15T08:00:00Z"
        assert row.recipient == TREASURER and row.locale == "en"
        assert window(row) == ("2027-01-15T08:00:00Z", "2027-01-15T09:00:00Z")
        assert [d.outcome for d in (await replica.outbox.send_due()).deliveries] == ["sent"]
        [mail] = sink.messages
        message = mail.message
        assert mail.recipients == (TREASURER,)
        assert mail.subject == "Riverside Youth Basketball payments: 2 things need attention"
        assert message["Content-Language"] == "en"
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["Message-ID"] == row.message_id
        for part in (mail.text(), mail.html()):
            assert "1 payment was made for a link that was already paid" in part
            assert "1 event from Stripe could not be applied" in part
            assert "2026-12/p1: €45.00" in part
            assert "gateway links show lk_twice" in part
            assert "gateway webhooks replay evt_broken" in part
            assert "database is locked" in part
            # The window in the organisation's zone (Lisbon is on UTC in January).
            assert "January 15, 2027" in part and "8:00" in part
        assert '<html lang="en">' in mail.html()
        assert duplicate not in mail.text()  # the link is what a person looks up

    async def test_many_runs_and_two_replicas_in_a_window_make_one_digest(
        self, db: Database, clock: FakeClock, sink: RefusingSink
    ) -> None:
        settings = settings_for(sink.port)
        one, two = Replica(db, clock, settings), Replica(db, clock, settings)
        await a_duplicate(db, clock, "lk_twice", "2026-12/p1")
        clock.set(START + HOUR)
        written = 0
        for _ in range(12):  # every five minutes through the next window, both at once
            clock.advance(300)
            runs = await asyncio.gather(*(r.alerts.run() for r in (one, two, one, two)))
            written += sum(run.written for run in runs)
            await asyncio.gather(one.outbox.send_due(), two.outbox.send_due())
        assert written == 1
        assert [row.subject for row in await digests(db)] == [stamp(WINDOW_START)]
        assert len(sink.messages) == 1

    async def test_the_next_window_reports_only_what_is_new(
        self, replica: Replica, db: Database, clock: FakeClock, sink: RefusingSink
    ) -> None:
        await a_duplicate(db, clock, "lk_twice", "2026-12/p1")
        clock.set(START + HOUR + 300)
        assert (await replica.alerts.run()).written
        await replica.outbox.send_due()
        # In the second hour: a payment the reconciler found, and an email that failed.
        clock.advance(600)
        await a_missed_payment(db, clock, "lk_missed", "2026-12/p2")
        await a_failed_message(db, clock, "ms_failed")
        clock.set(START + 2 * HOUR + 300)
        run = await replica.alerts.run()
        assert run.written and run.count == 2
        await replica.outbox.send_due()
        # The third hour: nothing new, nothing sent.
        clock.set(START + 3 * HOUR + 300)
        assert not (await replica.alerts.run()).written
        await replica.outbox.send_due()
        assert [row.subject for row in await digests(db)] == [
            "2027-01-15T08:00:00Z",
            "2027-01-15T09:00:00Z",
        ]
        first, second = sink.messages
        assert "2026-12/p1" in first.text() and "2026-12/p2" not in first.text()
        assert "2026-12/p1" not in second.text()
        assert "1 payment was found by the reconciler" in second.text()
        assert "gateway links show lk_missed" in second.text()
        assert "1 email could not be delivered" in second.text()
        assert "Email ms_failed (receipt) to typo@example.com" in second.text()
        assert "gateway mail show ms_failed" in second.text()
        assert "2 things need attention" in second.subject

    async def test_no_alerts_email_means_nothing(
        self, db: Database, clock: FakeClock, sink: RefusingSink
    ) -> None:
        quiet = Replica(db, clock, settings_for(sink.port, alerts_email=""))
        await a_duplicate(db, clock, "lk_twice", "2026-12/p1")
        await a_failed_event(db, clock, "evt_broken")
        for _ in range(3):
            clock.advance(HOUR)
            assert (await quiet.alerts.run()).window is None
            await quiet.outbox.send_due()
        assert await digests(db) == []
        assert sink.messages == []
        async with db.read() as session:
            assert await session.get(KeyValue, CHECKED_KEY) is None

    async def test_after_a_stop_the_first_digest_covers_the_hours_missed(
        self, replica: Replica, db: Database, clock: FakeClock, sink: RefusingSink
    ) -> None:
        clock.set(START + HOUR + 300)
        assert not (await replica.alerts.run()).written  # the first hour: nothing
        clock.set(START + HOUR + 600)
        await a_duplicate(db, clock, "lk_twice", "2026-12/p1")
        clock.advance(3 * HOUR)  # no run all this time
        await a_failed_event(db, clock, "evt_broken")
        clock.set(START + 6 * HOUR + 300)
        run = await replica.alerts.run()
        assert run.written and run.count == 2
        [row] = await digests(db)
        assert window(row) == ("2027-01-15T09:00:00Z", "2027-01-15T14:00:00Z")

    async def test_what_was_dealt_with_before_sending_is_not_listed(
        self, replica: Replica, db: Database, clock: FakeClock, sink: RefusingSink
    ) -> None:
        duplicate = await a_duplicate(db, clock, "lk_twice", "2026-12/p1")
        clock.set(START + HOUR + 300)
        assert (await replica.alerts.run()).written
        async with db.write() as session:  # refunded (by a person) before the digest went
            order = await session.get(Order, duplicate)
            assert order is not None
            order.status, order.refund_id = "refunded", "re_1"
        [delivery] = (await replica.outbox.send_due()).deliveries
        assert delivery.outcome == "skipped"
        assert sink.messages == []


class _Refunds:
    """The payment port's refund, and nothing else (PaymentRecorder.refund_duplicate's call).
    ``echo``: what happens while Stripe answers (its webhook overtaking the answer)."""

    def __init__(self) -> None:
        self.echo: Callable[[str], Awaitable[None]] | None = None

    async def refund(
        self, payment_intent_id: str, *, idempotency_key: str, metadata: Mapping[str, str]
    ) -> RefundInfo:
        if self.echo is not None:
            await self.echo(payment_intent_id)
        return RefundInfo(id=f"re_{payment_intent_id}", amount=4500, status="succeeded")


class TestWhatIsReported:
    async def test_refunds_made_outside_the_gateway_are_reported_its_own_are_not(
        self, db: Database, clock: FakeClock
    ) -> None:
        async def charge_refunded(intent: str) -> None:
            charge = {"payment_intent": intent, "amount_refunded": 4500, "refunded": True}
            async with db.write() as session:
                await record_refund(session, charge, actor="webhook", now=at(clock))

        stripe = _Refunds()
        recorder = PaymentRecorder(
            db,
            stripe,  # type: ignore[arg-type]
            clock,
            refund_duplicates=True,
            snapshots=SnapshotCache(ttl=1.0),
        )
        # Refunded in the dashboard: Stripe's charge.refunded is all the gateway hears.
        await a_link(db, clock, "lk_dash", "2026-12/dashboard")
        await a_paid_order(db, clock, "ord_dash", "lk_dash")
        await charge_refunded("pi_ord_dash")
        # A duplicate the gateway refunded, Stripe's event arriving after the refund was
        # recorded (it changes nothing)...
        after = await a_duplicate(db, clock, "lk_after", "2026-12/gateway-after")
        assert await recorder.refund_duplicate(after, actor="reconciler")
        await charge_refunded(f"pi_{after}")
        # ...and one whose event overtook Stripe's answer (recorded first, from the event).
        before = await a_duplicate(db, clock, "lk_before", "2026-12/gateway-before")
        stripe.echo = charge_refunded
        assert await recorder.refund_duplicate(before, actor="webhook")
        async with db.read() as session:
            refunded = await session.execute(
                sa.select(AuditEntry.order_id).where(AuditEntry.action == "order.refunded")
            )
            assert sorted(str(order) for order in refunded.scalars()) == sorted(
                ["ord_dash", after, before, before]
            )
        digest = await AlertFinder(db).collect(WINDOW_START, WINDOW_START + timedelta(hours=1))
        [section] = digest.sections
        assert section.name is Section.OUTSIDE_REFUNDS and section.count == 1
        assert [item.ref for item in section.items] == ["2026-12/dashboard"]

    async def test_a_dispute_is_reported(
        self, replica: Replica, db: Database, clock: FakeClock
    ) -> None:
        await a_link(db, clock, "lk_disputed", "2026-12/p9")
        await a_paid_order(db, clock, "ord_disputed", "lk_disputed")
        dispute = {"id": "dp_1", "payment_intent": "pi_ord_disputed", "reason": "fraudulent"}
        async with db.write() as session:
            await record_dispute(session, dispute, actor="webhook", now=at(clock))
        digest = await AlertFinder(db).collect(WINDOW_START, WINDOW_START + timedelta(hours=1))
        [section] = digest.sections
        assert section.name is Section.DISPUTES and section.count == 1
        assert section.items[0].link_id == "lk_disputed" and section.items[0].amount == 4500

    async def test_a_failed_digest_is_not_reported_in_the_next(
        self, db: Database, clock: FakeClock, sink: RefusingSink
    ) -> None:
        bounced = Replica(db, clock, settings_for(sink.port, alerts_email="refused@example.org"))
        await a_duplicate(db, clock, "lk_twice", "2026-12/p1")
        clock.set(START + HOUR + 300)
        assert (await bounced.alerts.run()).written
        assert [d.outcome for d in (await bounced.outbox.send_due()).deliveries] == ["failed"]
        clock.set(START + 2 * HOUR + 300)
        assert not (await bounced.alerts.run()).written


class TestSize:
    async def test_hundreds_of_failures_are_counted_and_the_first_few_listed(
        self, db: Database, clock: FakeClock, sink: RefusingSink
    ) -> None:
        replica = Replica(db, clock, settings_for(sink.port, locale="pt-BR"))
        for n in range(300):
            await a_failed_message(db, clock, f"ms_{n:03}", error="配達できません。" * 62)
        clock.set(START + HOUR + 300)
        assert (await replica.alerts.run()).count == 300
        assert [d.outcome for d in (await replica.outbox.send_due()).deliveries] == ["sent"]
        [mail] = sink.messages
        assert len(mail.message.as_bytes()) <= MAX_MESSAGE_BYTES
        assert mail.message["Content-Language"] == "pt-BR"
        assert '<html lang="pt-BR">' in mail.html()
        text = mail.text()
        assert "300" in text and "290" in text  # how many, and how many more than listed
        assert "ms_009" in text and "ms_010" not in text

    def test_the_longest_digest_is_cut_to_fit_under_100_kb(
        self, clock: FakeClock, db: Database
    ) -> None:
        settings = settings_for(25)
        composer = AlertDigestComposer(AlertFinder(db), settings, clock, environments_for(settings))
        # Every section full, each item as long as the columns allow, in a script of three
        # bytes a character (and base64 on top, in both parts).
        item = AlertItem(
            at=WINDOW_START,
            id="x" * 255,
            link_id="lk_" + "x" * 12,
            ref="参照" * 100,
            amount=10**11,
            currency="jpy",
            kind="receipt",
            recipient="a" * 64 + "@" + "b" * 250 + ".jp",
            error="データベースがロックされています。" * 60,
        )
        digest = Digest(
            WINDOW_START,
            WINDOW_START + timedelta(hours=1),
            tuple(AlertSection(name, 500, (item,) * SHOWN) for name in Section),
        )
        message = composer.build(digest, recipient=TREASURER, locale="en")
        assert len(message.as_bytes()) <= MAX_MESSAGE_BYTES
        text = message.get_body(preferencelist=("plain",))
        assert text is not None
        body = text.get_content()
        # Cut, never dropped: every section still says how many there are.
        for name in (
            "payments were made",
            "disputed",
            "refunds were made",
            "emails could not",
            "events from Stripe",
            "found by the reconciler",
        ):
            assert name in body
        assert body.count("gateway links show") < 4 * SHOWN

    def test_what_the_rows_hold_is_text_in_the_html_part(
        self, clock: FakeClock, db: Database
    ) -> None:
        composer = AlertDigestComposer(
            AlertFinder(db), settings_for(25), clock, environments_for(settings_for(25))
        )
        item = AlertItem(
            at=WINDOW_START,
            id="evt_1",
            kind="charge.refunded",
            error='<img src=x onerror="alert(1)"> & more',
        )
        digest = Digest(
            WINDOW_START,
            WINDOW_START + timedelta(hours=1),
            (AlertSection(Section.FAILED_EVENTS, 1, (item,)),),
        )
        message = composer.build(digest, recipient=TREASURER, locale="en")
        html = message.get_body(preferencelist=("html",))
        text = message.get_body(preferencelist=("plain",))
        assert html is not None and text is not None
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; more" in html.get_content()
        assert "<img" not in html.get_content()
        assert '<img src=x onerror="alert(1)"> & more' in text.get_content()


async def gateway_with_alerts(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, port: int, **checkout: Any
) -> Harness:
    """The real app (its wiring, composers and scheduler), the emulator over HTTP, SMTP to the
    sink, and alerts to the treasurer."""

    def configure(settings: Settings) -> Settings:
        return settings.replace(
            email=dataclasses.replace(
                settings.email,
                host="127.0.0.1",
                port=port,
                from_address="club@example.com",
                timeout=Duration(5.0),
            ),
            alerts=dataclasses.replace(settings.alerts, email=TREASURER),
        )

    return await start_harness(
        aiohttp_server, aiohttp_client, database_url, configure=configure, **checkout
    )


async def paid_twice(h: Harness, ref: str) -> tuple[IssuedLink, str]:
    """A payer pays an old session in another tab after paying the new one (the race
    tests/integration/test_reconcile.py plays): the link is paid twice. Returns the old one."""
    link = await h.issue(ref=ref)
    old = session_id_from((await h.post(link)).headers["Location"])
    h.clock.advance(31 * 60)
    new = session_id_from((await h.post(link)).headers["Location"])
    h.emulator.pay(new)
    await h.emulator.deliver_webhooks()
    h.emulator.sessions[old]["status"] = "open"
    h.emulator.pay(old)
    await h.emulator.deliver_webhooks()
    return link, old


async def digest_mails(h: Harness, sink: RefusingSink) -> list[SentMail]:
    h.clock.set(START + 2 * HOUR)  # the first hour and its grace are over
    assert (await h.app[ALERTS].run()).written
    await h.app[OUTBOX].send_due(limit=100)
    return sink.to(TREASURER)


class TestThroughTheGateway:
    async def test_what_stripe_and_the_reconciler_report_reaches_the_treasurer_once(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str, sink: RefusingSink
    ) -> None:
        h = await gateway_with_alerts(aiohttp_server, aiohttp_client, database_url, sink.port)
        twice, _ = await paid_twice(h, "2026-12/twice")
        refunded = await h.issue(ref="2026-12/refunded")
        session = await h.pay_flow(refunded)
        h.emulator.refund_from_dashboard(h.emulator.sessions[session]["payment_intent"])
        disputed = await h.issue(ref="2026-12/disputed")
        session = await h.pay_flow(disputed)
        h.emulator.dispute(h.emulator.sessions[session]["payment_intent"])
        await h.emulator.deliver_webhooks()
        missed = await h.issue(ref="2026-12/missed")
        h.emulator.faults.update({"lose_next_webhooks": 100})
        await h.pay_flow(missed)
        assert (await h.app[RECONCILER].run()).ran
        [mail] = await digest_mails(h, sink)
        text = mail.text()
        assert "4 things need attention" in mail.subject
        for sentence, link in (
            ("1 payment was made for a link that was already paid", twice),
            ("1 payment was disputed", disputed),
            ("1 refund was made outside the gateway", refunded),
            ("1 payment was found by the reconciler", missed),
        ):
            assert sentence in text and f"gateway links show {link.id}" in text
        # Run again, and again in the next hours: nothing more.
        for hours in (2.5, 3.1, 4.1):
            h.clock.set(START + hours * HOUR)
            assert not (await h.app[ALERTS].run()).written
            await h.app[OUTBOX].send_due(limit=100)
        assert len(sink.to(TREASURER)) == 1

    async def test_a_duplicate_the_gateway_refunded_itself_is_not_reported(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str, sink: RefusingSink
    ) -> None:
        h = await gateway_with_alerts(
            aiohttp_server, aiohttp_client, database_url, sink.port, refund_duplicates=True
        )
        twice, old = await paid_twice(h, "2026-12/twice")
        await h.app[RECONCILER].run()
        await h.emulator.deliver_webhooks()  # Stripe's charge.refunded for the gateway's refund
        orders = {order.stripe_session_id: order for order in await h.orders(twice)}
        assert orders[old].status == "refunded" and orders[old].refund_id
        # Something else, so that there is a digest to read.
        broken = await h.issue(ref="2026-12/other")
        session = await h.pay_flow(broken)
        h.emulator.refund_from_dashboard(h.emulator.sessions[session]["payment_intent"])
        await h.emulator.deliver_webhooks()
        [mail] = await digest_mails(h, sink)
        text = mail.text()
        assert "1 thing needs attention" in mail.subject
        assert "1 refund was made outside the gateway" in text
        assert f"gateway links show {broken.id}" in text and twice.id not in text
