"""The checkout decision (docs/design.md §3, Confirm): what pressing Pay does, given a link's
orders.

Pure and synchronous so that every rule is a row in a table of test cases. The service layer
gathers the facts inside one transaction, asks :func:`decide`, and carries the answer out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gateway.domain.orders import BLOCKING, OrderStatus


class LinkState(StrEnum):
    PAYABLE = "payable"
    PAID = "paid"
    PROCESSING = "processing"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class OrderFacts:
    id: str
    status: OrderStatus
    created_at: datetime
    session_id: str | None = None
    session_url: str | None = None
    session_expires_at: datetime | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LinkFacts:
    revoked: bool
    valid_until: datetime
    orders: tuple[OrderFacts, ...]


@dataclass(frozen=True, slots=True)
class Timing:
    stale_after: timedelta
    min_remaining: timedelta


def link_state(link: LinkFacts, now: datetime) -> LinkState:
    """What a visitor is shown. A payment outranks revocation and expiry: paid stays paid."""
    statuses = {order.status for order in link.orders}
    if OrderStatus.PAID in statuses:
        return LinkState.PAID
    if OrderStatus.PROCESSING in statuses:
        return LinkState.PROCESSING
    if link.revoked:
        return LinkState.REVOKED
    if now >= link.valid_until:
        return LinkState.EXPIRED
    return LinkState.PAYABLE


def blocking_order(orders: Iterable[OrderFacts]) -> OrderFacts | None:
    """The payment that blocks a new attempt (the earliest paid one, else one in flight)."""
    best: OrderFacts | None = None
    for order in orders:
        if order.status not in BLOCKING:
            continue
        if best is None or (
            order.status is OrderStatus.PAID and best.status is not OrderStatus.PAID
        ):
            best = order
    return best


# --- decisions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refuse:
    """Nothing may be created: the link is paid, processing, revoked or expired."""

    state: LinkState


@dataclass(frozen=True, slots=True)
class Reuse:
    """A fresh pending order has an open session with enough life left: send the payer there."""

    order: OrderFacts


@dataclass(frozen=True, slots=True)
class Resume:
    """A fresh pending order whose session we have not stored (a request in flight or one that
    died): ask Stripe again with the order's idempotency key, which returns the same session."""

    order: OrderFacts


@dataclass(frozen=True, slots=True)
class Replace:
    """A stale pending order: expire its session at Stripe, cancel it (kept), then create anew."""

    order: OrderFacts


@dataclass(frozen=True, slots=True)
class Create:
    """No usable pending order: insert one (committed before Stripe is called), then create."""


Decision = Refuse | Reuse | Resume | Replace | Create


def is_fresh(order: OrderFacts, now: datetime, timing: Timing) -> bool:
    if now - order.created_at >= timing.stale_after:
        return False
    if order.session_expires_at is not None:
        return order.session_expires_at - now >= timing.min_remaining
    return True


def decide(link: LinkFacts, now: datetime, timing: Timing) -> Decision:
    state = link_state(link, now)
    if state is not LinkState.PAYABLE:
        return Refuse(state)
    pending = [order for order in link.orders if order.status is OrderStatus.PENDING]
    if not pending:
        return Create()
    # The database allows one pending order per link; take the newest if that ever changed.
    order = max(pending, key=lambda o: o.created_at)
    if not is_fresh(order, now, timing):
        return Replace(order)
    if order.session_id and order.session_url:
        return Reuse(order)
    return Resume(order)
