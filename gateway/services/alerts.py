"""Alerts to the organisation (issue 14 item 4): a short digest to ``alerts.email`` of what
needs a person, at most one per ``alerts.interval``, and none when there is nothing.

What needs a person (:class:`AlertFinder`, each found by when it happened):

- a duplicate payment not refunded (``orders.duplicate_of``, by ``paid_at``);
- a dispute (the ``order.disputed`` audit entry);
- a refund made outside the gateway, in Stripe's dashboard or API: a refund recorded from a
  Stripe event (``payments.record_refund``) on an order the gateway never refunded itself. The
  gateway's own refund (``PaymentRecorder.refund_duplicate``) stores ``orders.refund_id`` in the
  transaction that records it, and the ``charge.refunded`` event that echoes it either changes
  nothing or, arriving first, is written on that same order: an order with a ``refund_id`` is
  the gateway's doing, one without is someone else's;
- an email that failed for good (an outbox row ``failed``, by ``updated_at``; digests aside: a
  digest about the digest that could not reach the same address would never reach it either);
- a Stripe event that could not be applied (``webhook_events.outcome = 'failed'``);
- a payment the gateway had missed and the reconciler found (``order.paid`` written by the
  reconciler: ``reconciler`` when it settles or recovers an order, ``reconcile`` when it
  replays a missed event).

Exactly once (:class:`AlertScheduler`): time is cut into windows of ``alerts.interval`` from the
epoch; a digest covers whole windows that ended at least :data:`GRACE` ago (so a transaction
that stamped its row just before a window's end has committed) and that no earlier run checked.
Where checking stopped is a row in ``kv``, moved forward by a compare-and-set in the same
transaction that writes the digest's outbox row, whose subject is the start of what it covers:
any number of runs and replicas write one row per window, and a window is never reported
twice. After a stop of the service the first digest covers the windows missed (up to
:data:`MAX_CATCH_UP`). The message itself is built when it is sent
(gateway.services.messages.alerts), from the rows as they are then: a duplicate refunded in the
meantime is no longer listed.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeAlias

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.adapters.db.dialects import ByDialect, insert_ignore
from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import (
    AuditEntry,
    KeyValue,
    Link,
    Order,
    OrphanPayment,
    OutboxMessage,
    WebhookEvent,
)
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.orders import OrderStatus
from gateway.domain.outbox import Kind, State
from gateway.services.outbox import Outbox

log = logging.getLogger(__name__)

# Where checking stopped: the end of the last window a run looked at (whether or not it found
# anything), so a window is looked at once.
CHECKED_KEY: Final = "alerts:checked_until"
# A row is stamped when its transaction starts and visible when it commits: a window is looked
# at only once this much after its end, so nothing stamped inside it is still on its way.
GRACE: Final = timedelta(minutes=1)
# After a long stop, the first digest reaches back this far at most.
MAX_CATCH_UP: Final = timedelta(days=7)
# Items listed per section; the count says how many there are.
SHOWN: Final = 10
# Actors of the reconciler's writes (settling and recovering; replaying a missed event).
RECONCILER_ACTORS: Final = ("reconciler", "reconcile")
REFUND_ACTIONS: Final = ("order.refunded", "order.partially_refunded")

# A section's rows, and the column that says when each happened.
_Query: TypeAlias = tuple["sa.Select[*tuple[Any, ...]]", Any]

_KV_INSERT: ByDialect = insert_ignore(
    KeyValue.__table__,  # type: ignore[arg-type]
    index_elements=[KeyValue.key],  # type: ignore[list-item]
)


class Section(enum.StrEnum):
    """What a digest can report, in the order it lists them."""

    DUPLICATES = "duplicates"
    DISPUTES = "disputes"
    OUTSIDE_REFUNDS = "outside_refunds"
    FAILED_MESSAGES = "failed_messages"
    FAILED_EVENTS = "failed_events"
    MISSED_PAYMENTS = "missed_payments"
    # Paid at Stripe, not recorded here (issue 16): found by the reconciler, not yet attached.
    ORPHAN_PAYMENTS = "orphan_payments"


@dataclass(frozen=True, slots=True)
class AlertItem:
    """One thing to look at. ``id``: the order, outbox row or Stripe event it is about."""

    at: datetime
    id: str
    link_id: str | None = None
    ref: str | None = None
    amount: int | None = None
    currency: str | None = None
    # What a person needs besides the amount: a message's kind and recipient, an event's type,
    # and the error that stopped it.
    kind: str | None = None
    recipient: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AlertSection:
    name: Section
    count: int
    items: tuple[AlertItem, ...]  # the first few, oldest first


@dataclass(frozen=True, slots=True)
class Digest:
    since: datetime
    until: datetime
    sections: tuple[AlertSection, ...]  # only those with something in them

    @property
    def count(self) -> int:
        return sum(section.count for section in self.sections)


def stamp(moment: datetime) -> str:
    """A window's edge as stored (``kv``, the outbox row's subject and payload)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def due_window(
    now: datetime, interval: timedelta, checked_until: datetime | None
) -> tuple[datetime, datetime] | None:
    """``[since, until)``: the whole windows of ``interval`` that ended :data:`GRACE` before
    ``now`` and were not checked yet; None when there is none. ``until`` is a stable function
    of time (the same on every replica), so is ``since`` given the same ``checked_until``."""
    step = int(interval.total_seconds())
    ready = int((now - GRACE).timestamp())
    until = datetime.fromtimestamp(ready - ready % step, UTC)
    since = until - interval if checked_until is None else checked_until
    since = max(since, until - MAX_CATCH_UP)
    return (since, until) if since < until else None


