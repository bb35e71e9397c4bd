"""Emailing a link to its payer, through the outbox, and what every link email shares.

Each send is an outbox row (kind ``link`` or ``renewal``, subject the link id and the send's
number: every resend is a row of its own), written in a transaction and sent at once, so the
admin still gets the answer there and then (sent, or failed and why). The message itself is
built by its composer (``gateway.services.messages.links``), which also writes each send's
outcome on the link (``sent_count``, ``last_sent_at``, ``last_send_error``) and in its audit
trail, whichever sender sent it: a transient failure stays in the outbox and ``gateway serve``
sends it later, and the link says so meanwhile; a resend replaces a send still waiting, so the
payer gets one email, not one per attempt, when the server is back. The message goes only to
the address stored on the link; no caller can choose another recipient.

What every email shares (the receipts, reminders and digests too): the Jinja environments per
locale, :func:`one_line` for header values, the size limit and :func:`shorten`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jinja2
import sqlalchemy as sa

from gateway.adapters.db.dialects import lock_link
from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import OutboxMessage
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.errors import GatewayError, NotFound
from gateway.domain.locales import for_link
from gateway.domain.outbox import Kind, State
from gateway.domain.text import Text
from gateway.i18n.templates import localized_environments
from gateway.services.outbox import Outbox

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


# The outbox rows of link emails: one per send.
LINK_KINDS = (Kind.LINK.value, Kind.RENEWAL.value)
_SENDS = sa.select(sa.func.count()).where(
    OutboxMessage.link_id == sa.bindparam("link_id"), OutboxMessage.kind.in_(LINK_KINDS)
)
_ROW = sa.select(OutboxMessage.id).where(
    OutboxMessage.kind == sa.bindparam("kind"), OutboxMessage.subject == sa.bindparam("subject")
)


class LinkMailer:
    def __init__(self, db: Database, outbox: Outbox, settings: Settings, clock: Clock) -> None:
        self._db = db
        self._outbox = outbox
        self._settings = settings
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self._outbox.enabled

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def send_link(self, link_id: str, *, actor: str, renewal: bool = False) -> SendResult:
        """Email the link to the payer's address on file, now; the outcome is on the link."""
        if not self._outbox.enabled:
            raise EmailNotConfigured
        row_id = await self._owe(link_id, actor=actor, renewal=renewal)
        delivery = await self._outbox.send_one(row_id)
        if delivery is None:
            # The periodic sender claimed it first (a moment after it was written): it tells
            # the link what became of it; the answer here is what is known now.
            row = await self._outbox.get(row_id)
            error = None if row.state == State.SENT else "being sent by the gateway's sender"
        else:
            error = None if delivery.outcome == "sent" else delivery.error or delivery.outcome
        if error:
            # No address and no URL in the log: the link id is enough to find it.
            log.warning("link email failed", extra={"link_id": link_id, "error_kind": error[:80]})
        else:
            log.info("link emailed", extra={"link_id": link_id, "renewal": renewal})
        return SendResult(link_id, error is None, error)

    async def _owe(self, link_id: str, *, actor: str, renewal: bool) -> str:
        """The send's outbox row (a new one each time), in one transaction with the link locked,
        so two sends at once get two numbers. A send of this link still waiting to be retried
        is canceled: this one replaces it."""
        now = self.now()
        kind = Kind.RENEWAL if renewal else Kind.LINK
        async with self._db.write() as session:
            link = await lock_link(session, link_id)
            if link is None:
                raise NotFound(link_id)
            await session.execute(
                sa.update(OutboxMessage)
                .where(
                    OutboxMessage.link_id == link_id,
                    OutboxMessage.kind.in_(LINK_KINDS),
                    OutboxMessage.state == State.PENDING.value,
                )
                .values(
                    state=State.CANCELED.value,
                    updated_at=now,
                    last_error="replaced by a later send of the link",
                )
            )
            sends = (await session.execute(_SENDS, {"link_id": link_id})).scalar_one()
            subject = f"{link_id}/{sends + 1}"
            await self._outbox.add(
                session,
                kind=kind,
                subject=subject,
                recipient=link.email,
                locale=for_link(link.locale, self._settings.checkout.default_locale),
                link_id=link_id,
                payload={"actor": actor},
            )
            row_id: str = (
                await session.execute(_ROW, {"kind": kind.value, "subject": subject})
            ).scalar_one()
        return row_id
