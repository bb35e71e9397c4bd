"""Stripe events, applied once each (docs/design.md §3, Webhooks).

Every delivery is first written to the inbox (committed), then applied in a transaction of its
own that also marks the inbox row done. So an event is either fully applied and remembered, or
left in the inbox as ``received`` / ``deferred`` / ``failed`` with its error, for Stripe's retry or
the reconciler to apply later. Transitions are monotonic, so a duplicate, late or reordered event
changes nothing.

An event is checked before anything is written (:func:`parse_event`): every field the gateway
reads must have the type and range Stripe documents, and every string it could store or query
with must be printable text (no lone surrogate, no NUL) of a bounded length. An event that fails
is *invalid*: never applied, recorded in the inbox as ``invalid`` with the reason when its id can
be stored safely, and not recorded at all otherwise (see :mod:`gateway.web.stripe_webhook` for
what the sender is answered).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import failpoints
from gateway.adapters.db.dialects import upsert
from gateway.adapters.db.engine import Database, RowTransaction, run
from gateway.adapters.db.models import WebhookEvent
from gateway.clock import Clock
from gateway.domain.orders import SessionOutcome
from gateway.domain.payments import SessionInfo
from gateway.services.payments import (
    NotYetApplicable,
    PayerNotices,
    PaymentRecorder,
    Recorded,
    record_card,
    record_dispute,
    record_refund,
    record_session,
)

log = logging.getLogger(__name__)

# Event type -> the outcome it reports (None: read it from the session's payment_status).
SESSION_EVENTS: Mapping[str, SessionOutcome | None] = {
    "checkout.session.completed": None,
    "checkout.session.async_payment_succeeded": SessionOutcome.PAID,
    "checkout.session.async_payment_failed": SessionOutcome.FAILED,
    "checkout.session.expired": SessionOutcome.EXPIRED,
}


class _RecordCharge(Protocol):
    def __call__(
        self,
        session: AsyncSession,
        obj: Mapping[str, Any],
        /,
        *,
        actor: str,
        now: datetime,
        notices: PayerNotices | None = None,
    ) -> Awaitable[Recorded]: ...


# Event type -> how its charge or dispute is recorded.
CHARGE_EVENTS: Mapping[str, _RecordCharge] = {
    "charge.succeeded": record_card,
    "charge.refunded": record_refund,
    "charge.dispute.created": record_dispute,
}
# Every type the gateway applies, and so every type its Stripe webhook endpoint must send (the
# start-up log line and the reconciler's event list use this tuple; a test holds the README to it).
HANDLED_TYPES: tuple[str, ...] = (*SESSION_EVENTS, *CHARGE_EVENTS)
# Final outcomes: a later delivery of the same event id changes nothing.
DONE = ("applied", "unchanged", "ignored", "invalid")
# The last second a ``datetime`` can hold (9999-12-31 23:59:59 UTC): a larger timestamp is a
# broken event, not a date.
MAX_TIMESTAMP = 253_402_300_799
# Above any amount Stripe accepts (12 digits at most), far below what a BIGINT column holds.
MAX_AMOUNT = 10**12


# The inbox statements, built once (they run on every delivery; see engine.run).
_inbox = cast(sa.Table, WebhookEvent.__table__)
_event_id = sa.bindparam("p_event_id", type_=_inbox.c.event_id.type)
_at = sa.bindparam("p_at", type_=_inbox.c.received_at.type)


# Insert the delivery, or count one more attempt; either way, say what became of it.
_RECEIVE = upsert(
    _inbox,
    values={
        "event_id": _event_id,
        "type": sa.bindparam("p_type", type_=_inbox.c.type.type),
        "received_at": _at,
        "source": sa.bindparam("p_source", type_=_inbox.c.source.type),
        "outcome": "received",
        "attempts": 1,
    },
    index_elements=[_inbox.c.event_id],
    set_=lambda _: {"attempts": _inbox.c.attempts + 1},
    returning=[_inbox.c.outcome],
)
# An unusable event, recorded as such unless its id is already there.
_RECEIVE_INVALID = upsert(
    _inbox,
    values={
        "event_id": _event_id,
        "type": sa.bindparam("p_type", type_=_inbox.c.type.type),
        "received_at": _at,
        "processed_at": _at,
        "source": sa.bindparam("p_source", type_=_inbox.c.source.type),
        "outcome": "invalid",
        "error": sa.bindparam("p_error", type_=_inbox.c.error.type),
        "attempts": 1,
    },
    index_elements=[_inbox.c.event_id],
    set_=lambda _: {"attempts": _inbox.c.attempts + 1},
    returning=[_inbox.c.outcome, _inbox.c.order_id],
)
_INBOX_ROW = sa.select(_inbox.c.outcome, _inbox.c.order_id).where(_inbox.c.event_id == _event_id)
_INBOX_DONE = (
    sa.update(_inbox)
    .where(_inbox.c.event_id == _event_id)
    .values(
        outcome=sa.bindparam("p_outcome", type_=_inbox.c.outcome.type),
        order_id=sa.bindparam("p_order_id", type_=_inbox.c.order_id.type),
        processed_at=_at,
        error=None,
    )
)


class InvalidEvent(ValueError):
    """A signed event the gateway cannot use. ``event_id`` is set only when the id itself is safe
    to store (the inbox records the event as ``invalid``); ``event_type`` is always storable."""

    def __init__(self, reason: str, event_id: str | None = None, event_type: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.event_type = event_type


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """A usable event, checked once (:func:`parse_event`); a session's event carries the
    session read from it, so nothing reads the object again."""

    id: str
    type: str
    obj: Mapping[str, Any]
    session: SessionInfo | None = None


@dataclass(frozen=True, slots=True)
class EventResult:
    event_id: str
    outcome: str  # applied | unchanged | ignored | invalid | duplicate | deferred
    order_id: str | None = None
    error: str | None = None  # why an event is invalid


def is_text(value: object, limit: int) -> bool:
    """A string that can be stored and sent to either database as it is: printable (so no lone
    surrogate, no NUL, no control character) and at most ``limit`` characters."""
    return isinstance(value, str) and len(value) <= limit and value.isprintable()


def storable(value: object, limit: int) -> str:
    """``value`` as text that any column and log can take: a lone surrogate or a NUL becomes its
    backslash escape (so nothing unencodable is ever stored), anything but a string its repr."""
    if not isinstance(value, str):
        return ascii(value)[:limit]
    text = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")[:limit]


class _Unusable(ValueError):
    pass


class _Check:
    """Checks on the fields of one Stripe object; the first failure raises ``_Unusable``."""

    __slots__ = ("obj", "where")

    def __init__(self, obj: Mapping[str, Any], where: str) -> None:
        self.obj = obj
        self.where = where

    def fail(self, key: str, what: str) -> _Unusable:
        return _Unusable(f"{self.where}.{key} is not {what}")

    def text(self, key: str, limit: int, *, required: bool = False) -> None:
        value = self.obj.get(key)
        if value is None and not required:
            return
        if not is_text(value, limit) or (required and not value):
            raise self.fail(key, f"printable text of at most {limit} characters")

    def timestamp(self, key: str) -> None:
        value = self.obj.get(key)
        if type(value) is not int or not 0 < value <= MAX_TIMESTAMP:
            raise self.fail(key, "a Unix timestamp (a whole number of seconds)")

    def amount(self, key: str) -> None:
        value = self.obj.get(key)
        if value is not None and (type(value) is not int or not 0 <= value <= MAX_AMOUNT):
            raise self.fail(key, "an amount in minor units")

    def flag(self, key: str) -> None:
        if self.obj.get(key) is not None and not isinstance(self.obj.get(key), bool):
            raise self.fail(key, "true or false")

    def payment_intent(self) -> None:
        value = self.obj.get("payment_intent")
        if isinstance(value, dict):
            value = value.get("id")
            if value is None:
                raise self.fail("payment_intent.id", "an id")
        if value is not None and not (is_text(value, 255) and value):
            raise self.fail("payment_intent", "an id")

    def metadata(self) -> None:
        """Only ``order_id`` is read; the rest is never stored."""
        metadata = self.obj.get("metadata")
        if metadata is None:
            return
        if not isinstance(metadata, dict):
            raise self.fail("metadata", "an object")
        _Check(metadata, f"{self.where}.metadata").text("order_id", 255)


def _session(obj: Mapping[str, Any]) -> SessionInfo:
    """A Checkout Session's fields, checked (everything ``record_session`` reads), as the
    domain's :class:`SessionInfo`: read once, here."""
    _check_session(obj)
    payment_intent = obj.get("payment_intent")
    if isinstance(payment_intent, dict):
        payment_intent = payment_intent.get("id")
    metadata = obj.get("metadata") or {}
    return SessionInfo(
        id=str(obj["id"]),
        url=obj.get("url"),
        status=str(obj["status"]),
        payment_status=str(obj["payment_status"]),
        expires_at=datetime.fromtimestamp(obj["expires_at"], UTC),
        created_at=datetime.fromtimestamp(obj["created"], UTC),
        client_reference_id=obj.get("client_reference_id"),
        payment_intent_id=payment_intent,
        amount_total=obj.get("amount_total"),
        metadata={str(k): str(v) for k, v in dict(metadata).items()},
    )


