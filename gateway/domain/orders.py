"""Order states and the only transitions allowed between them (docs/design.md §4).

Stripe's events can arrive twice, late and out of order, so every transition driven by Stripe is
*monotonic*: it may move an order forward along payment progress, never back. A payment always
wins over a cancellation: if someone pays an old session, the money is real and is recorded.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    REFUNDED = "refunded"
    CANCELED = "canceled"
    EXPIRED = "expired"


class CancelReason(StrEnum):
    STALE = "stale"
    SUPERSEDED = "superseded"
    REVOKED = "revoked"


class SessionOutcome(StrEnum):
    """What Stripe says happened to a checkout session, whichever path told us."""

    PAID = "paid"  # complete, payment_status paid (or an async payment that succeeded)
    PROCESSING = "processing"  # complete, payment_status unpaid: an async method in flight
    FAILED = "failed"  # the async payment failed
    EXPIRED = "expired"  # the session expired unpaid
    OPEN = "open"  # still open: nothing to record


# Orders in these states block a new attempt on their link.
BLOCKING = frozenset({OrderStatus.PAID, OrderStatus.PROCESSING})

# How far along the payment is; Stripe-driven transitions only ever increase it.
_PROGRESS = {
    OrderStatus.PENDING: 0,
    OrderStatus.CANCELED: 0,
    OrderStatus.EXPIRED: 0,
    OrderStatus.PROCESSING: 1,
    OrderStatus.PAID: 2,
    OrderStatus.FAILED: 2,
    OrderStatus.REFUNDED: 3,
}

_TARGET = {
    SessionOutcome.PAID: OrderStatus.PAID,
    SessionOutcome.PROCESSING: OrderStatus.PROCESSING,
    SessionOutcome.FAILED: OrderStatus.FAILED,
    SessionOutcome.EXPIRED: OrderStatus.EXPIRED,
}


def next_status(current: OrderStatus, outcome: SessionOutcome) -> OrderStatus | None:
    """The status an order moves to when Stripe reports ``outcome``, or None for no change.

    >>> next_status(OrderStatus.PENDING, SessionOutcome.PAID)
    <OrderStatus.PAID: 'paid'>
    >>> next_status(OrderStatus.PAID, SessionOutcome.PROCESSING) is None  # late event
    True
    """
    if outcome is SessionOutcome.OPEN:
        return None
    target = _TARGET[outcome]
    if target is OrderStatus.EXPIRED:
        # Only a live attempt can expire; a canceled one stays canceled (its own reason).
        return OrderStatus.EXPIRED if current is OrderStatus.PENDING else None
    if target is OrderStatus.FAILED:
        # An async payment can fail only before it succeeded.
        ok = current in (
            OrderStatus.PENDING,
            OrderStatus.PROCESSING,
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        )
        return OrderStatus.FAILED if ok else None
    if current is OrderStatus.FAILED:
        return None  # a failed async payment never turns into paid or processing again
    return target if _PROGRESS[target] > _PROGRESS[current] else None
