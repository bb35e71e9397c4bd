"""The set-password emails of console accounts (kinds ``invitation`` and ``password_reset``):
the link to choose a password, to the account's address, in the language the inviter chose.

The link is not in the outbox row: the row's payload holds the ``account_tokens`` row id, and
the link is signed again from it when the message is built (gateway.services.accounts). A link
used, expired, or of an account disabled before the email went is skipped, not sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import jinja2
import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Account, AccountToken, OutboxMessage
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.locales import for_link
from gateway.domain.outbox import Kind
from gateway.services.accounts import AccountLinks
from gateway.services.console_auth import utc
from gateway.services.email import one_line
from gateway.services.outbox import ComposeError, Skip

KINDS = (Kind.INVITATION, Kind.PASSWORD_RESET)


@dataclass(frozen=True, slots=True)
class _Templates:
    subject: jinja2.Template
    text: jinja2.Template
    html: jinja2.Template

    @classmethod
    def load(cls, env: jinja2.Environment) -> _Templates:
        return cls(
            env.get_template("email/invitation.subject.txt"),
            env.get_template("email/invitation.txt"),
            env.get_template("email/invitation.html"),
        )


class AccountLinkComposer:
    def __init__(
        self,
        db: Database,
        links: AccountLinks,
        settings: Settings,
        clock: Clock,
        environments: Mapping[str, jinja2.Environment],
    ) -> None:
        self._db = db
        self._links = links
        self._settings = settings
        self._clock = clock
        self._environments = environments
        self._templates: dict[str, _Templates] = {}

    async def compose(self, message: OutboxMessage) -> EmailMessage | Skip:
        payload = json.loads(message.payload or "{}")
        row_id = str(payload.get("token_id") or "")
        async with self._db.read() as session:
            found = (
                await session.execute(
                    sa.select(AccountToken, Account)
                    .join(Account, Account.id == AccountToken.account_id)
                    .where(AccountToken.id == row_id)
                )
            ).one_or_none()
        if found is None:
            raise ComposeError("no such set-password link")
        row, account = found[0], found[1]
        now = datetime.fromtimestamp(self._clock.now(), UTC)
        if row.used_at is not None:
            return Skip("the link was used before the email could be sent")
        if utc(row.expires_at) <= now:
            return Skip("the link expired before the email could be sent")
        if account.disabled_at is not None:
            return Skip("the account was disabled before the email could be sent")
        if row.email != account.email or row.email != message.recipient:
            raise ComposeError("the link was issued to another address")
        inviter = str(payload.get("actor") or "")
        return self.build(
            url=self._links.url(row.purpose, row.id),
            recipient=account.email,
            name=account.name,
            role=account.role,
            expires_at=utc(row.expires_at),
            reset=row.purpose == "reset",
            inviter=inviter.removeprefix("admin:") if inviter.startswith("admin:") else "",
            locale=for_link(message.locale, self._settings.checkout.default_locale),
            now=now,
        )

    def _templates_for(self, locale: str) -> _Templates:
        found = self._templates.get(locale)
        if found is None:
            found = self._templates[locale] = _Templates.load(self._environments[locale])
        return found

    def build(
        self,
        *,
        url: str,
        recipient: str,
        name: str,
        role: str,
        expires_at: datetime,
        reset: bool,
        inviter: str,
        locale: str,
        now: datetime,
    ) -> EmailMessage:
        templates = self._templates_for(locale)
        checkout = self._settings.checkout
        context: dict[str, object] = {
            "org_name": checkout.org_name,
            "name": name,
            "email": recipient,
            "role": role,
            "url": url,
            "expires_at": expires_at,
            "reset": reset,
            "inviter": inviter,
        }
        subject = one_line(templates.subject.render(context))
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = Address(
            one_line(checkout.org_name), addr_spec=self._settings.email.from_address
        )
        message["To"] = Address(one_line(name), addr_spec=recipient) if name else recipient
        message["Date"] = format_datetime(now)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(templates.text.render(context))
        message.add_alternative(templates.html.render(context, subject=subject), subtype="html")
        message["Content-Language"] = locale
        return message