class AlertFinder:
    """What needs a person, among what happened in ``[since, until)`` (read only)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def collect(
        self,
        since: datetime,
        until: datetime,
        *,
        shown: int = SHOWN,
        only: Iterable[Section] | None = None,
    ) -> Digest:
        """``only``: these sections (the console's overview reads some), else every one."""
        wanted = tuple(Section) if only is None else tuple(only)
        sections: list[AlertSection] = []
        async with self._db.read() as session:
            for name in wanted:
                query, at = _QUERIES[name](since, until)
                count = (
                    await session.execute(sa.select(sa.func.count()).select_from(query.subquery()))
                ).scalar_one()
                if not count:
                    continue
                rows = (
                    (await session.execute(query.order_by(at).limit(shown))).all() if shown else []
                )
                items = tuple(_item(row._mapping) for row in rows)
                sections.append(AlertSection(name, count, items))
        return Digest(since, until, tuple(sections))


def _in(column: Any, since: datetime, until: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(column >= since, column < until)


_ORDER_COLUMNS = (
    Order.id,
    Order.link_id,
    Link.ref,
    Order.amount_total.label("amount"),
    Order.currency,
)


def _duplicates(since: datetime, until: datetime) -> _Query:
    query = (
        sa.select(*_ORDER_COLUMNS, Order.paid_at.label("at"))
        .join(Link, Link.id == Order.link_id)
        .where(
            Order.duplicate_of.is_not(None),
            # Not a probe of the status index (every paid order): the duplicates' partial index
            # (ix_orders_duplicates) is the one to read. Statuses are stored lower-case.
            sa.func.lower(Order.status) == OrderStatus.PAID.value,
            Order.refund_id.is_(None),
            _in(Order.paid_at, since, until),
        )
    )
    return query, Order.paid_at


def _audited(
    since: datetime, until: datetime, *conditions: sa.ColumnElement[bool], amount: Any = None
) -> _Query:
    columns = list(_ORDER_COLUMNS)
    if amount is not None:
        columns[3] = amount.label("amount")
    query = (
        sa.select(*columns, AuditEntry.at)
        .join(Order, Order.id == AuditEntry.order_id)
        .join(Link, Link.id == Order.link_id)
        .where(_in(AuditEntry.at, since, until), *conditions)
    )
    return query, AuditEntry.at


def _disputes(since: datetime, until: datetime) -> _Query:
    return _audited(since, until, AuditEntry.action == "order.disputed")


def _outside_refunds(since: datetime, until: datetime) -> _Query:
    return _audited(
        since,
        until,
        AuditEntry.action.in_(REFUND_ACTIONS),
        Order.refund_id.is_(None),
        amount=Order.refunded_amount,
    )


def _missed_payments(since: datetime, until: datetime) -> _Query:
    return _audited(
        since,
        until,
        AuditEntry.action == "order." + OrderStatus.PAID.value,
        AuditEntry.actor.in_(RECONCILER_ACTORS),
    )


def _failed_messages(since: datetime, until: datetime) -> _Query:
    t = OutboxMessage
    query = (
        sa.select(
            t.id,
            t.link_id,
            Link.ref,
            t.kind,
            t.recipient,
            t.last_error.label("error"),
            t.updated_at.label("at"),
        )
        .outerjoin(Link, Link.id == t.link_id)
        .where(
            t.state == State.FAILED.value,
            t.kind != Kind.ALERT_DIGEST.value,
            _in(t.updated_at, since, until),
        )
    )
    return query, t.updated_at


def _failed_events(since: datetime, until: datetime) -> _Query:
    e = WebhookEvent
    query = (
        sa.select(
            e.event_id.label("id"),
            Order.link_id,
            Link.ref,
            Order.amount_total.label("amount"),
            Order.currency,
            e.type.label("kind"),
            e.error,
            e.processed_at.label("at"),
        )
        .outerjoin(Order, Order.id == e.order_id)
        .outerjoin(Link, Link.id == Order.link_id)
        .where(e.outcome == "failed", _in(e.processed_at, since, until))
    )
    return query, e.processed_at


def _orphan_payments(since: datetime, until: datetime) -> _Query:
    o = OrphanPayment
    query = (
        sa.select(
            o.id,
            o.link_id,
            Link.ref,
            o.amount,
            o.currency,
            o.found_at.label("at"),
        )
        .outerjoin(Link, Link.id == o.link_id)
        .where(o.attached_at.is_(None), _in(o.found_at, since, until))
    )
    return query, o.found_at


_QUERIES = {
    Section.DUPLICATES: _duplicates,
    Section.DISPUTES: _disputes,
    Section.OUTSIDE_REFUNDS: _outside_refunds,
    Section.FAILED_MESSAGES: _failed_messages,
    Section.FAILED_EVENTS: _failed_events,
    Section.MISSED_PAYMENTS: _missed_payments,
    Section.ORPHAN_PAYMENTS: _orphan_payments,
}


_ITEM_FIELDS = frozenset(field.name for field in dataclasses.fields(AlertItem))


def _item(row: sa.RowMapping) -> AlertItem:
    return AlertItem(**{str(name): value for name, value in row.items() if name in _ITEM_FIELDS})


@dataclass(frozen=True, slots=True)
class AlertRun:
    """What one run did: ``window`` looked at (None: nothing due), ``count`` things found,
    ``written``: this run wrote the digest's row (another replica may have, instead)."""

    window: tuple[datetime, datetime] | None = None
    count: int = 0
    written: bool = False


class AlertScheduler:
    """Owes the digest of each due window (the app's periodic task, on every replica)."""

    def __init__(
        self, db: Database, clock: Clock, outbox: Outbox, finder: AlertFinder, settings: Settings
    ) -> None:
        self._db = db
        self._clock = clock
        self._outbox = outbox
        self._finder = finder
        self._settings = settings

    @property
    def enabled(self) -> bool:
        return bool(self._settings.alerts.email) and self._outbox.enabled

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def run(self) -> AlertRun:
        """Look at the windows due, and owe their digest when something needs a person."""
        if not self.enabled:
            return AlertRun()
        interval = timedelta(seconds=self._settings.alerts.interval)
        async with self._db.read() as session:
            checked = await session.get(KeyValue, CHECKED_KEY)
        window = due_window(self.now(), interval, parse_stamp(checked.value) if checked else None)
        if window is None:
            return AlertRun()
        since, until = window
        # Read outside the write transaction (SQLite's one write lock is not held for it); the
        # compare-and-set below makes sure it is still the window nobody else has reported.
        digest = await self._finder.collect(since, until, shown=0)
        expected = checked.value if checked else stamp(since)
        async with self._db.write() as session:
            if not await self._claim(session, expected, until):
                return AlertRun(window, digest.count)
            if digest.count:
                await self._owe(session, digest)
        if digest.count:
            log.info(
                "alert digest owed",
                extra={"since": stamp(since), "until": stamp(until), "count": digest.count},
            )
        return AlertRun(window, digest.count, written=bool(digest.count))

    async def _claim(self, session: AsyncSession, expected: str, until: datetime) -> bool:
        """Move where checking stopped from ``expected`` to ``until``; False when another run
        moved it first (it reports this window, or already did)."""
        now = self.now()
        await session.execute(
            _KV_INSERT.pick(session), [{"key": CHECKED_KEY, "value": expected, "updated_at": now}]
        )
        moved = await session.execute(
            sa.update(KeyValue)
            .where(KeyValue.key == CHECKED_KEY, KeyValue.value == expected)
            .values(value=stamp(until), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(moved.rowcount)  # type: ignore[attr-defined]

    async def _owe(self, session: AsyncSession, digest: Digest) -> None:
        await self._outbox.add(
            session,
            kind=Kind.ALERT_DIGEST,
            subject=stamp(digest.since),
            recipient=self._settings.alerts.email,
            locale=self._settings.checkout.default_locale,
            payload={"since": stamp(digest.since), "until": stamp(digest.until)},
        )


def window_of(payload: str) -> tuple[datetime, datetime]:
    """The window a digest row covers, from its payload."""
    data = json.loads(payload)
    return parse_stamp(data["since"]), parse_stamp(data["until"])
