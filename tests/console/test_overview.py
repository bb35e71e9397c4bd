"""The console's overview (issue 15 item 6), on SQLite and PostgreSQL with an injected clock:
this month's and this season's figures per currency (issued, opened, paid, outstanding,
refunded) cut in the organisation's time zone, and the Needs attention list, each kind capped
with the count of all."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import AuditEntry, Link, Order, OutboxMessage, WebhookEvent
from gateway.config import Settings
from gateway.dev.clock import FakeClock
from gateway.domain.outbox import Kind, State
from gateway.services.alerts import AlertFinder
from gateway.services.org_settings import OrgSettings
from gateway.services.overview import (
    FIGURES_TTL,
    Attention,
    Figure,
    Overview,
    Period,
    period_bounds,
)
from tests.outbox.support import db

__all__ = ["db"]

ADMIN = "admin:ana@riverside.example"
LISBON = ZoneInfo("Europe/Lisbon")
# 2027-01-15 08:00 UTC.
NOW = FakeClock().now()


def config(timezone: str = "Europe/Lisbon") -> Settings:
    base = Settings()
    return base.replace(checkout=dataclasses.replace(base.checkout, timezone=timezone))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def org(db: Database, clock: FakeClock) -> OrgSettings:
    return OrgSettings(db, clock, config())


@pytest.fixture
def overview(db: Database, clock: FakeClock, org: OrgSettings) -> Overview:
    return Overview(db, clock, AlertFinder(db), org)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def now_of(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC)


async def a_link(
    db: Database,
    link_id: str,
    *,
    created: datetime,
    amount: int = 4500,
    currency: str = "eur",
    opens: int = 0,
    valid_for: timedelta = timedelta(days=30),
    valid_until: datetime | None = None,
    revoked: bool = False,
    ref: str | None = None,
) -> None:
    async with db.write() as session:
        session.add(
            Link(
                id=link_id,
                email="parent@example.com",
                name="Ana Souza",
                description="Spring season",
                currency=currency,
                amount_total=amount,
                ref=ref if ref is not None else f"ref-{link_id}",
                created_at=created,
                created_by="test",
                valid_until=valid_until or created + valid_for,
                revoked_at=created + timedelta(hours=1) if revoked else None,
                open_count=opens,
            )
        )


async def an_order(
    db: Database,
    order_id: str,
    link_id: str,
    *,
    status: str,
    at: datetime,
    amount: int = 4500,
    currency: str = "eur",
    duplicate_of: str | None = None,
    refunded: int = 0,
    refund_id: str | None = None,
) -> None:
    async with db.write() as session:
        session.add(
            Order(
                id=order_id,
                link_id=link_id,
                status=status,
                amount_total=amount,
                currency=currency,
                created_at=at,
                updated_at=at,
                paid_at=at if status in ("paid", "refunded") else None,
                duplicate_of=duplicate_of,
                refunded_amount=refunded,
                refund_id=refund_id,
                payment_intent_id=f"pi_{order_id}",
            )
        )


class TestPeriods:
    @pytest.mark.parametrize(
        ("today", "season_start", "month", "season"),
        [
            (
                date(2027, 1, 15),
                9,
                (date(2027, 1, 1), date(2027, 2, 1)),
                (date(2026, 9, 1), date(2027, 9, 1)),
            ),
            (
                date(2026, 9, 1),
                9,
                (date(2026, 9, 1), date(2026, 10, 1)),
                (date(2026, 9, 1), date(2027, 9, 1)),
            ),
            (
                date(2026, 8, 31),
                9,
                (date(2026, 8, 1), date(2026, 9, 1)),
                (date(2025, 9, 1), date(2026, 9, 1)),
            ),
            (
                date(2026, 12, 31),
                1,
                (date(2026, 12, 1), date(2027, 1, 1)),
                (date(2026, 1, 1), date(2027, 1, 1)),
            ),
        ],
    )
    def test_month_and_season(
        self,
        today: date,
        season_start: int,
        month: tuple[date, date],
        season: tuple[date, date],
    ) -> None:
        assert period_bounds(Period.MONTH, today, LISBON, season_start) == month
        assert period_bounds(Period.SEASON, today, LISBON, season_start) == season


class TestFigures:
    async def test_each_figure_counts_the_periods_links_by_currency(
        self, overview: Overview, db: Database, clock: FakeClock
    ) -> None:
        now = now_of(clock)  # 2027-01-15 08:00 UTC
        jan = now - timedelta(days=5)
        # Paid (opened first), with a partial refund.
        await a_link(db, "lk_paid", created=jan, amount=4500, opens=2)
        await an_order(db, "ord_paid", "lk_paid", status="paid", at=jan, refunded=1000)
        # Paid twice: counted once, at the link's total.
        await a_link(db, "lk_twice", created=jan, amount=3000, opens=1)
        await an_order(db, "ord_t1", "lk_twice", status="paid", at=jan, amount=3000)
        await an_order(
            db, "ord_t2", "lk_twice", status="paid", at=jan, amount=3000, duplicate_of="ord_t1"
        )
        # Outstanding: never opened; opened with a failed attempt; a pending attempt.
        await a_link(db, "lk_new", created=jan, amount=2000)
        await a_link(db, "lk_failed", created=jan, amount=2500, opens=1)
        await an_order(db, "ord_f", "lk_failed", status="failed", at=jan, amount=2500)
        await a_link(db, "lk_pending", created=jan, amount=1500, opens=1)
        await an_order(db, "ord_p", "lk_pending", status="pending", at=jan, amount=1500)
        # Not outstanding: revoked, expired, a bank payment on its way.
        await a_link(db, "lk_revoked", created=jan, amount=100, revoked=True)
        await a_link(db, "lk_expired", created=jan, amount=200, valid_for=timedelta(days=1))
        await a_link(db, "lk_processing", created=jan, amount=400, opens=1)
        await an_order(db, "ord_pr", "lk_processing", status="processing", at=jan, amount=400)
        # Fully refunded: not paid any more, so payable again: outstanding.
        await a_link(db, "lk_refunded", created=jan, amount=900, opens=1)
        await an_order(
            db, "ord_r", "lk_refunded", status="refunded", at=jan, amount=900, refunded=900
        )
        # Another currency.
        await a_link(db, "lk_usd", created=jan, amount=27000, currency="usd", opens=1)
        await an_order(db, "ord_usd", "lk_usd", status="paid", at=jan, amount=27000, currency="usd")
        # Last season and last month: not this month.
        await a_link(db, "lk_december", created=utc(2026, 12, 20), amount=700)
        await a_link(db, "lk_last_season", created=utc(2026, 6, 1), amount=800)

        month = await overview.figures("month")
        assert month.period is Period.MONTH
        assert (month.first_day, month.last_day) == (date(2027, 1, 1), date(2027, 1, 31))
        assert [c.currency for c in month.currencies] == ["eur", "usd"]
        eur, usd = month.currencies
        assert eur.issued == Figure(9, 4500 + 3000 + 2000 + 2500 + 1500 + 100 + 200 + 400 + 900)
        assert eur.opened == Figure(6, 4500 + 3000 + 2500 + 1500 + 400 + 900)
        assert eur.paid == Figure(2, 4500 + 3000)
        assert eur.outstanding == Figure(4, 2000 + 2500 + 1500 + 900)
        assert eur.refunded == Figure(2, 1000 + 900)
        assert usd.issued == usd.paid == Figure(1, 27000)
        assert usd.outstanding == Figure(0, 0)

        season = await overview.figures(Period.SEASON)
        assert (season.first_day, season.last_day) == (date(2026, 9, 1), date(2027, 8, 31))
        eur_season = season.currencies[0]
        assert eur_season.issued.count == 10  # December's link too, not June's
        assert eur_season.issued.amount == eur.issued.amount + 700

    async def test_a_month_starts_at_midnight_in_the_organisations_time_zone(
        self, overview: Overview, org: OrgSettings, db: Database, clock: FakeClock
    ) -> None:
        # Tokyo (UTC+9): 1 January 00:30 there is 31 December 15:30 UTC.
        await org.update({"timezone": "Asia/Tokyo"}, actor=ADMIN)
        await a_link(db, "lk_new_year", created=utc(2026, 12, 31, 15, 30))
        await a_link(db, "lk_old_year", created=utc(2026, 12, 31, 14, 59))
        month = await overview.figures("month")
        assert month.start == utc(2026, 12, 31, 15)
        assert month.currencies[0].issued.count == 1

    async def test_the_season_follows_the_setting(
        self, overview: Overview, org: OrgSettings, db: Database
    ) -> None:
        await a_link(db, "lk_august", created=utc(2026, 8, 10))
        await a_link(db, "lk_october", created=utc(2026, 10, 10))
        assert (await overview.figures("season")).currencies[0].issued.count == 1
        await org.update({"season_start": 8}, actor=ADMIN)
        season = await overview.figures("season")
        assert season.first_day == date(2026, 8, 1)
        assert season.currencies[0].issued.count == 2

    async def test_figures_are_kept_a_minute(
        self, overview: Overview, db: Database, clock: FakeClock
    ) -> None:
        assert (await overview.figures("month")).empty
        await a_link(db, "lk_1", created=now_of(clock) - timedelta(hours=1))
        assert (await overview.figures("month")).empty
        clock.advance(FIGURES_TTL)
        assert (await overview.figures("month")).currencies[0].issued.count == 1

    async def test_an_unknown_period_is_refused(self, overview: Overview) -> None:
        with pytest.raises(ValueError, match="week"):
            await overview.figures("week")


class TestNeedsAttention:
    async def test_nothing_needs_attention_on_a_quiet_day(
        self, overview: Overview, db: Database, clock: FakeClock
    ) -> None:
        now = now_of(clock)
        await a_link(db, "lk_ok", created=now - timedelta(days=2))
        await an_order(db, "ord_ok", "lk_ok", status="paid", at=now - timedelta(days=1))
        # Expiring but paid; expiring in four days.
        await a_link(db, "lk_paid_soon", created=now, valid_for=timedelta(days=1))
        await an_order(db, "ord_ps", "lk_paid_soon", status="paid", at=now)
        await a_link(db, "lk_later", created=now, valid_for=timedelta(days=4))
        assert await overview.needs_attention() == []

    async def test_every_kind_with_its_link_and_when(
        self, overview: Overview, db: Database, clock: FakeClock
    ) -> None:
        now = now_of(clock)
        day = timedelta(days=1)
        # A duplicate payment not refunded (and one refunded: not listed).
        await a_link(db, "lk_dup", created=now - 3 * day, ref="2027-01/dup", valid_for=30 * day)
        await an_order(db, "ord_d1", "lk_dup", status="paid", at=now - 2 * day)
        await an_order(db, "ord_d2", "lk_dup", status="paid", at=now - day, duplicate_of="ord_d1")
        await a_link(db, "lk_dup_done", created=now - 3 * day)
        await an_order(db, "ord_e1", "lk_dup_done", status="paid", at=now - 2 * day)
        await an_order(
            db,
            "ord_e2",
            "lk_dup_done",
            status="refunded",
            at=now - day,
            duplicate_of="ord_e1",
            refunded=4500,
            refund_id="re_1",
        )
        # A dispute.
        async with db.write() as session:
            session.add(
                AuditEntry(
                    at=now - day,
                    link_id="lk_dup_done",
                    order_id="ord_e1",
                    action="order.disputed",
                    actor="stripe",
                    detail="fraudulent",
                )
            )
        # A bank payment that failed, nothing since (and one paid since: not listed).
        await a_link(db, "lk_bank", created=now - 5 * day, ref="2027-01/bank")
        await an_order(db, "ord_b", "lk_bank", status="failed", at=now - 2 * day)
        await a_link(db, "lk_bank_ok", created=now - 5 * day)
        await an_order(db, "ord_bf", "lk_bank_ok", status="failed", at=now - 3 * day)
        await an_order(db, "ord_bp", "lk_bank_ok", status="paid", at=now - 2 * day)
        # An email that failed for good.
        async with db.write() as session:
            session.add(
                OutboxMessage(
                    id="msg_1",
                    kind=Kind.RECEIPT.value,
                    subject="ord_d1",
                    link_id="lk_dup",
                    order_id="ord_d1",
                    recipient="typo@example.com",
                    locale="en",
                    payload="{}",
                    state=State.FAILED.value,
                    attempts=6,
                    crash_resends=0,
                    next_attempt_at=now - day,
                    message_id="<msg_1@example.com>",
                    last_error="550 5.1.1 no such mailbox",
                    created_at=now - 2 * day,
                    updated_at=now - day,
                )
            )
        # A link expiring in two days, unpaid (and one revoked: not listed).
        await a_link(db, "lk_soon", created=now - 28 * day, valid_until=now + 2 * day, ref="soon")
        await a_link(db, "lk_soon_revoked", created=now, valid_until=now + day, revoked=True)
        # Stripe events: one failed, one deferred for hours, one received a minute ago.
        async with db.write() as session:
            for event_id, outcome, received in (
                ("evt_failed", "failed", now - day),
                ("evt_stuck", "deferred", now - 2 * timedelta(hours=1)),
                ("evt_fresh", "received", now - timedelta(minutes=1)),
                ("evt_fine", "applied", now - day),
            ):
                session.add(
                    WebhookEvent(
                        event_id=event_id,
                        type="charge.refunded",
                        received_at=received,
                        processed_at=received,
                        source="webhook",
                        outcome=outcome,
                        error=None,
                        order_id="ord_d1",
                        attempts=1,
                    )
                )

        groups = await overview.needs_attention()
        kinds = [group.kind for group in groups]
        assert kinds == [
            Attention.DUPLICATE,
            Attention.DISPUTE,
            Attention.FAILED_BANK_PAYMENT,
            Attention.FAILED_EMAIL,
            Attention.EXPIRING,
            Attention.FAILED_EVENT,
            Attention.STUCK_EVENT,
        ]
        by_kind = {group.kind: group for group in groups}
        assert all(group.count == 1 and group.more == 0 for group in groups)
        (duplicate,) = by_kind[Attention.DUPLICATE].items
        assert (duplicate.link_id, duplicate.at, duplicate.amount, duplicate.currency) == (
            "lk_dup",
            now - day,
            4500,
            "eur",
        )
        assert duplicate.sentence == "2027-01/dup was paid twice: refund the second payment"
        assert by_kind[Attention.DISPUTE].items[0].link_id == "lk_dup_done"
        (bank,) = by_kind[Attention.FAILED_BANK_PAYMENT].items
        assert (bank.link_id, bank.at) == ("lk_bank", now - 2 * day)
        assert "2027-01/bank" in bank.sentence
        (email,) = by_kind[Attention.FAILED_EMAIL].items
        assert email.link_id == "lk_dup"
        assert email.sentence == "An email (a receipt) for 2027-01/dup could not be sent"
        assert "typo@" not in email.sentence
        (soon,) = by_kind[Attention.EXPIRING].items
        assert (soon.link_id, soon.at) == ("lk_soon", now + 2 * day)
        assert by_kind[Attention.FAILED_EVENT].items[0].sentence == (
            "A Stripe event (charge.refunded) could not be applied"
        )
        (stuck,) = by_kind[Attention.STUCK_EVENT].items
        assert (stuck.link_id, stuck.at) == ("lk_dup", now - 2 * timedelta(hours=1))

    async def test_each_kind_is_capped_and_says_how_many_more(
        self, overview: Overview, db: Database, clock: FakeClock
    ) -> None:
        now = now_of(clock)
        for number in range(8):
            await a_link(
                db,
                f"lk_{number}",
                created=now - timedelta(days=20),
                valid_until=now + timedelta(hours=10 + number),
            )
        (group,) = await overview.needs_attention(shown=3)
        assert (group.kind, group.count, group.more) == (Attention.EXPIRING, 8, 5)
        # The soonest first.
        assert [item.link_id for item in group.items] == ["lk_0", "lk_1", "lk_2"]


def test_every_kind_of_message_has_a_name() -> None:
    """A failed email says what it was (the digest's own kind aside: it is never listed)."""
    from gateway.domain.outbox import Kind as MessageKind
    from gateway.services.overview import _MESSAGE_KINDS

    assert set(_MESSAGE_KINDS) == {kind.value for kind in MessageKind} - {"alert_digest"}
