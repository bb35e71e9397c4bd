"""A bank payment that failed (issue 14 item 2): a delayed payment (a bank debit) the bank turned
down days after the payer pressed Pay. Nothing was taken; the message brings the link to try
again, while it can still be paid (a link revoked or expired since says who to ask instead).
Skipped when the link was paid by another attempt before the message went."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage

import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Order, OutboxMessage
from gateway.domain.orders import BLOCKING
from gateway.services.messages.payer import PayerMail
from gateway.services.outbox import Defer, Skip

# LinkService.url_for: (link id, created at) -> (token, URL).
UrlFor = Callable[[str, datetime], tuple[str, str]]


class PaymentFailedComposer:
    def __init__(self, mail: PayerMail, db: Database, url_for: UrlFor) -> None:
        self._mail = mail
        self._db = db
        self._url_for = url_for

    async def compose(self, message: OutboxMessage) -> EmailMessage | Skip | Defer:
        payment = await self._mail.payment(message)
        link = payment.link
        if await self._paid_otherwise(link.id):
            return Skip("the link was paid since")
        url: str | None = None
        if link.revoked_at is None and link.valid_until > self._mail.now():
            _, url = self._url_for(link.id, link.created_at)
        return self._mail.build(message, payment, "payment_failed", url=url)

    async def _paid_otherwise(self, link_id: str) -> bool:
        async with self._db.read() as session:
            found = await session.execute(
                sa.select(Order.id)
                # Any payment holding money counts, a flagged duplicate too: a bank debit that
                # failed after the payer paid again by card needs no "try again".
                .where(
                    Order.link_id == link_id,
                    Order.status.in_([status.value for status in BLOCKING]),
                )
                .limit(1)
            )
            return found.first() is not None