def _check_session(obj: Mapping[str, Any]) -> None:
    check = _Check(obj, "data.object")
    check.text("id", 255, required=True)
    check.text("url", 8192)
    check.text("status", 32, required=True)
    check.text("payment_status", 32, required=True)
    check.timestamp("expires_at")
    check.timestamp("created")
    check.text("client_reference_id", 255)
    check.payment_intent()
    check.amount("amount_total")
    check.metadata()


def _check_charge(obj: Mapping[str, Any]) -> None:
    """Everything ``record_refund`` and ``record_dispute`` read from a charge or a dispute."""
    check = _Check(obj, "data.object")
    check.text("id", 255)
    check.payment_intent()
    check.metadata()
    check.amount("amount_refunded")
    check.flag("refunded")
    check.amount("amount")
    check.text("currency", 10)
    check.text("reason", 100)
    details = obj.get("payment_method_details")
    if details is not None:
        if not isinstance(details, dict):
            raise check.fail("payment_method_details", "an object")
        card = details.get("card")
        if card is not None:
            if not isinstance(card, dict):
                raise check.fail("payment_method_details.card", "an object")
            card_check = _Check(card, "data.object.payment_method_details.card")
            card_check.text("last4", 4)
            card_check.text("brand", 32)


def parse_event(event: object) -> ParsedEvent:
    """The event checked, or :class:`InvalidEvent` saying why it is unusable.

    Only the fields of the handled types are checked: an event of another type is acknowledged
    and ignored whatever its object holds, since nothing of it is read.
    """
    if not isinstance(event, dict):
        raise InvalidEvent("an event is a JSON object")
    event_id, event_type = event.get("id"), event.get("type")
    if not is_text(event_id, 255) or not event_id:
        raise InvalidEvent("the event id is not printable text of at most 255 characters")
    if not is_text(event_type, 100) or not event_type:
        raise InvalidEvent(
            "the event type is not printable text of at most 100 characters",
            event_id,
            storable(event_type, 100),
        )
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if event_type not in HANDLED_TYPES:
        return ParsedEvent(event_id, event_type, obj if isinstance(obj, dict) else {})
    try:
        if not isinstance(obj, dict):
            raise _Unusable("data.object is not an object")
        if event_type in SESSION_EVENTS:
            return ParsedEvent(event_id, event_type, obj, _session(obj))
        _check_charge(obj)
    except _Unusable as exc:
        raise InvalidEvent(str(exc), event_id, event_type) from None
    return ParsedEvent(event_id, event_type, obj)


