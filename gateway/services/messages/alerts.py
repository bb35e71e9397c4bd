"""The alert digest (issue 14 item 4): what needs a person in one window, emailed to
``alerts.email`` in ``checkout.default_locale`` (gateway.services.alerts finds it and owes it).

Built when it is sent, from the rows as they are then: what was dealt with in the meantime (a
duplicate refunded, an email retried and sent) is left out, and a digest left with nothing is
skipped. Each section says how many there are, what to do, and lists the first few with the
command that shows each; the whole message stays under ``MAX_MESSAGE_BYTES`` (fewer items, and
shorter errors and references, until it fits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Final

import jinja2
from markupsafe import Markup, escape

from gateway.adapters.db.models import OutboxMessage
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.locales import for_link
from gateway.services.alerts import (
    SHOWN,
    AlertFinder,
    AlertItem,
    AlertSection,
    Digest,
    Section,
    stamp,
    window_of,
)
from gateway.services.email import MAX_MESSAGE_BYTES, one_line, shorten
from gateway.services.outbox import Defer, Skip

# (items listed per section, characters of a reference or an error): the first that fits.
FITS: Final[tuple[tuple[int, int | None], ...]] = ((SHOWN, 300), (5, 120), (3, 60), (1, 40))


@dataclass(frozen=True, slots=True)
class _Templates:
    subject: jinja2.Template
    text: jinja2.Template
    html: jinja2.Template

    @classmethod
    def load(cls, env: jinja2.Environment) -> _Templates:
        return cls(
            env.get_template("email/alert_digest.subject.txt"),
            env.get_template("email/alert_digest.txt"),
            env.get_template("email/alert_digest.html"),
        )


def as_text(sentence: str) -> Markup:
    """A sentence from alert_digest.parts.txt, escaped for the HTML part. Those macros are
    plain text (the text part uses them as they are), but Jinja marks what a macro returns as
    safe when an autoescaping template calls it: without this, an error message or a reference
    holding markup would reach the HTML as markup."""
    return escape(str.__str__(sentence))


def command(section: Section, item: AlertItem) -> str:
    """The command that shows the item (and from there, what can be done about it)."""
    if section is Section.FAILED_MESSAGES:
        return f"gateway mail show {item.id}"
    if section is Section.FAILED_EVENTS:
        return f"gateway webhooks replay {item.id}"
    if section is Section.ORPHAN_PAYMENTS:
        return (
            f"gateway support find {item.id}"
            if item.link_id is None
            else (f"gateway links show {item.link_id}")
        )
    return f"gateway links show {item.link_id}"


class AlertDigestComposer:
    def __init__(
        self,
        finder: AlertFinder,
        settings: Settings,
        clock: Clock,
        environments: Mapping[str, jinja2.Environment],
    ) -> None:
        self._finder = finder
        self._settings = settings
        self._clock = clock
        self._environments = environments
        for env in self._environments.values():
            env.filters["as_text"] = as_text
        self._templates: dict[str, _Templates] = {}

    async def compose(self, message: OutboxMessage) -> EmailMessage | Skip | Defer:
        since, until = window_of(message.payload)
        digest = await self._finder.collect(since, until)
        if not digest.count:
            return Skip("everything this digest would list was dealt with before it was sent")
        locale = for_link(message.locale, self._settings.checkout.default_locale)
        return self.build(digest, recipient=message.recipient, locale=locale)

    def build(self, digest: Digest, *, recipient: str, locale: str) -> EmailMessage:
        """The message, under :data:`MAX_MESSAGE_BYTES` whatever the rows hold."""
        for shown, chars in FITS:
            message = self._compose(digest, recipient, locale, shown=shown, chars=chars)
            if len(message.as_bytes()) <= MAX_MESSAGE_BYTES:
                break
        return message

    def _templates_for(self, locale: str) -> _Templates:
        found = self._templates.get(locale)
        if found is None:
            found = self._templates[locale] = _Templates.load(self._environments[locale])
        return found

    def _compose(
        self, digest: Digest, recipient: str, locale: str, *, shown: int, chars: int | None
    ) -> EmailMessage:
        templates = self._templates_for(locale)
        checkout = self._settings.checkout
        context: dict[str, object] = {
            "org_name": checkout.org_name,
            "recipient": recipient,
            "since": digest.since,
            "until": digest.until,
            "count": digest.count,
            "sections": [_section(section, shown, chars) for section in digest.sections],
        }
        subject = one_line(templates.subject.render(context))
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = Address(
            one_line(checkout.org_name), addr_spec=self._settings.email.from_address
        )
        message["To"] = recipient
        message["Date"] = format_datetime(datetime.fromtimestamp(self._clock.now(), UTC))
        # RFC 3834: written by a program; auto-responders should not answer it.
        message["Auto-Submitted"] = "auto-generated"
        # Our own reference, for finding a digest in a mail log: the start of its window.
        message["X-Gateway-Alerts"] = stamp(digest.since)
        message.set_content(templates.text.render(context))
        message.add_alternative(templates.html.render(context, subject=subject), subtype="html")
        # Set last: set_content() clears every Content-* header of the message it is given.
        message["Content-Language"] = locale
        return message


def _section(section: AlertSection, shown: int, chars: int | None) -> dict[str, object]:
    items = section.items[:shown]
    return {
        "name": section.name.value,
        "count": section.count,
        "more": section.count - len(items),
        "items": [
            {
                "id": item.id,
                "link_id": item.link_id,
                "ref": shorten(item.ref or item.link_id or "", chars),
                "amount": item.amount,
                "currency": item.currency,
                "at": item.at,
                "kind": item.kind,
                "recipient": item.recipient,
                "error": shorten(one_line(item.error or ""), chars),
                "command": command(section.name, item),
            }
            for item in items
        ],
    }
