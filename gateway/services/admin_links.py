"""What an admin does with links: issuing one with a ref, resending, and (through
:mod:`gateway.services.bulk_issue`) many from a file. Filtered lists are
:mod:`gateway.services.link_listing`; the payer's own "email me a new link" is
:mod:`gateway.services.renewal`.

Rules:

- **One live link per ref.** A ref that already has a live (not revoked) link is not issued
  again, whether by ``links create`` or a bulk file: the existing link is returned and said to
  be existing (with ``differs`` when email, name, amount or a given locale changed), unless the
  admin passes ``allow_duplicate_ref``. The check and the insert are one step
  (:meth:`LinkService.issue_many`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.errors import GatewayError
from gateway.domain.links import NewLink
from gateway.domain.money import format_minor
from gateway.domain.payments import PaymentProvider
from gateway.domain.text import Text
from gateway.services.bulk_files import (
    BulkFile,
    BulkFormatError,
    FileRow,
    parse_csv,
    parse_json,
)
from gateway.services.email import EmailNotConfigured, LinkMailer, SendResult
from gateway.services.link_listing import LinkListing
from gateway.services.links import LinkService
from gateway.services.sessions import link_items

if TYPE_CHECKING:  # bulk_issue builds on this module
    from gateway.services.bulk_issue import BulkIssuer, BulkReport

log = logging.getLogger(__name__)

NOT_SENDABLE = ("paid", "processing", "revoked", "expired")

__all__ = ["BulkFile", "BulkFormatError", "FileRow", "parse_csv", "parse_json"]


class LinkNotSendable(GatewayError):
    """Only a payable link is emailed: a paid, revoked or expired one would only confuse."""

    def __init__(self, link_id: str, state: str) -> None:
        super().__init__(
            Text(
                "link %(id)s is %(state)s; only a payable link can be emailed",
                id=link_id,
                state=state,
            )
        )
        self.state = state


# --- what a person confirms -----------------------------------------------------------------


def items_json(items: Sequence[Any], currency: str) -> list[dict[str, Any]]:
    """Items as stored (minor units) and as a person reads them back."""
    return [
        {
            "description": i.description,
            "amount": i.amount,
            "quantity": i.quantity,
            "amount_display": format_minor(i.amount, currency),
        }
        for i in items
    ]


def new_link_json(new: NewLink) -> dict[str, Any]:
    """What was understood from a request or a row, to show back before or after issuing."""
    return {
        "name": new.name,
        "payer_email": new.email,
        "items": items_json(new.items, new.currency),
        "amount_total": new.amount_total,
        "currency": new.currency,
        "total": format_minor(new.amount_total, new.currency),
        "locale": new.locale,
        # The due day (organisation's time zone) and the schedule: "-3,1,7", "none", or null
        # (the configured reminders.schedule).
        "due": new.due_date.isoformat() if new.due_date else None,
        "reminders": new.reminder_steps,
    }


def differences(link: Link, new: NewLink) -> list[str]:
    differs = []
    if link.email.lower() != new.email.lower():
        differs.append("email")
    if link.name != new.name:
        differs.append("name")
    if (link.amount_total, link.currency) != (new.amount_total, new.currency):
        differs.append("amount")
    # A request without a locale asks for nothing, so it cannot differ.
    if new.locale is not None and link.locale != new.locale:
        differs.append("locale")
    # Likewise a due date or schedule not asked for.
    if new.due_date is not None and link.due_date != new.due_date:
        differs.append("due")
    if new.reminder_steps is not None and link.reminder_steps != new.reminder_steps:
        differs.append("reminders")
    return differs


# --- one link -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Created:
    """What ``links create`` did: a new link, or the live link its ref already had."""

    id: str
    url: str
    token: str
    ref: str
    existing: bool
    shown: dict[str, Any]  # name, payer_email, items, total, locale: of the new or existing link
    differs: list[str] = field(default_factory=list)
    email: SendResult | None = None
    email_skipped: str | None = None  # why an existing link was not emailed again

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "token": self.token,
            "ref": self.ref,
            "status": "existing" if self.existing else "created",
            "existing": self.existing,
            **self.shown,
            "amount_display": self.shown["total"],
        }
        if self.differs:
            data["differs"] = self.differs
        if self.email is not None:
            data["email"] = {"sent": self.email.ok, "error": self.email.error}
        elif self.email_skipped:
            data["email"] = {"sent": False, "error": None, "skipped": self.email_skipped}
        return data


# --- the service ----------------------------------------------------------------------------


class AdminLinks:
    def __init__(
        self,
        db: Database,
        links: LinkService,
        mailer: LinkMailer,
        provider: PaymentProvider | None,
        settings: Settings,
        clock: Clock,
        listing: LinkListing,
        bulk: BulkIssuer,
    ) -> None:
        self._listing = listing
        self._bulk = bulk
        self._db = db
        self._links = links
        self._mailer = mailer
        self._provider = provider
        self._settings = settings
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # --- one link ---------------------------------------------------------------------------

    async def create(
        self,
        new: NewLink,
        *,
        actor: str,
        send: bool = False,
        allow_duplicate_ref: bool = False,
    ) -> Created:
        """Issue one link; with a ref that already has a live link, return that link instead
        (unless ``allow_duplicate_ref``). With ``send``, email it, unless it is an existing
        link that was emailed successfully before (``resend`` does that)."""
        if send and not self._mailer.enabled:
            raise EmailNotConfigured
        (issued,) = await self._links.issue_many(
            [new], actor=actor, reuse_refs=bool(new.ref) and not allow_duplicate_ref
        )
        existing = issued.existing
        shown = new_link_json(new)
        differs: list[str] = []
        if existing is not None:
            async with self._db.read() as session:
                stored = await link_items(session, existing.id)
            shown = {
                "name": existing.name,
                "payer_email": existing.email,
                "items": items_json(stored, existing.currency),
                "amount_total": existing.amount_total,
                "currency": existing.currency,
                "total": format_minor(existing.amount_total, existing.currency),
                "locale": existing.locale,
                "due": existing.due_date.isoformat() if existing.due_date else None,
                "reminders": existing.reminder_steps,
            }
            differs = differences(existing, new)
        email: SendResult | None = None
        skipped: str | None = None
        if send:
            if existing is not None and existing.sent_count > 0:
                skipped = "emailed before; use resend to email it again"
            else:
                status = (
                    await self._listing.status_of(issued.id) if existing is not None else "issued"
                )
                if status in NOT_SENDABLE:
                    email = SendResult(issued.id, False, f"not sent: the link is {status}")
                else:
                    email = await self._mailer.send_link(issued.id, actor=actor)
        return Created(
            issued.id,
            issued.url,
            issued.token,
            new.ref,
            existing is not None,
            shown,
            differs,
            email,
            skipped,
        )

    # --- many links --------------------------------------------------------------------------

    async def bulk(
        self,
        rows: BulkFile | Sequence[Mapping[str, Any] | FileRow],
        *,
        actor: str,
        dry_run: bool = False,
        skip_invalid: bool = False,
        send: bool = False,
        resend: bool = False,
        batch_rows: int | None = None,
    ) -> BulkReport:
        """:meth:`BulkIssuer.bulk` (see :mod:`gateway.services.bulk_issue`)."""
        options: dict[str, Any] = {} if batch_rows is None else {"batch_rows": batch_rows}
        return await self._bulk.bulk(
            rows,
            actor=actor,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            send=send,
            resend=resend,
            **options,
        )

    # --- resend -----------------------------------------------------------------------------

    async def resend(self, link_id: str, *, actor: str) -> SendResult:
        status = await self._listing.status_of(link_id)
        if status in NOT_SENDABLE:
            raise LinkNotSendable(link_id, status)
        return await self._mailer.send_link(link_id, actor=actor)
