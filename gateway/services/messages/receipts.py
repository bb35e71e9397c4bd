"""The receipt (issue 14 item 2): owed when an order becomes paid (``email.receipts``), built when
it is sent: the organisation, the payer, each item and the total, when it was paid (in the
organisation's time zone, with the zone), the link's reference, the payment's reference, and who
to contact. Card brand and last four are not shown: the gateway stores none (the events it
receives do not carry them, and it asks Stripe nothing more to write a receipt).

When the payer may believe the payment failed, the receipt says plainly that it went through:
it was recorded by the reconciler or a replayed event (the row's ``recovered``), after the
attempt had been given up (the same), or after the payer last saw an error or expired page for
the link (``Link.problem_seen_at`` at or after the order was created, read at send time).
"""

from __future__ import annotations

from email.message import EmailMessage

from gateway.adapters.db.models import OutboxMessage
from gateway.domain.orders import OrderStatus
from gateway.services.messages.payer import PayerMail, Payment
from gateway.services.outbox import Defer, Skip

_RECEIPTED = frozenset({OrderStatus.PAID.value, OrderStatus.REFUNDED.value})


def after_a_problem(payment: Payment, recovered: bool) -> bool:
    seen = payment.link.problem_seen_at
    return recovered or (seen is not None and seen >= payment.order.created_at)


class ReceiptComposer:
    def __init__(self, mail: PayerMail) -> None:
        self._mail = mail

    async def compose(self, message: OutboxMessage) -> EmailMessage | Skip | Defer:
        payment = await self._mail.payment(message)
        order = payment.order
        if order.status not in _RECEIPTED or order.paid_at is None:
            return Skip(f"order {order.id} is {order.status}, not paid")
        recovered = bool(self._mail.payload(message).get("recovered"))
        return self._mail.build(
            message,
            payment,
            "receipt",
            paid_at=order.paid_at,
            after_problem=after_a_problem(payment, recovered),
        )
