"""The emulator's state: every object it has created, keyed by id, in creation order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.clock import Clock
from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.ids import IdFactory

Obj = dict[str, Any]


@dataclass(frozen=True)
class RequestContext:
    """Which API request caused a change; copied into the ``request`` field of its events.
    Changes made by the payer on the hosted page or from the "dashboard" have none."""

    request_id: str | None = None
    idempotency_key: str | None = None


NO_REQUEST = RequestContext()


@dataclass
class SessionExtras:
    """What a session was created with that Stripe does not show on the session object."""

    line_items: list[Obj]
    payment_intent_metadata: dict[str, str]
    payment_intent_description: str | None
    # The create request's parameters as decoded, for tests asking what the gateway sent.
    params: dict[str, Any] = field(default_factory=dict)
    declines: int = 0


@dataclass
class Store:
    clock: Clock
    ids: IdFactory
    sessions: dict[str, Obj] = field(default_factory=dict)
    session_extras: dict[str, SessionExtras] = field(default_factory=dict)
    payment_intents: dict[str, Obj] = field(default_factory=dict)
    charges: dict[str, Obj] = field(default_factory=dict)
    refunds: dict[str, Obj] = field(default_factory=dict)
    disputes: dict[str, Obj] = field(default_factory=dict)
    # payment intent id -> the session that created it, for settle/refund lookups.
    session_by_payment_intent: dict[str, str] = field(default_factory=dict)

    def now(self) -> int:
        """Stripe timestamps are whole seconds."""
        return int(self.clock.now())

    def session(self, session_id: str) -> Obj:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise StripeError.missing("checkout.session", session_id, param="session") from None

    def payment_intent(self, payment_intent_id: str) -> Obj:
        try:
            return self.payment_intents[payment_intent_id]
        except KeyError:
            raise StripeError.missing("payment_intent", payment_intent_id, param="intent") from None

    def charge(self, charge_id: str) -> Obj:
        try:
            return self.charges[charge_id]
        except KeyError:
            raise StripeError.missing("charge", charge_id, param="charge") from None

    def refund(self, refund_id: str) -> Obj:
        try:
            return self.refunds[refund_id]
        except KeyError:
            raise StripeError.missing("refund", refund_id, param="refund") from None

    def dispute(self, dispute_id: str) -> Obj:
        try:
            return self.disputes[dispute_id]
        except KeyError:
            raise StripeError.missing("dispute", dispute_id, param="dispute") from None

    def lookup(self, object_id: str) -> Obj | None:
        """Any object by id, for ``expand``."""
        for table in (
            self.payment_intents,
            self.charges,
            self.sessions,
            self.refunds,
            self.disputes,
        ):
            if object_id in table:
                return table[object_id]
        return None
