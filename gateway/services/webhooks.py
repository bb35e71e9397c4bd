"""Stripe events, applied once each (DESIGN §3, Webhooks).

The inbox row and the state change commit in one transaction, so an event is either fully applied
and remembered, or neither (and Stripe's retry applies it later). Transitions are monotonic, so a
duplicate, late or reordered event changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import WebhookEvent
from gateway.adapters.stripe_checkout import session_info
from gateway.clock import Clock
from gateway.domain.orders import SessionOutcome
from gateway.services.payments import record_session

log = logging.getLogger(__name__)

# Event type -> the outcome it reports (None: read it from the session's payment_status).
SESSION_EVENTS: Mapping[str, SessionOutcome | None] = {
    "checkout.session.completed": None,
    "checkout.session.async_payment_succeeded": SessionOutcome.PAID,
    "checkout.session.async_payment_failed": SessionOutcome.FAILED,
    "checkout.session.expired": SessionOutcome.EXPIRED,
}


class MalformedEvent(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class EventResult:
    event_id: str
    outcome: str  # applied | unchanged | ignored | duplicate
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
    return event_id, event_type, obj


class WebhookService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def handle(self, event: Any, *, source: str = "webhook") -> EventResult:
        event_id, event_type, obj = parse_event(event)
        now = datetime.fromtimestamp(self._clock.now(), UTC)
        async with self._db.write() as session:
            seen = await session.get(WebhookEvent, event_id)
            if seen is not None and seen.outcome in ("applied", "unchanged", "ignored"):
                seen.attempts += 1
                return EventResult(event_id, "duplicate", seen.order_id)
            outcome, order_id = "ignored", None
            if event_type in SESSION_EVENTS:
                try:
                    info = session_info(obj)
                except (KeyError, TypeError, ValueError) as exc:
                    raise MalformedEvent(f"not a checkout session: {exc}") from None
                recorded = await record_session(
                    session, info, outcome=SESSION_EVENTS[event_type], actor=source, now=now
                )
                if recorded.known:
                    outcome = "applied" if recorded.changed else "unchanged"
                    order_id = recorded.order_id
            if seen is None:
                session.add(
                    WebhookEvent(
                        event_id=event_id,
                        type=event_type,
                        received_at=now,
                        processed_at=now,
                        source=source,
                        outcome=outcome,
                        order_id=order_id,
                        attempts=1,
                    )
                )
            else:
                seen.outcome, seen.order_id, seen.processed_at = outcome, order_id, now
                seen.attempts += 1
        return EventResult(event_id, outcome, order_id)
