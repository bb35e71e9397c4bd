"""Stripe events, applied once each (DESIGN §3, Webhooks).

Every delivery is first written to the inbox (committed), then applied in a transaction of its
own that also marks the inbox row done. So an event is either fully applied and remembered, or
left in the inbox as ``received`` / ``deferred`` / ``failed`` with its error, for Stripe's retry or
the reconciler to apply later. Transitions are monotonic, so a duplicate, late or reordered event
changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gateway import failpoints
from gateway.adapters.db.engine import Database, run
from gateway.adapters.db.models import WebhookEvent
from gateway.adapters.stripe_checkout import session_info
from gateway.clock import Clock
from gateway.domain.orders import SessionOutcome
from gateway.services.payments import (
    NotYetApplicable,
    PaymentRecorder,
    Recorded,
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
CHARGE_EVENTS = ("charge.refunded", "charge.dispute.created")
HANDLED_TYPES = (*SESSION_EVENTS, *CHARGE_EVENTS)
DONE = ("applied", "unchanged", "ignored")


# The inbox statements, built once (they run on every delivery; see engine.run).
_inbox = cast(sa.Table, WebhookEvent.__table__)
_event_id = sa.bindparam("p_event_id", type_=_inbox.c.event_id.type)
_at = sa.bindparam("p_at", type_=_inbox.c.received_at.type)


def _receive_statement(sqlite: bool) -> Any:
    """Insert the delivery, or count one more attempt; either way, say what became of it."""
    insert = (sqlite_insert if sqlite else postgres_insert)(_inbox)
    return (
        insert.values(
            event_id=_event_id,
            type=sa.bindparam("p_type", type_=_inbox.c.type.type),
            received_at=_at,
            source=sa.bindparam("p_source", type_=_inbox.c.source.type),
            outcome="received",
            attempts=1,
        )
        .on_conflict_do_update(
            index_elements=[_inbox.c.event_id], set_={"attempts": _inbox.c.attempts + 1}
        )
        .returning(_inbox.c.outcome)
    )


_RECEIVE = {True: _receive_statement(sqlite=True), False: _receive_statement(sqlite=False)}
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


class MalformedEvent(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class EventResult:
    event_id: str
    outcome: str  # applied | unchanged | ignored | duplicate | deferred
    order_id: str | None = None


def parse_event(event: Any) -> tuple[str, str, Mapping[str, Any]]:
    if not isinstance(event, dict):
        raise MalformedEvent("an event is a JSON object")
    event_id, event_type = event.get("id"), event.get("type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise MalformedEvent("event id missing")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise MalformedEvent("event type missing")
    if not isinstance(obj, dict):
        raise MalformedEvent("event data.object missing")
    if event_type in SESSION_EVENTS:
        try:
            session_info(obj)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedEvent(f"not a checkout session: {exc}") from None
    return event_id, event_type, obj


class WebhookService:
    def __init__(self, db: Database, clock: Clock, recorder: PaymentRecorder) -> None:
        self._db = db
        self._clock = clock
        self._recorder = recorder

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def handle(
        self, event: Any, *, source: str = "webhook", force: bool = False
    ) -> EventResult:
        """Store, then apply. Raises :class:`NotYetApplicable` when Stripe should retry.

        ``force`` re-applies an event already done (``gateway webhooks replay``); transitions
        are idempotent, so that can only fill in what is missing.
        """
        event_id, event_type, obj = parse_event(event)
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
                recorded = await self._apply(session, event_type, obj, source)
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
            await self._mark(event_id, "failed", f"{type(exc).__name__}: {exc}"[:1000])
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
            (row,) = await run(session, _RECEIVE[self._db.is_sqlite], params)
        return row.outcome not in DONE

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
        self, session: Any, event_type: str, obj: Mapping[str, Any], actor: str
    ) -> Recorded:
        now = self.now()
        if event_type in SESSION_EVENTS:
            return await record_session(
                session, session_info(obj), outcome=SESSION_EVENTS[event_type], actor=actor, now=now
            )
        if event_type == "charge.refunded":
            return await record_refund(session, obj, actor=actor, now=now)
        if event_type == "charge.dispute.created":
            return await record_dispute(session, obj, actor=actor, now=now)
        return Recorded(None)

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
