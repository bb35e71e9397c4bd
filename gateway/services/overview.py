"""The console's home (issue 15 item 6): this month's and this season's figures, and what needs
a person.

**Figures** (:meth:`Overview.figures`) are about the links *issued in the period* (created in it,
in the organisation's time zone), per currency, each a count and an amount in minor units:

- ``issued``: every link created in the period (revoked ones too: they were issued), its total;
- ``opened``: of those, the links a person opened (bot previews do not count);
- ``paid``: of those, the links with a payment (the link's total: a second payment of the same
  link is in *Needs attention*, not counted twice);
- ``outstanding``: of those, the links still payable now (not paid, no bank payment on its way,
  not revoked, not expired), their total: what is still owed;
- ``refunded``: of those, the links with money refunded, and the amount refunded.

A **month** is the calendar month; a **season** runs from the first day of the month
``season_start`` (an organisation setting, default September: 1 September to 31 August), both in
the organisation's time zone (``checkout.timezone``, or the console's setting). The figures are
one aggregate statement per period over the period's links (``GROUP BY currency``, each link's
orders read once), kept for :data:`FIGURES_TTL` seconds so a busy home page costs one statement
per period per replica at most that often. Measured with 100,000 links over a year (bench
seed, a loaded 2-core box): a season of ~27,000 links ~0.3 s on SQLite and PostgreSQL, a month
30-80 ms; Needs attention ~0.1 s.

**Needs attention** (:meth:`Overview.needs_attention`), each group capped at :data:`SHOWN`
items with the count of all: duplicate payments not refunded, disputes, failed emails and Stripe
events that could not be applied (found by ``services.alerts.AlertFinder``, as the digest finds
them, over a longer look back), bank payments that failed with nothing paid since, unpaid links
that expire within :data:`EXPIRING_WITHIN`, and Stripe events received but still not applied
after :data:`STUCK_AFTER`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, TypeAlias
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, Order, WebhookEvent
from gateway.clock import Clock
from gateway.domain.text import Text
from gateway.services.alerts import AlertFinder, AlertItem, Section
from gateway.services.org_settings import OrgSettings

# Items listed per kind; the count says how many more there are.
SHOWN: Final = 5
EXPIRING_WITHIN: Final = timedelta(days=3)
# An event received (or deferred: "not yet applicable") this long ago and still not applied.
STUCK_AFTER: Final = timedelta(hours=1)
# How far back disputes, failed emails, failed events and failed bank payments are looked for.
# A duplicate payment not refunded is listed however old it is.
LOOK_BACK: Final = timedelta(days=90)
FIGURES_TTL: Final = 60.0
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_Query: TypeAlias = "sa.Select[*tuple[Any, ...]]"


class Period(enum.StrEnum):
    MONTH = "month"
    SEASON = "season"


class Attention(enum.StrEnum):
    """What needs a person, in the order the overview lists it."""

    ORPHAN = "orphan"  # paid at Stripe, not recorded here: first, a payer is waiting
    DUPLICATE = "duplicate"
    DISPUTE = "dispute"
    FAILED_BANK_PAYMENT = "failed_bank_payment"
    FAILED_EMAIL = "failed_email"
    EXPIRING = "expiring"
    FAILED_EVENT = "failed_event"
    STUCK_EVENT = "stuck_event"


@dataclass(frozen=True, slots=True)
class Figure:
    count: int = 0
    amount: int = 0  # minor units


@dataclass(frozen=True, slots=True)
class CurrencyFigures:
    currency: str
    issued: Figure
    opened: Figure
    paid: Figure
    outstanding: Figure
    refunded: Figure


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    period: Period
    first_day: date  # local
    last_day: date  # local, inclusive
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    currencies: tuple[CurrencyFigures, ...]  # most links first
    as_of: datetime

    @property
    def empty(self) -> bool:
        return not self.currencies


@dataclass(frozen=True, slots=True)
class AttentionItem:
    kind: Attention
    sentence: Text
    at: datetime  # when it happened (for EXPIRING: when the link expires)
    link_id: str | None = None
    ref: str | None = None
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class AttentionGroup:
    kind: Attention
    count: int
    items: tuple[AttentionItem, ...]

    @property
    def more(self) -> int:
        return max(0, self.count - len(self.items))


def period_bounds(
    period: Period, today: date, zone: ZoneInfo, season_start: int = 9
) -> tuple[date, date]:
    """The local first day of ``period`` containing ``today`` and the first day after it."""
    if period is Period.MONTH:
        first = today.replace(day=1)
        after = _add_months(first, 1)
    else:
        year = today.year if today.month >= season_start else today.year - 1
        first = date(year, season_start, 1)
        after = _add_months(first, 12)
    return first, after


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant ``day`` starts in ``zone`` (as UTC)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


# --- the figures' statement -------------------------------------------------------------------

_start = sa.bindparam("p_start", type_=Link.created_at.type)
_end = sa.bindparam("p_end", type_=Link.created_at.type)
_now = sa.bindparam("p_now", type_=Link.valid_until.type)


def _has_order(*statuses: str) -> sa.ColumnElement[bool]:
    # Written into the SQL (not bound), so the (status, link_id) index is a probe per link.
    # Its own alias of orders: the failed payments' query reads orders itself.
    other = sa.orm.aliased(Order)
    return (
        sa.select(sa.literal(1))
        .where(
            other.link_id == Link.id,
            other.status.in_([sa.literal_column(f"'{s}'") for s in statuses]),
        )
        .correlate(Link)
        .limit(1)
        .scalar_subquery()
        .is_not(None)
    )


# One row per link of the period with what its orders say (one look-up of its orders, by the
# link_id index), then the sums per currency: each link's orders are read once, not once per
# figure.
_PER_LINK = (
    sa.select(
        Link.currency,
        Link.amount_total,
        Link.open_count,
        Link.revoked_at,
        Link.valid_until,
        sa.func.max(sa.case((Order.status == "paid", 1), else_=0)).label("paid"),
        sa.func.max(
            sa.case((sa.or_(Order.status == "paid", Order.status == "processing"), 1), else_=0)
        ).label("settled"),
        sa.func.coalesce(sa.func.sum(Order.refunded_amount), 0).label("refunded"),
    )
    .select_from(Link)
    .outerjoin(Order, Order.link_id == Link.id)
    .where(Link.created_at >= _start, Link.created_at < _end)
    # By (created_at, id): the period's range of ix_links_created_at_id, already in groups
    # (by id alone, SQLite walks every link in id order).
    .group_by(Link.created_at, Link.id)
    .subquery("per_link")
)
_c = _PER_LINK.c


def _tally(condition: sa.ColumnElement[bool]) -> tuple[Any, Any]:
    return (
        sa.func.sum(sa.case((condition, 1), else_=0)),
        sa.func.sum(sa.case((condition, _c.amount_total), else_=0)),
    )


_FIGURES = sa.select(
    _c.currency,
    sa.func.count(),
    sa.func.sum(_c.amount_total),
    *_tally(_c.open_count > 0),
    *_tally(_c.paid == 1),
    # Still payable now: not paid, no bank payment on its way, not revoked, not expired.
    *_tally(sa.and_(_c.revoked_at.is_(None), _c.valid_until > _now, _c.settled == 0)),
    sa.func.sum(sa.case((_c.refunded > 0, 1), else_=0)),
    sa.func.sum(_c.refunded),
).group_by(_c.currency)


def _figures_of(row: Sequence[Any]) -> CurrencyFigures:
    numbers = [int(value or 0) for value in row[1:]]
    return CurrencyFigures(
        currency=str(row[0]),
        issued=Figure(numbers[0], numbers[1]),
        opened=Figure(numbers[2], numbers[3]),
        paid=Figure(numbers[4], numbers[5]),
        outstanding=Figure(numbers[6], numbers[7]),
        refunded=Figure(numbers[8], numbers[9]),
    )


# --- what needs attention beyond the digest's sections ------------------------------------------


def _failed_bank_payments(now: datetime) -> _Query:
    """A failed (delayed, bank debit) payment on a link nothing was paid on since, still live
    or not: the payer may think it went through."""
    return (
        sa.select(
            Order.link_id,
            Link.ref,
            Order.amount_total,
            Order.currency,
            Order.updated_at.label("at"),
        )
        .join(Link, Link.id == Order.link_id)
        .where(
            Order.status == "failed",
            Order.updated_at >= now - LOOK_BACK,
            Link.revoked_at.is_(None),
            ~_has_order("paid", "processing", "pending"),
        )
    )


def _expiring(now: datetime) -> _Query:
    return sa.select(
        Link.id.label("link_id"),
        Link.ref,
        Link.amount_total,
        Link.currency,
        Link.valid_until.label("at"),
    ).where(
        Link.valid_until >= now,
        Link.valid_until < now + EXPIRING_WITHIN,
        # Not through the revoked_at index (SQLite takes "IS NULL" for selective and reads
        # nearly every link): the valid_until range is the one to read.
        sa.case((Link.revoked_at.is_(None), 1), else_=0) == 1,
        ~_has_order("paid", "processing"),
    )


def _stuck_events(now: datetime) -> _Query:
    return (
        sa.select(
            WebhookEvent.event_id,
            WebhookEvent.type,
            Order.link_id,
            Link.ref,
            WebhookEvent.received_at.label("at"),
        )
        .outerjoin(Order, Order.id == WebhookEvent.order_id)
        .outerjoin(Link, Link.id == Order.link_id)
        .where(
            WebhookEvent.outcome.in_(("received", "deferred")),
            WebhookEvent.received_at < now - STUCK_AFTER,
            WebhookEvent.received_at >= now - LOOK_BACK,
        )
    )


_MESSAGE_KINDS: Final = {
    "link": Text("the payment link"),
    "renewal": Text("a fresh payment link"),
    "receipt": Text("a receipt"),
    "payment_failed": Text("a failed payment notice"),
    "paid_twice": Text("a paid twice notice"),
    "refunded": Text("a refund notice"),
    "reminder": Text("a reminder"),
    "invitation": Text("a console invitation"),
    "password_reset": Text("a console password reset"),
}


def _label(ref: str | None, link_id: str | None) -> str:
    return ref or link_id or "?"


def _sentence(kind: Attention, item: AlertItem) -> Text:
    label = _label(item.ref, item.link_id)
    if kind is Attention.ORPHAN:
        if item.link_id is None:
            return Text("A payment at Stripe names no link of this gateway")
        return Text("%(ref)s was paid at Stripe but the payment is not recorded here", ref=label)
    if kind is Attention.DUPLICATE:
        return Text("%(ref)s was paid twice: refund the second payment", ref=label)
    if kind is Attention.DISPUTE:
        return Text("The payer disputed the payment for %(ref)s", ref=label)
    if kind is Attention.FAILED_EMAIL:
        what = _MESSAGE_KINDS.get(item.kind or "", Text("an email"))
        if item.link_id:
            return Text("An email (%(what)s) for %(ref)s could not be sent", what=what, ref=label)
        return Text("An email (%(what)s) could not be sent", what=what)
    return Text(
        "A Stripe event (%(type)s) could not be applied", type=item.kind or "?"
    )  # FAILED_EVENT


_FROM_DIGEST: Final = {
    Attention.ORPHAN: Section.ORPHAN_PAYMENTS,
    Attention.DUPLICATE: Section.DUPLICATES,
    Attention.DISPUTE: Section.DISPUTES,
    Attention.FAILED_EMAIL: Section.FAILED_MESSAGES,
    Attention.FAILED_EVENT: Section.FAILED_EVENTS,
}


class Overview:
    def __init__(
        self, db: Database, clock: Clock, finder: AlertFinder, org_settings: OrgSettings
    ) -> None:
        self._db = db
        self._clock = clock
        self._finder = finder
        self._org = org_settings
        # (period, zone, season start) -> (computed at, figures): a handful of entries.
        self._cache: dict[tuple[Period, str, int], tuple[float, PeriodFigures]] = {}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def figures(self, period: Period | str) -> PeriodFigures:
        """The period's figures (see the module docstring), at most :data:`FIGURES_TTL` old."""
        period = Period(period)
        values = self._org.current()
        key = (period, values.timezone, values.season_start)
        cached = self._cache.get(key)
        if cached and self._clock.now() - cached[0] < FIGURES_TTL:
            return cached[1]
        zone = ZoneInfo(values.timezone)
        now = self.now()
        first, after = period_bounds(period, now.astimezone(zone).date(), zone, values.season_start)
        start, end = local_midnight(first, zone), local_midnight(after, zone)
        async with self._db.read() as session:
            rows = (
                await session.execute(_FIGURES, {"p_start": start, "p_end": end, "p_now": now})
            ).all()
        currencies = sorted((_figures_of(row) for row in rows), key=lambda f: -f.issued.count)
        result = PeriodFigures(
            period,
            first,
            after - timedelta(days=1),
            start,
            end,
            tuple(currencies),
            now,
        )
        self._cache = {k: v for k, v in self._cache.items() if k[1:] == key[1:]}
        self._cache[key] = (self._clock.now(), result)
        return result

    async def needs_attention(self, *, shown: int = SHOWN) -> list[AttentionGroup]:
        """Every kind with something in it, in :class:`Attention` order."""
        now = self.now()
        # Just past now: what was stamped this very second is included.
        until = now + timedelta(seconds=1)
        groups: dict[Attention, AttentionGroup] = {}
        # Every one still to deal with, however old: payments to refund or to attach.
        duplicates = await self._finder.collect(
            _EPOCH, until, shown=shown, only=(Section.ORPHAN_PAYMENTS, Section.DUPLICATES)
        )
        recent = await self._finder.collect(
            now - LOOK_BACK,
            until,
            shown=shown,
            only=(Section.DISPUTES, Section.FAILED_MESSAGES, Section.FAILED_EVENTS),
        )
        by_section = {s.name: s for s in (*duplicates.sections, *recent.sections)}
        for kind, name in _FROM_DIGEST.items():
            section = by_section.get(name)
            if section is None:
                continue
            items = tuple(
                AttentionItem(
                    kind,
                    _sentence(kind, item),
                    item.at,
                    item.link_id,
                    item.ref,
                    item.amount if kind is not Attention.FAILED_EMAIL else None,
                    item.currency if kind is not Attention.FAILED_EMAIL else None,
                )
                for item in section.items
            )
            groups[kind] = AttentionGroup(kind, section.count, items)
        async with self._db.read() as session:
            queries: tuple[tuple[Attention, _Query, Any], ...] = (
                (Attention.FAILED_BANK_PAYMENT, _failed_bank_payments(now), sa.desc("at")),
                (Attention.EXPIRING, _expiring(now), sa.asc("at")),
                (Attention.STUCK_EVENT, _stuck_events(now), sa.asc("at")),
            )
            for kind, query, order in queries:
                count = (
                    await session.execute(sa.select(sa.func.count()).select_from(query.subquery()))
                ).scalar_one()
                if not count:
                    continue
                rows = (await session.execute(query.order_by(order).limit(shown))).all()
                groups[kind] = AttentionGroup(
                    kind, count, tuple(_own_item(kind, row._mapping) for row in rows)
                )
        return [groups[kind] for kind in Attention if kind in groups]


def _own_item(kind: Attention, row: sa.RowMapping) -> AttentionItem:
    label = _label(row.get("ref"), row.get("link_id"))
    if kind is Attention.FAILED_BANK_PAYMENT:
        sentence = Text(
            "A bank payment for %(ref)s failed and nothing has been paid since", ref=label
        )
    elif kind is Attention.EXPIRING:
        sentence = Text("%(ref)s expires soon and has not been paid", ref=label)
    else:
        sentence = Text("A Stripe event (%(type)s) has still not been applied", type=row["type"])
    return AttentionItem(
        kind,
        sentence,
        row["at"],
        row.get("link_id"),
        row.get("ref"),
        row.get("amount_total"),
        row.get("currency"),
    )
