"""The support desk's decision (issue 16 item 2): what happened to one payment link, from its
facts, as one of a fixed set of diagnoses, and which fixes a support person should use.

Pure: :func:`diagnose` takes :class:`LinkFacts` (read by ``gateway.services.support``) and
returns a :class:`Decision`. The sentences and replies for each kind are the service's catalog
strings; this module only decides. The order of the checks is the order of importance: money
Stripe holds with no record here first, then money that is wrong (disputed, paid twice,
refunded), then paid, then in flight, then the link's own end, then how far the payer got.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    NOT_OPENED = "not_opened"
    BOTS_ONLY = "bots_only"
    OPENED_NOT_PAID = "opened_not_paid"
    AT_CHECKOUT = "at_checkout"
    PROCESSING = "processing"
    PAID_RECEIPT_DELIVERED = "paid_receipt_delivered"
    PAID_RECEIPT_NOT_DELIVERED = "paid_receipt_not_delivered"
    PAID_TWICE = "paid_twice"
    BANK_PAYMENT_FAILED = "bank_payment_failed"
    EXPIRED_UNPAID = "expired_unpaid"
    REVOKED = "revoked"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    ORPHAN = "orphan"  # paid at Stripe, not recorded here
    PAID_OUTSIDE_STRIPE = "paid_outside_stripe"


class Fix(StrEnum):
    ATTACH_ORPHAN = "attach_orphan"
    REFUND_DUPLICATE = "refund_duplicate"
    RESEND_RECEIPT = "resend_receipt"
    RESEND_LINK = "resend_link"
    REISSUE = "reissue"
    MARK_PAID = "mark_paid"
    REPLAY_EVENT = "replay_event"
    RECONCILE = "reconcile"


class Receipt(StrEnum):
    """The receipt of the paid order, as the outbox has it."""

    NONE = "none"  # none owed (mail not set up, or receipts left to Stripe)
    QUEUED = "queued"  # owed, not sent yet
    DELIVERED = "delivered"  # handed to the mail server
    FAILED = "failed"  # failed, canceled or skipped


@dataclass(frozen=True, slots=True)
class OrderFacts:
    id: str
    status: str  # pending | processing | paid | failed | refunded | canceled | expired
    amount: int
    refunded: int = 0
    method: str = "stripe"
    duplicate_of: str | None = None
    disputed: bool = False
    session_open: bool = False  # a pending order whose Checkout session can still be paid


@dataclass(frozen=True, slots=True)
class LinkFacts:
    orders: tuple[OrderFacts, ...] = ()  # oldest first
    revoked: bool = False
    expired: bool = False
    opens: int = 0  # people
    bot_previews: int = 0
    receipt: Receipt = Receipt.NONE
    unattached_orphans: int = 0  # orphan payments naming this link, not attached
    unapplied_events: int = 0  # webhook events of its orders that failed or wait
    mail: bool = True  # this gateway emails payers (else no receipt can be sent again)


@dataclass(frozen=True, slots=True)
class Decision:
    kind: Kind
    fixes: tuple[Fix, ...]
    order_id: str | None = None  # the order the diagnosis is about (paid, duplicate, ...)


_PAID = ("paid", "refunded")
_UNPAID_FIXES = (Fix.RESEND_LINK, Fix.MARK_PAID)


def _refundable(order: OrderFacts) -> bool:
    return order.status == "paid" and order.method == "stripe" and order.refunded < order.amount


def _decide(facts: LinkFacts) -> Decision:
    orders = facts.orders
    paid = [o for o in orders if o.status in _PAID]
    first = next((o for o in paid if not o.duplicate_of), paid[0] if paid else None)
    duplicates = [o for o in paid if o.duplicate_of]
    if facts.unattached_orphans:
        return Decision(Kind.ORPHAN, (Fix.ATTACH_ORPHAN,))
    disputed = next((o for o in orders if o.disputed), None)
    if disputed is not None:
        return Decision(Kind.DISPUTED, (), disputed.id)
    if duplicates:
        open_duplicate = next((o for o in duplicates if _refundable(o)), None)
        if open_duplicate is not None:
            return Decision(Kind.PAID_TWICE, (Fix.REFUND_DUPLICATE,), open_duplicate.id)
        return Decision(Kind.PAID_TWICE, (), duplicates[0].id)
    if first is not None:
        if first.status == "refunded" or first.refunded >= first.amount:
            return Decision(Kind.REFUNDED, (), first.id)
        if first.method != "stripe":
            fixes = (Fix.RESEND_RECEIPT,) if facts.mail else ()
            return Decision(Kind.PAID_OUTSIDE_STRIPE, fixes, first.id)
        resend = (Fix.RESEND_RECEIPT,) if facts.mail else ()
        if facts.receipt is Receipt.DELIVERED:
            return Decision(Kind.PAID_RECEIPT_DELIVERED, resend, first.id)
        return Decision(Kind.PAID_RECEIPT_NOT_DELIVERED, resend, first.id)
    processing = next((o for o in orders if o.status == "processing"), None)
    if processing is not None:
        return Decision(Kind.PROCESSING, (Fix.RECONCILE,), processing.id)
    at_checkout = next((o for o in orders if o.status == "pending" and o.session_open), None)
    if at_checkout is not None:
        return Decision(Kind.AT_CHECKOUT, (Fix.RECONCILE,), at_checkout.id)
    if facts.revoked:
        return Decision(Kind.REVOKED, (Fix.REISSUE,))
    if facts.expired:
        return Decision(Kind.EXPIRED_UNPAID, (Fix.REISSUE,))
    last = orders[-1] if orders else None
    if last is not None and last.status == "failed":
        return Decision(Kind.BANK_PAYMENT_FAILED, _UNPAID_FIXES, last.id)
    if orders or facts.opens:
        return Decision(Kind.OPENED_NOT_PAID, _UNPAID_FIXES)
    if facts.bot_previews:
        return Decision(Kind.BOTS_ONLY, _UNPAID_FIXES)
    return Decision(Kind.NOT_OPENED, _UNPAID_FIXES)


def diagnose(facts: LinkFacts) -> Decision:
    """The one diagnosis of a link; a webhook event that was not applied adds "replay"."""
    decision = _decide(facts)
    if facts.unapplied_events and Fix.REPLAY_EVENT not in decision.fixes:
        return Decision(decision.kind, (*decision.fixes, Fix.REPLAY_EVENT), decision.order_id)
    return decision
