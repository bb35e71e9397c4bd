"""The link email (kinds ``link`` and ``renewal``): the payment link, to the payer's address on
file, in the link's language only (``domain.locales.for_link``: the issuer's choice, else
``checkout.default_locale``; there is no browser to ask): subject, plain-text and HTML parts,
``<html lang>`` and a ``Content-Language`` header, amounts and dates the CLDR way in the
organisation's time zone, with the time and its zone when the link expires within a day.

A row is one send (``gateway.services.email.LinkMailer`` writes one per send and sends it at
once); it is built from the link as it is when it goes, so a link revoked before a retry is
not sent. What became of each send is written on the link (``sent_count``,
``last_sent_at``, ``last_send_error``) and in its audit trail, in the transaction that marks the
row, whichever sender sent it: a transient failure retried later by ``gateway serve`` still
ends up on the link.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import jinja2
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, OutboxMessage
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.locales import for_link
from gateway.domain.outbox import Kind
from gateway.services.audit import audit
from gateway.services.email import (
    ITEM_CHARS,
    MAX_MESSAGE_BYTES,
    NEAR_EXPIRY,
    EmailTemplates,
    one_line,
    shorten,
)
from gateway.services.links import LinkUrls
from gateway.services.outbox import ComposeError, Delivery, Skip

KINDS = (Kind.LINK, Kind.RENEWAL)


class LinkMessages:
    """Builds the link email from an outbox row (a :class:`~gateway.services.outbox.Composer`)
    and records each send's outcome on the link."""

    def __init__(
        self,
        db: Database,
        links: LinkUrls,
        settings: Settings,
        clock: Clock,
        environments: Mapping[str, jinja2.Environment],
    ) -> None:
        self._db = db
        self._links = links
        self._settings = settings
        self._clock = clock
        self._environments = environments
        # Compiled once per locale, when first used: a bulk run renders the same three
        # templates hundreds of times.
        self._templates: dict[str, EmailTemplates] = {}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def compose(self, message: OutboxMessage) -> EmailMessage | Skip:
        async with self._db.read() as session:
            link = (
                await session.execute(
                    sa.select(Link)
                    .where(Link.id == message.link_id)
                    .options(selectinload(Link.items))
                )
            ).scalar_one_or_none()
        if link is None:
            raise ComposeError(f"no link {message.link_id}")
        # Sent at once when asked for (only a payable link is); this is for a retry later. (An
        # expired link is still sent: its page offers the payer a fresh one.)
        if link.revoked_at is not None:
            return Skip("the link was revoked before the email could be sent")
        return self.build(link, renewal=message.kind == Kind.RENEWAL)

    async def record(
        self, session: AsyncSession, message: OutboxMessage, delivery: Delivery, now: datetime
    ) -> None:
        """The send's outcome on the link, in the transaction that marks the row."""
        if message.link_id is None or delivery.outcome in ("deferred", "lost"):
            return
        payload = json.loads(message.payload or "{}")
        purpose = "fresh link" if message.kind == Kind.RENEWAL else "link"
        values: dict[str, object]
        if delivery.outcome == "sent":
            values = {
                "sent_count": Link.sent_count + 1,
                "last_sent_at": now,
                "last_send_error": None,
            }
            action, detail = "link.emailed", f"{purpose} emailed to the address on file"
        else:
            error = delivery.error or delivery.outcome
            if delivery.outcome == "retry":
                error = f"{error} (the gateway tries again)"
            values = {"last_send_error": error[:500]}
            action, detail = "link.email_failed", f"{purpose} not sent: {error}"[:1000]
        await session.execute(sa.update(Link).where(Link.id == message.link_id).values(**values))
        audit(
            session,
            at=now,
            link_id=message.link_id,
            action=action,
            actor=str(payload.get("actor") or "gateway"),
            detail=detail,
        )

    # --- the message ----------------------------------------------------------------------

    def locale_of(self, link: Link) -> str:
        return for_link(link.locale, self._settings.checkout.default_locale)

    def templates(self, locale: str) -> EmailTemplates:
        found = self._templates.get(locale)
        if found is None:
            found = self._templates[locale] = EmailTemplates.load(self._environments[locale])
        return found

    def build(self, link: Link, *, renewal: bool = False) -> EmailMessage:
        """The message, under :data:`MAX_MESSAGE_BYTES` whatever the link holds."""
        for item_chars in ITEM_CHARS:
            message = self._compose(link, renewal=renewal, item_chars=item_chars)
            if len(message.as_bytes()) <= MAX_MESSAGE_BYTES:
                break
        return message

    def _compose(self, link: Link, *, renewal: bool, item_chars: int | None) -> EmailMessage:
        _, url = self._links.url_for(link.id, link.created_at)
        checkout = self._settings.checkout
        locale = self.locale_of(link)
        templates = self.templates(locale)
        now = self.now()
        context: dict[str, object] = {
            "org_name": checkout.org_name,
            "contact_email": checkout.contact_email,
            "name": link.name,
            "description": link.description,
            "items": [
                {
                    "description": shorten(item.description, item_chars),
                    "quantity": item.quantity,
                    "total": item.amount * item.quantity,
                }
                for item in link.items
            ],
            "currency": link.currency,
            "amount_total": link.amount_total,
            "reference": link.ref or link.id,
            "url": url,
            "valid_until": link.valid_until,
            "expires_soon": link.valid_until - now <= NEAR_EXPIRY,
            "renewal": renewal,
        }
        subject = one_line(templates.subject.render(context))
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = Address(
            one_line(checkout.org_name), addr_spec=self._settings.email.from_address
        )
        message["To"] = Address(one_line(link.name), addr_spec=link.email)
        if checkout.contact_email:
            message["Reply-To"] = checkout.contact_email
        message["Date"] = format_datetime(now)
        # Our own reference, for finding a message in a mail log without the token. (The
        # Message-ID is the outbox row's, set by the outbox.)
        message["X-Gateway-Link"] = link.id
        message.set_content(templates.text.render(context))
        message.add_alternative(templates.html.render(context, subject=subject), subtype="html")
        # RFC 3282: the language of the whole message, both parts. Set last: set_content()
        # clears every Content-* header of the message it is given.
        message["Content-Language"] = locale
        return message
