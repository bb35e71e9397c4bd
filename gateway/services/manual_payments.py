"""Payments made outside Stripe (issue 16 item 3): cash, a bank transfer, anything else a
treasurer received, recorded by ``gateway orders mark-paid`` and ``POST
/admin/api/links/{id}/mark-paid``.

The payment is a paid order like any other (``orders.method`` says how it was paid, with the
person's note and who recorded it), so it blocks further payment exactly as a Stripe payment
does: the payer's page shows paid and Pay refuses, the admin JSON, the CLI and the console show
it with its method. The payer is owed the receipt a payment is owed.

Before it is recorded, a pending Stripe attempt on the link is retired the way a revoke retires
it (``PaymentRecorder.retire``: its session expired at Stripe); if Stripe says that session was
paid meanwhile, that payment is recorded and the manual one refused (409 ``already_paid``).
The same request twice records one payment: a link already paid by an identical manual payment
answers with it (``changed`` false); any other payment on the link is a 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gateway.adapters.db.dialects import lock_link
from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, Order
from gateway.clock import Clock
from gateway.domain.errors import NotFound, ValidationFailed
from gateway.domain.money import format_minor
from gateway.domain.orders import CancelReason, OrderStatus
from gateway.domain.text import Text
from gateway.services.audit import audit
from gateway.services.ids import new_order_id
from gateway.services.payments import PaymentRecorder
from gateway.services.refunds import MoneyRefused, check_reason, parse_amount

METHODS = ("cash", "bank_transfer", "other")
# A payer pressing Pay again between a retirement and the record: give up after this many.
ROUNDS = 3


@dataclass(frozen=True, slots=True)
class MarkedPaid:
    order_id: str
    link_id: str
    amount: int
    currency: str
    method: str
    note: str
    recorded_by: str
    paid_at: datetime
    changed: bool  # False: the same payment was already recorded

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "link_id": self.link_id,
            "amount": self.amount,
            "currency": self.currency,
            "amount_display": format_minor(self.amount, self.currency),
            "method": self.method,
            "note": self.note,
            "recorded_by": self.recorded_by,
            "paid_at": self.paid_at.isoformat(timespec="seconds"),
            "changed": self.changed,
        }


def _marked(order: Order, changed: bool) -> MarkedPaid:
    assert order.paid_at is not None
    return MarkedPaid(
        order_id=order.id,
        link_id=order.link_id,
        amount=order.amount_total,
        currency=order.currency,
        method=order.method,
        note=order.payment_note or "",
        recorded_by=order.recorded_by or "",
        paid_at=order.paid_at,
        changed=changed,
    )


class ManualPayments:
    def __init__(self, db: Database, clock: Clock, recorder: PaymentRecorder) -> None:
        self._db = db
        self._clock = clock
        # Retires a pending attempt (recording a payment Stripe made meanwhile) and owes the
        # receipt through its notices.
        self._recorder = recorder

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def mark_paid(
        self, link_id: str, *, amount: object, method: object, note: object, actor: str
    ) -> MarkedPaid:
        if method not in METHODS:
            raise ValidationFailed({"method": Text("one of %(values)s", values=", ".join(METHODS))})
        assert isinstance(method, str)
        note_text = check_reason(note, "note")
        async with self._db.read() as session:
            link = await session.get(Link, link_id)
        if link is None:
            raise NotFound(link_id)
        minor = parse_amount(amount, link.currency)
        if minor != link.amount_total:
            raise ValidationFailed(
                {
                    "amount": Text(
                        "%(amount)s is not the link's total, %(total)s: record the whole payment",
                        amount=format_minor(minor, link.currency),
                        total=format_minor(link.amount_total, link.currency),
                    )
                }
            )
        for _ in range(ROUNDS):
            pending = await self._record_or_find_pending(link_id, minor, method, note_text, actor)
            if isinstance(pending, MarkedPaid):
                self._recorder.snapshots.invalidate(link_id)
                return pending
            # Stripe is asked outside any transaction; a payment it reports is recorded (and
            # found as the link's payment on the next round).
            await self._recorder.retire(
                pending,
                reason=CancelReason.SUPERSEDED,
                actor=actor,
                detail="superseded: the link was marked paid outside Stripe",
            )
        raise MoneyRefused(
            "wrong_state",
            Text("the payer keeps starting a payment on this link right now; try again"),
        )

    async def _record_or_find_pending(
        self, link_id: str, minor: int, method: str, note: str, actor: str
    ) -> MarkedPaid | str:
        """Under the link's lock: the recorded payment, or the pending order to retire first."""
        now = self.now()
        async with self._db.write() as session:
            link = await lock_link(session, link_id)
            if link is None:
                raise NotFound(link_id)
            orders = (
                (await session.execute(sa.select(Order).where(Order.link_id == link_id)))
                .scalars()
                .all()
            )
            for order in orders:
                if order.status not in (OrderStatus.PAID.value, OrderStatus.PROCESSING.value):
                    continue
                if (
                    order.method == method
                    and order.amount_total == minor
                    and order.payment_note == note
                    and order.status == OrderStatus.PAID.value
                ):
                    return _marked(order, changed=False)
                how = order.method if order.method != "stripe" else "Stripe"
                raise MoneyRefused(
                    "already_paid",
                    Text(
                        "this link is already %(status)s (order %(order)s, %(how)s): "
                        "nothing was recorded",
                        status=order.status,
                        order=order.id,
                        how=how,
                    ),
                    order_id=order.id,
                )
            if link.revoked_at is not None:
                raise MoneyRefused(
                    "wrong_state", Text("this link is revoked: issue a new one to record a payment")
                )
            for order in orders:
                if order.status == OrderStatus.PENDING.value:
                    return order.id
            order = Order(
                id=new_order_id(),
                link_id=link_id,
                status=OrderStatus.PAID.value,
                amount_total=minor,
                currency=link.currency,
                created_at=now,
                updated_at=now,
                paid_at=now,
                method=method,
                payment_note=note,
                recorded_by=actor[:100],
            )
            session.add(order)
            audit(
                session,
                at=now,
                link_id=link_id,
                order_id=order.id,
                action="order.paid",
                to_status=OrderStatus.PAID.value,
                actor=actor,
                detail=f"paid outside Stripe ({method}), {format_minor(minor, link.currency)};"
                f" note: {note}",
            )
            await session.flush()
            notices = self._recorder.notices
            if notices is not None:
                await notices.settled(
                    session,
                    order_id=order.id,
                    link_id=link_id,
                    current=OrderStatus.PENDING,
                    target=OrderStatus.PAID,
                    duplicate_of=None,
                    actor=actor,
                )
            return _marked(order, changed=True)
