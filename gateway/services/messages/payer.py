"""What every message to a payer shares (a receipt, a bank payment that failed, a payment made
twice, a refund): built when it is sent from the order and link as they are then, in the
language the row was written in (the link's: ``domain.locales.for_link``), with the link
email's look and helpers (gateway.services.email): a subject, text and HTML parts, ``<html
lang>`` and ``Content-Language``, ``Reply-To`` the contact address, header values on one line,
and under :data:`~gateway.services.email.MAX_MESSAGE_BYTES` whatever the link holds.

Each kind has its three templates, ``email/<kind>.txt``, ``email/<kind>.html`` and
``email/<kind>.subject.txt``; the text and HTML parts extend ``email/payer.txt`` and
``email/payer.html`` (greeting, the organisation, who to contact).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import jinja2
import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, LinkItem, Order, OutboxMessage
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.locales import for_link
from gateway.services.email import (
    ITEM_CHARS,
    MAX_MESSAGE_BYTES,
    one_line,
    shorten,
)
from gateway.services.outbox import ComposeError

# The payment's reference a payer can quote and the organisation find in Stripe's dashboard: the
# end of the payment intent's id (its start, "pi_", is the same for everyone).
PAYMENT_REFERENCE_CHARS = 8


def payment_reference(payment_intent_id: str | None) -> str | None:
    return payment_intent_id[-PAYMENT_REFERENCE_CHARS:] if payment_intent_id else None


@dataclass(frozen=True, slots=True)
class Payment:
    """An order, its link and the link's items, as they are when the message is sent."""

    order: Order
    link: Link
    items: Sequence[LinkItem]


class PayerMail:
    """Reads what a payer message is about and builds it from its kind's templates."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        environments: Mapping[str, jinja2.Environment],
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._environments = environments

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def locale_of(self, row: OutboxMessage) -> str:
        return for_link(row.locale, self._settings.checkout.default_locale)

    @staticmethod
    def payload(row: OutboxMessage) -> dict[str, Any]:
        found = json.loads(row.payload or "{}")
        return found if isinstance(found, dict) else {}

    async def payment(self, row: OutboxMessage) -> Payment:
        """The row's order and link; a row that names none cannot make a message."""
        async with self._db.read() as session:
            order = await session.get(Order, row.order_id) if row.order_id else None
            if order is None:
                raise ComposeError(f"order {row.order_id!r} not found")
            link = await session.get(Link, order.link_id)
            if link is None:
                raise ComposeError(f"link {order.link_id!r} not found")
            items = (
                await session.execute(
                    sa.select(LinkItem)
                    .where(LinkItem.link_id == link.id)
                    .order_by(LinkItem.position)
                )
            ).scalars()
            return Payment(order, link, tuple(items))

    def build(
        self, row: OutboxMessage, payment: Payment, template: str, **context: Any
    ) -> EmailMessage:
        """The message from ``email/<template>.*``, its items shortened until it fits."""
        for item_chars in ITEM_CHARS:
            message = self._compose(row, payment, template, item_chars, context)
            if len(message.as_bytes()) <= MAX_MESSAGE_BYTES:
                break
        return message

    def _compose(
        self,
        row: OutboxMessage,
        payment: Payment,
        template: str,
        item_chars: int | None,
        extra: dict[str, Any],
    ) -> EmailMessage:
        checkout = self._settings.checkout
        locale = self.locale_of(row)
        env = self._environments[locale]
        order, link = payment.order, payment.link
        context: dict[str, Any] = {
            "org_name": checkout.org_name,
            "contact_email": checkout.contact_email,
            "name": link.name,
            "description": link.description,
            "reference": link.ref or link.id,
            "currency": order.currency,
            "amount_total": order.amount_total,
            "payment_reference": payment_reference(order.payment_intent_id),
            "items": [
                {
                    "description": shorten(item.description, item_chars),
                    "quantity": item.quantity,
                    "total": item.amount * item.quantity,
                }
                for item in payment.items
            ],
            **extra,
        }
        subject = one_line(env.get_template(f"email/{template}.subject.txt").render(context))
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = Address(
            one_line(checkout.org_name), addr_spec=self._settings.email.from_address
        )
        message["To"] = Address(one_line(link.name), addr_spec=row.recipient)
        if checkout.contact_email:
            message["Reply-To"] = checkout.contact_email
        message["Date"] = format_datetime(self.now())
        message["X-Gateway-Link"] = link.id
        message.set_content(env.get_template(f"email/{template}.txt").render(context))
        html = env.get_template(f"email/{template}.html").render(context, subject=subject)
        message.add_alternative(html, subtype="html")
        # Set last: set_content() clears every Content-* header of the message it is given.
        message["Content-Language"] = locale
        return message
