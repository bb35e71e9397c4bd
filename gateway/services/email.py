"""Emailing a link to its payer, and recording every attempt on the link.

The message is written in the link's language only (``domain.locales.for_link``: the issuer's
choice, else ``checkout.default_locale``; there is no browser to ask): subject, plain-text and
HTML parts, ``<html lang>`` and a ``Content-Language`` header, amounts and dates the CLDR way in
the organisation's time zone, with the time and its zone when the link expires within a day.

Each send, good or bad, is written to the link (``sent_count``, ``last_sent_at``,
``last_send_error``) and to its audit trail, so a failure is never silently dropped: the admin
sees it in ``links list``/``show`` and a resend retries it. The message goes only to the address
stored on the link; no caller can choose another recipient.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import jinja2
import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link
from gateway.adapters.mail import Mailer, MailError
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.errors import GatewayError, NotFound
from gateway.domain.locales import for_link
from gateway.domain.text import Text
from gateway.i18n.templates import localized_environments
from gateway.services.audit import audit
from gateway.services.links import LinkService

log = logging.getLogger(__name__)


class EmailNotConfigured(GatewayError):
    """No SMTP server is configured (``email.host`` and ``email.from_address``)."""

    def __init__(self) -> None:
        super().__init__(Text("email is not configured (set email.host and email.from_address)"))


@dataclass(frozen=True, slots=True)
class SendResult:
    link_id: str
    ok: bool
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"link_id": self.link_id, "sent": self.ok, "error": self.error}


# A link that expires sooner than this after the email is sent shows its expiry with the time
# and its zone: "until 7 December" would read as the whole day, and the payer may be elsewhere.
NEAR_EXPIRY = timedelta(days=1)


def email_environments(templates_dir: str, timezone: str) -> dict[str, jinja2.Environment]:
    """One environment per offered locale (gateway.i18n.templates)."""
    return localized_environments(
        jinja2.FileSystemLoader(templates_dir),
        timezone=timezone,
        # The HTML part is escaped; the text part and subject are plain text, not markup.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        keep_trailing_newline=True,
    )


# Gmail clips a message beyond about 102 KB behind a "View entire message" link, and the Pay
# button is near the end. Twenty items of 500 characters fit easily in a Latin script; in one
# that takes 3 or 4 bytes a character (and base64 on top, in both parts) they would not, so the
# items' descriptions are shortened, step by step, until the message fits. The payment page
# shows them whole.
MAX_MESSAGE_BYTES = 100_000
ITEM_CHARS: tuple[int | None, ...] = (None, 200, 80)


def shorten(text: str, chars: int | None) -> str:
    if chars is None or len(text) <= chars:
        return text
    return text[: chars - 1].rstrip() + "…"


# Whitespace that may break a line or a header (ASCII and Unicode line/paragraph separators),
# but not U+00A0/U+202F, the no-break spaces a translation may hold on purpose.
_BREAKS = re.compile(r"[^\S\u00a0\u202f]+")


def one_line(text: str) -> str:
    """Text for a header: a line break cannot be in one (the email package refuses it, rather
    than let it start a header of its own), and a name stored before control characters were
    refused on create may hold one; every run of whitespace becomes a single space. A no-break
    space is kept: it is typography (French puts one before a colon), not a line break."""
    return " ".join(_BREAKS.split(text.strip()))


@dataclass(frozen=True, slots=True)
class EmailTemplates:
    """The three templates of a link email, compiled for one locale."""

    subject: jinja2.Template
    text: jinja2.Template
    html: jinja2.Template

    @classmethod
    def load(cls, env: jinja2.Environment) -> EmailTemplates:
        return cls(
            env.get_template("email/subject.txt"),
            env.get_template("email/link.txt"),
            env.get_template("email/link.html"),
        )


class LinkMailer:
    def __init__(
        self,
        db: Database,
        links: LinkService,
        mailer: Mailer | None,
        settings: Settings,
        clock: Clock,
        templates_dir: str,
    ) -> None:
        self._db = db
        self._links = links
        self._mailer = mailer
        self._settings = settings
        self._clock = clock
        self._environments = email_environments(templates_dir, settings.checkout.timezone)
        # Compiled once per locale, when first used: a bulk run renders the same three
        # templates hundreds of times.
        self._templates: dict[str, EmailTemplates] = {}

    @property
    def enabled(self) -> bool:
        return self._mailer is not None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def send_link(self, link_id: str, *, actor: str, renewal: bool = False) -> SendResult:
        """Email the link to the payer's address on file and record the outcome on the link."""
        if self._mailer is None:
            raise EmailNotConfigured
        async with self._db.read() as session:
            link = (
                await session.execute(
                    sa.select(Link).where(Link.id == link_id).options(selectinload(Link.items))
                )
            ).scalar_one_or_none()
        if link is None:
            raise NotFound(link_id)
        error: str | None = None
        try:
            await self._mailer.send(self.build(link, renewal=renewal))
        except MailError as exc:
            error = str(exc)
        except (ValueError, TypeError) as exc:  # an address the email package cannot encode
            error = f"could not build the message: {type(exc).__name__}"
        await self._record(link_id, actor=actor, error=error, renewal=renewal)
        if error:
            # No address and no URL in the log: the link id is enough to find it.
            log.warning("link email failed", extra={"link_id": link_id, "error_kind": error[:80]})
        else:
            log.info("link emailed", extra={"link_id": link_id, "renewal": renewal})
        return SendResult(link_id, error is None, error)

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
        domain = self._settings.email.from_address.rpartition("@")[2] or None
        message["Message-ID"] = make_msgid("link", domain=domain)
        # Our own reference, for finding a message in a mail log without the token.
        message["X-Gateway-Link"] = link.id
        message.set_content(templates.text.render(context))
        message.add_alternative(templates.html.render(context, subject=subject), subtype="html")
        # RFC 3282: the language of the whole message, both parts. Set last: set_content()
        # clears every Content-* header of the message it is given.
        message["Content-Language"] = locale
        return message

    async def _record(self, link_id: str, *, actor: str, error: str | None, renewal: bool) -> None:
        now = self.now()
        async with self._db.write() as session:
            values: dict[str, object]
            if error is None:
                values = {
                    "sent_count": Link.sent_count + 1,
                    "last_sent_at": now,
                    "last_send_error": None,
                }
            else:
                values = {"last_send_error": error[:500]}
            await session.execute(sa.update(Link).where(Link.id == link_id).values(**values))
            purpose = "fresh link" if renewal else "link"
            audit(
                session,
                at=now,
                link_id=link_id,
                action="link.emailed" if error is None else "link.email_failed",
                actor=actor,
                detail=f"{purpose} emailed to the address on file"
                if error is None
                else f"{purpose} not sent: {error}"[:1000],
            )
