"""The payment reminder (issue 14 item 3), built when it is sent: whether it goes at all is
decided then, from one read of the link (``services.reminders.ReminderRules.read_link`` and
``domain.reminders.skip_reason``): a link paid, processing, revoked or expired since the step
was owed, one created less than 48 hours ago or pressed in the last 24, reminders stopped by
the payer or paused, an address refused before, or a step missed by more than 48 hours is
skipped (the reason kept on the row and logged). Outside ``send_from``..``send_until`` in the
organisation's time zone it is deferred to the next ``send_from``.

The message is in the link's language, text and HTML, with a fresh pay link, the amount, the
due date, and a one-click "stop reminders for this payment" link, also offered to mail clients
as ``List-Unsubscribe`` with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058),
which stops reminders only (never receipts).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import jinja2
import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, LinkItem, OutboxMessage
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.locales import for_link
from gateway.domain.reminders import next_window, skip_reason
from gateway.services.email import (
    ITEM_CHARS,
    MAX_MESSAGE_BYTES,
    one_line,
    shorten,
)
from gateway.services.links import LinkUrls
from gateway.services.outbox import ComposeError, Defer, Skip
from gateway.services.reminders import ReminderRules

log = logging.getLogger(__name__)

ONE_CLICK = "List-Unsubscribe=One-Click"


def stop_url(pay_url: str) -> str:
    """Where "stop reminders for this payment" leads: the pay link's own address, signed alike."""
    return f"{pay_url}/reminders/stop"


@dataclass(frozen=True, slots=True)
class ReminderTemplates:
    subject: jinja2.Template
    text: jinja2.Template
    html: jinja2.Template

    @classmethod
    def load(cls, env: jinja2.Environment) -> ReminderTemplates:
        return cls(
            env.get_template("email/reminder.subject.txt"),
            env.get_template("email/reminder.txt"),
            env.get_template("email/reminder.html"),
        )


class ReminderComposer:
    def __init__(
        self,
        db: Database,
        links: LinkUrls,
        settings: Settings,
        clock: Clock,
        environments: Mapping[str, jinja2.Environment],
        *,
        schedule: Callable[[], str] | None = None,
    ) -> None:
        self._db = db
        self._links = links
        self._rules = ReminderRules(settings, schedule)
        self._settings = settings
        self._clock = clock
        self._environments = environments
        self._templates: dict[str, ReminderTemplates] = {}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def compose(self, message: OutboxMessage) -> EmailMessage | Skip | Defer:
        if message.link_id is None:
            raise ComposeError("a reminder without a link")
        payload = json.loads(message.payload or "{}")
        try:
            step = int(payload["step"])
            owed_at = datetime.fromisoformat(payload["owed_at"])
        except (KeyError, TypeError, ValueError):
            raise ComposeError("a reminder row without its step and day") from None
        now = self.now()
        async with self._db.read() as session:
            read = await self._rules.read_link(session, message.link_id, owed_at=owed_at, now=now)
            items: list[LinkItem] = []
            if read is not None:
                items = list(
                    await session.scalars(
                        sa.select(LinkItem)
                        .where(LinkItem.link_id == message.link_id)
                        .order_by(LinkItem.position)
                    )
                )
        if read is None:
            return Skip("the link no longer exists")
        if read.link.due_date is None or step not in self._rules.steps_of(read.link):
            return Skip("the step is no longer in the link's schedule")
        reason = skip_reason(read.facts)
        if reason is not None:
            log.info(
                "reminder skipped",
                extra={"link_id": message.link_id, "step": step, "reason": reason},
            )
            return Skip(reason)
        later = next_window(now, self._rules.send_from, self._rules.send_until, self._rules.zone)
        if later is not None:
            return Defer(later, "outside the sending hours")
        return self.build(read.link, items, step)

    def build(self, link: Link, items: list[LinkItem], step: int) -> EmailMessage:
        """The message, under MAX_MESSAGE_BYTES whatever the link holds."""
        for item_chars in ITEM_CHARS:
            built = self._compose(link, items, step, item_chars)
            if len(built.as_bytes()) <= MAX_MESSAGE_BYTES:
                break
        return built

    def _templates_for(self, locale: str) -> ReminderTemplates:
        found = self._templates.get(locale)
        if found is None:
            found = self._templates[locale] = ReminderTemplates.load(self._environments[locale])
        return found

    def _compose(
        self, link: Link, items: list[LinkItem], step: int, item_chars: int | None
    ) -> EmailMessage:
        assert link.due_date is not None
        checkout = self._settings.checkout
        locale = for_link(link.locale, checkout.default_locale)
        templates = self._templates_for(locale)
        _, url = self._links.url_for(link.id, link.created_at)
        stop = stop_url(url)
        # The due day as an instant the `date` filter shows as that very day (local noon).
        due = datetime.combine(link.due_date, time(12), tzinfo=self._rules.zone)
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
                for item in items
            ],
            "currency": link.currency,
            "amount_total": link.amount_total,
            "reference": link.ref or link.id,
            "url": url,
            "stop_url": stop,
            "due": due,
            "overdue": step > 0,
            "due_today": step == 0,
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
        message["Date"] = format_datetime(self.now())
        message["X-Gateway-Link"] = link.id
        # RFC 8058: a mail client's "unsubscribe" POSTs to this address; it stops reminders for
        # this payment only. RFC 3834: sent by a program, not a person (no auto-replies).
        message["List-Unsubscribe"] = f"<{stop}>"
        message["List-Unsubscribe-Post"] = ONE_CLICK
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(templates.text.render(context))
        message.add_alternative(templates.html.render(context, subject=subject), subtype="html")
        message["Content-Language"] = locale
        return message