class WebhookService:
    def __init__(self, db: Database, clock: Clock, recorder: PaymentRecorder) -> None:
        self._db = db
        self._clock = clock
        self._recorder = recorder

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def handle(
        self, event: object, *, source: str = "webhook", force: bool = False
    ) -> EventResult:
        """Store, then apply. Raises :class:`NotYetApplicable` when Stripe should retry.

        ``force`` re-applies an event already done (``gateway webhooks replay``); transitions
        are idempotent, so that can only fill in what is missing. An unusable event is not
        applied: the answer's outcome is ``invalid`` (see :func:`parse_event`).
        """
        try:
            parsed = parse_event(event)
        except InvalidEvent as exc:
            return await self._invalid(exc, source)
        event_id, event_type = parsed.id, parsed.type
        if not await self._receive(event_id, event_type, source) and not force:
            return EventResult(event_id, "duplicate")
        # A session's events are only plain statements: no ORM session needed (see write_rows).
        transaction = self._db.write_rows if event_type in SESSION_EVENTS else self._db.write
        try:
            async with transaction() as session:
                # Decided under the write lock: a concurrent delivery may have applied it.
                (done,) = await run(session, _INBOX_ROW, {"p_event_id": event_id})
                if done.outcome in DONE and not force:
                    return EventResult(event_id, "duplicate", done.order_id)
                recorded = await self._apply(session, parsed, source)
                outcome = "ignored"
                if recorded.known:
                    outcome = "applied" if recorded.changed else "unchanged"
                await run(
                    session,
                    _INBOX_DONE,
                    {
                        "p_event_id": event_id,
                        "p_outcome": outcome,
                        "p_order_id": recorded.order_id,
                        "p_at": self.now(),
                    },
                )
                failpoints.hit("during_webhook_apply")  # applied, not yet committed
        except NotYetApplicable as exc:
            await self._mark(event_id, "deferred", str(exc))
            raise
        except Exception as exc:
            await self._mark(event_id, "failed", storable(f"{type(exc).__name__}: {exc}", 1000))
            raise
        await self._recorder.follow_up(recorded, actor=source)
        return EventResult(event_id, outcome, recorded.order_id)

    async def _receive(self, event_id: str, event_type: str, source: str) -> bool:
        """Write the delivery to the inbox (one statement). False when the event was already
        applied."""
        params = {
            "p_event_id": event_id,
            "p_type": event_type,
            "p_at": self.now(),
            "p_source": source,
        }
        async with self._db.write_rows() as session:
            (row,) = await run(session, _RECEIVE, params)
        return row.outcome not in DONE

    async def _invalid(self, exc: InvalidEvent, source: str) -> EventResult:
        """Record an unusable event as ``invalid`` (when its id can be stored), changing nothing
        else. A row already there keeps its outcome: an event id is one event."""
        log.warning(
            "webhook event unusable",
            extra={"event_id": exc.event_id, "event_type": exc.event_type, "reason": exc.reason},
        )
        if exc.event_id is None:
            return EventResult("", "invalid", error=exc.reason)
        params = {
            "p_event_id": exc.event_id,
            "p_type": exc.event_type,
            "p_at": self.now(),
            "p_source": source,
            "p_error": exc.reason,
        }
        async with self._db.write() as session:
            (row,) = await run(session, _RECEIVE_INVALID, params)
        if row.outcome != "invalid":
            return EventResult(exc.event_id, "duplicate", row.order_id)
        return EventResult(exc.event_id, "invalid", error=exc.reason)

    async def _mark(self, event_id: str, outcome: str, error: str) -> None:
        try:
            async with self._db.write() as session:
                await session.execute(
                    sa.update(WebhookEvent)
                    .where(WebhookEvent.event_id == event_id)
                    .values(outcome=outcome, error=error, processed_at=self.now())
                )
        except Exception:
            log.exception("could not record a webhook failure", extra={"event_id": event_id})

    async def _apply(
        self, session: AsyncSession | RowTransaction, event: ParsedEvent, actor: str
    ) -> Recorded:
        now = self.now()
        notices = self._recorder.notices  # what the payer is owed, in this same transaction
        if event.session is not None:
            outcome = SESSION_EVENTS[event.type]
            return await record_session(
                session, event.session, outcome=outcome, actor=actor, now=now, notices=notices
            )
        record = CHARGE_EVENTS.get(event.type)
        if record is None:
            return Recorded(None)
        assert isinstance(session, AsyncSession)  # only a session's events use write_rows
        return await record(session, event.obj, actor=actor, now=now, notices=notices)

    async def recent(self, *, limit: int = 50, outcome: str | None = None) -> list[WebhookEvent]:
        async with self._db.read() as session:
            stmt = sa.select(WebhookEvent).order_by(WebhookEvent.received_at.desc()).limit(limit)
            if outcome:
                stmt = stmt.where(WebhookEvent.outcome == outcome)
            return list((await session.execute(stmt)).scalars())

    async def known_event_ids(self, event_ids: list[str]) -> set[str]:
        """Which of these events are already applied (for the reconciler's replay)."""
        if not event_ids:
            return set()
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(WebhookEvent.event_id).where(
                    WebhookEvent.event_id.in_(event_ids), WebhookEvent.outcome.in_(DONE)
                )
            )
            return {row[0] for row in rows}
