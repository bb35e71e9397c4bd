"""The payment port: what the gateway needs from a payment provider, in its own terms.

The Stripe adapter implements it with the official SDK; nothing above it sees a Stripe type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from gateway.domain.errors import PaymentProviderUnavailable
from gateway.domain.orders import SessionOutcome


class ServerErrorKept(PaymentProviderUnavailable):
    """Stripe answered a request with a 500 and keeps that answer under the request's
    idempotency key, replaying it for 24 hours: the same key will not create anything.

    Stripe treats a 500 as indeterminate (an object may have been made anyway), so whoever
    gives up the key first looks for what it may have made.
    """


class KeyInUse(PaymentProviderUnavailable):
    """Stripe's 409 ``idempotency_key_in_use``: another request with the same idempotency key
    (another replica pressing the same order) is still being processed. Asking again once it
    is done gets its answer."""


@dataclass(frozen=True, slots=True)
class LineItemRequest:
    description: str
    amount: int  # minor units, per unit
    quantity: int = 1


@dataclass(frozen=True, slots=True)
class SessionRequest:
    """Everything needed to create one checkout session for one order.

    It must be a pure function of the stored order and link: a retry after a crash sends exactly
    the same parameters with the same idempotency key, which Stripe answers with the same session.
    """

    order_id: str
    link_id: str
    ref: str
    currency: str
    items: tuple[LineItemRequest, ...]
    customer_email: str
    success_url: str
    cancel_url: str
    expires_at: datetime
    # Checkout's ``locale`` (a value Stripe accepts, gateway.domain.locales.stripe_locale) as
    # stored on the order; None for an order from before languages: no ``locale`` is sent, so
    # its replays stay identical to its first request.
    locale: str | None = None

    @property
    def idempotency_key(self) -> str:
        # One order is one attempt; a new attempt is a new order and therefore a new key, so
        # Stripe never replays an expired session for a fresh attempt.
        return f"gateway-checkout-{self.order_id}"

    @property
    def metadata(self) -> dict[str, str]:
        return {"order_id": self.order_id, "link_id": self.link_id, "ref": self.ref}


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    url: str | None
    status: str  # open | complete | expired
    payment_status: str  # paid | unpaid | no_payment_required
    expires_at: datetime
    created_at: datetime
    client_reference_id: str | None = None
    payment_intent_id: str | None = None
    amount_total: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def order_id(self) -> str | None:
        return self.metadata.get("order_id") or self.client_reference_id

    def outcome(self) -> SessionOutcome:
        if self.status == "complete":
            if self.payment_status in ("paid", "no_payment_required"):
                return SessionOutcome.PAID
            return SessionOutcome.PROCESSING
        if self.status == "expired":
            return SessionOutcome.EXPIRED
        return SessionOutcome.OPEN


class Retirement(StrEnum):
    """How a pending attempt being retired ends, once its session can no longer be paid."""

    RECORD = "record"  # the payer got there first: a payment always wins (recorded, not canceled)
    STILL_OPEN = "still_open"  # Stripe did not expire it: nothing changes, try again later
    CANCEL = "cancel"  # the order is canceled (kept, with its reason)


def retirement(info: SessionInfo | None) -> Retirement:
    """The decision for an attempt whose session is ``info`` after expiring it (``None``: it
    never got one, and none can be made any more)."""
    if info is None:
        return Retirement.CANCEL
    outcome = info.outcome()
    if outcome in (SessionOutcome.PAID, SessionOutcome.PROCESSING):
        return Retirement.RECORD
    if outcome is SessionOutcome.OPEN:
        return Retirement.STILL_OPEN
    return Retirement.CANCEL


@dataclass(frozen=True, slots=True)
class PaymentIntentInfo:
    id: str
    status: str  # succeeded | processing | requires_payment_method | canceled | ...
    amount: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    currency: str = ""
    created: int = 0  # Unix time

    @property
    def gateway_order_id(self) -> str | None:
        """The order this gateway's metadata names (payment_intent_data.metadata)."""
        return self.metadata.get("order_id") or None

    @property
    def gateway_link_id(self) -> str | None:
        return self.metadata.get("link_id") or None

    def outcome(self) -> SessionOutcome | None:
        if self.status == "succeeded":
            return SessionOutcome.PAID
        if self.status == "processing":
            return SessionOutcome.PROCESSING
        if self.status in ("requires_payment_method", "canceled"):
            return SessionOutcome.FAILED
        return None


@dataclass(frozen=True, slots=True)
class CardInfo:
    """The card a payment was made with, as its charge's ``payment_method_details.card``."""

    last4: str
    brand: str = ""


@dataclass(frozen=True, slots=True)
class RefundInfo:
    id: str
    amount: int
    status: str  # pending | requires_action | succeeded | failed | canceled
    metadata: Mapping[str, str] = field(default_factory=dict)


class PaymentProvider(Protocol):
    async def create_session(self, request: SessionRequest) -> SessionInfo: ...

    async def retrieve_session(self, session_id: str) -> SessionInfo: ...

    async def expire_session(self, session_id: str) -> SessionInfo:
        """Expire an open session. Returns the session as Stripe has it afterwards: ``expired``,
        or ``complete`` when the payer got there first (which the caller must record)."""
        ...

    async def retrieve_payment_intent(self, payment_intent_id: str) -> PaymentIntentInfo: ...

    async def payment_card(self, payment_intent_id: str) -> CardInfo | None:
        """The card of the payment's latest charge (None: not a card, or no charge yet)."""
        ...

    async def payment_intent_of(self, object_id: str) -> str | None:
        """The payment a charge (``ch_``) or a dispute (``dp_``) belongs to (None: none)."""
        ...

    async def refund(
        self,
        payment_intent_id: str,
        *,
        idempotency_key: str,
        metadata: Mapping[str, str],
        amount: int | None = None,
    ) -> RefundInfo:
        """Refund ``amount`` (minor units; ``None``: all that is left) of the payment."""
        ...

    async def list_refunds(self, payment_intent_id: str) -> list[RefundInfo]:
        """Every refund of the payment, newest first."""
        ...

    async def list_sessions(self, *, created_from: int, created_to: int) -> list[SessionInfo]: ...

    async def list_payment_intents(self, *, created_from: int) -> list[PaymentIntentInfo]:
        """Payment intents created at or after ``created_from``, newest first."""
        ...

    async def session_of_payment_intent(self, payment_intent_id: str) -> SessionInfo | None:
        """The Checkout Session that made the payment intent, if one did."""
        ...

    async def list_events(self, *, created_from: int, types: list[str]) -> list[dict[str, object]]:
        """Events created at or after ``created_from``, oldest first."""
        ...

    async def retrieve_event(self, event_id: str) -> dict[str, object]: ...
