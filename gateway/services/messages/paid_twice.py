"""A payment made twice (issue 14 item 2): when the second payment is flagged (it will be
refunded: by the gateway with ``checkout.refund_duplicates``, else by the organisation), and
when any refund is recorded (how much, and how long it takes to arrive)."""

from __future__ import annotations

from email.message import EmailMessage

from gateway.adapters.db.models import OutboxMessage
from gateway.services.messages.payer import PayerMail
from gateway.services.outbox import Defer, Skip


class PaidTwiceComposer:
    def __init__(self, mail: PayerMail) -> None:
        self._mail = mail

    async def compose(self, message: OutboxMessage) -> EmailMessage | Skip | Defer:
        payment = await self._mail.payment(message)
        refund = bool(self._mail.payload(message).get("refund"))
        paid_at = payment.order.paid_at or payment.order.updated_at
        return self._mail.build(message, payment, "paid_twice", refund=refund, paid_at=paid_at)


class RefundedComposer:
    def __init__(self, mail: PayerMail) -> None:
        self._mail = mail

    async def compose(self, message: OutboxMessage) -> EmailMessage | Skip | Defer:
        payment = await self._mail.payment(message)
        payload = self._mail.payload(message)
        return self._mail.build(
            message,
            payment,
            "refunded",
            refund_amount=int(payload["amount"]),
            duplicate=bool(payload.get("duplicate")),
        )
