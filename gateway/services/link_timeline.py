"""One link's story for the console's detail page (issue 15 item 8): its items and total, and
ONE chronological list of everything that happened to it, each entry with who did it.

Where each kind of entry comes from:

- the link's row: created (by whom), issued in place of another link (``replaces_id``), opened
  (first and last open, how many), revoked (by whom, why), expired;
- the links that replaced this one (``replaces_id`` pointing here): renewals the other way;
- ``link_previews``: the preview fetches, by bot;
- ``outbox``: every message owed about the link (the link itself, fresh links, reminders,
  receipts, refund notices...), as queued, sent, failed, skipped or canceled;
- ``audit_entries``: everything else, with its actor: checkout attempts (with their Stripe
  session and the order's status now, from ``orders``), payments, refunds, disputes, the
  payer's "email me a new link", reminders stopped or paused, messages retried or canceled.

Nothing is said twice: the audit entries that restate a fact taken from the rows above are not
shown again (``link.issued``, ``link.revoked``; ``link.emailed`` / ``link.email_failed`` from
the time the link's sends went through the outbox, whose rows say the same with the kind and
the state; earlier ones, from before the outbox, are kept).

Bounded whatever an outsider did to the link: at most :data:`LIMIT` entries of the capped sources
(audit entries, messages, previews) are read and shown, the newest, next to the handful taken
from the link's own row; what is left out is counted (up to :data:`COUNT_CAP` per source) and
said ("and N more"). Read only: never writes.

Sentences are :class:`~gateway.domain.text.Text` (English, with their template and values),
translated at the edge; an actor is kept as recorded, with :attr:`Entry.who` naming the
gateway's own actors (the payer, Stripe, the reconciler) in words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from gateway.adapters.db.dialects import any_of
from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import AuditEntry, Link, LinkPreview, Order, OutboxMessage
from gateway.clock import Clock
from gateway.domain.checkout import LinkState
from gateway.domain.errors import NotFound
from gateway.domain.money import format_minor
from gateway.domain.orders import OrderStatus
from gateway.domain.outbox import Kind as MessageKind
from gateway.domain.outbox import State as MessageState
from gateway.domain.text import Text
from gateway.i18n.catalogs import N_
from gateway.services.admin_links import items_json
from gateway.services.checkout import link_view
from gateway.services.link_listing import admin_status
from gateway.services.links import LinkUrls

# Entries read per capped source, and shown at most in all (besides the link's own).
LIMIT: Final = 200
# What is left out is counted up to this many per source ("and more than N more").
COUNT_CAP: Final = 10_000
# Links that replaced this one, shown at most (a chain of renewals is short).
REPLACEMENTS: Final = 20

# Audit actions never shown as such: the link's row says them (with the same actor and time).
_FROM_LINK_ROW: Final = ("link.issued", "link.revoked")
# Restated by the outbox's rows, once the link's sends go through it.
_FROM_OUTBOX: Final = ("link.emailed", "link.email_failed")
_ORDER_ID: Final = cast(sa.ColumnElement[str], Order.__table__.c.id)
# The orders that decide the link's state (domain.checkout.link_state, admin_status).
_DECIDING: Final = (
    OrderStatus.PAID.value,
    OrderStatus.PROCESSING.value,
    OrderStatus.PENDING.value,
    OrderStatus.FAILED.value,
)


class EntryKind(StrEnum):
    """What an entry is about: a small fixed set, for icons, filters and tests."""

    CREATED = "created"
    EMAIL = "email"
    OPENED = "opened"
    PREVIEW = "preview"
    CHECKOUT = "checkout"
    PAYMENT = "payment"
    REFUND = "refund"
    DISPUTE = "dispute"
    RENEWAL = "renewal"
    REMINDERS = "reminders"
    REVOKED = "revoked"
    EXPIRED = "expired"
    OTHER = "other"


# The gateway's own actors, in words. Anything else is a person or a key: shown as recorded
# ("admin:<email>" as the email, masked for viewers by the page).
_ACTORS: Final[dict[str, str]] = {
    "visitor": N_("the payer"),
    "payer": N_("the payer"),
    "webhook": N_("Stripe"),
    "reconcile": N_("the gateway (checking with Stripe)"),
    "reconciler": N_("the gateway (checking with Stripe)"),
    "gateway": N_("the gateway"),
    "cli": N_("the command line"),
}
ACCOUNT_PREFIX: Final = "admin:"

_ORDER_STATUS: Final[dict[str, str]] = {
    OrderStatus.PENDING.value: N_("waiting for the payer"),
    OrderStatus.PROCESSING.value: N_("payment in progress"),
    OrderStatus.PAID.value: N_("paid"),
    OrderStatus.FAILED.value: N_("payment failed"),
    OrderStatus.REFUNDED.value: N_("refunded"),
    OrderStatus.CANCELED.value: N_("canceled"),
    OrderStatus.EXPIRED.value: N_("expired unpaid"),
}
_CANCEL_REASON: Final[dict[str, str]] = {
    "stale": N_("Checkout attempt replaced by a newer one (it had been left open)"),
    "superseded": N_("Checkout attempt closed: the link was paid another way"),
    "revoked": N_("Checkout attempt closed: the link was revoked"),
}
_MESSAGE: Final[dict[str, str]] = {
    MessageKind.LINK.value: N_("Payment link"),
    MessageKind.RENEWAL.value: N_("Fresh payment link"),
    MessageKind.RECEIPT.value: N_("Receipt"),
    MessageKind.PAYMENT_FAILED.value: N_("Payment failed notice"),
    MessageKind.PAID_TWICE.value: N_("Paid twice notice"),
    MessageKind.REFUNDED.value: N_("Refund notice"),
    MessageKind.REMINDER.value: N_("Reminder"),
    MessageKind.ALERT_DIGEST.value: N_("Alert digest"),
}
# Audit actions whose recorded detail only restates the sentence.
_SAID_IN_FULL: Final = ("link.renew_requested", "reminders.stopped", "link.emailed")
_AMOUNTS = re.compile(r"refunded (\d{1,18}) of (\d{1,18}) ([A-Za-z]{3})")


def _words(message: str, **params: Any) -> Text:
    """A Text from a template already marked with N_ (so extraction found it there)."""
    return Text(message, **params)


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime
    kind: EntryKind
    text: Text  # a sentence for people, translated at the edge
    actor: str | None  # as recorded: "admin:<email>", "visitor", "webhook", an API key's name
    order_id: str | None = None
    session_id: str | None = None  # the Stripe Checkout Session (cs_...)
    link_id: str | None = None  # another link: the one this replaced or was replaced by
    detail: str | None = None  # as recorded (an audit detail, a delivery error), untranslated
    until: datetime | None = None  # the last of a repeated event (opens, previews)
    # Among entries of the same moment: the link's creation first, its end last.
    rank: int = field(default=5, repr=False, compare=False)

    @property
    def who(self) -> Text | None:
        """The gateway's own actors in words; None for a person or a key (see :attr:`account`)."""
        if self.actor is None:
            return None
        found = _ACTORS.get(self.actor)
        return _words(found) if found is not None else None

    @property
    def account(self) -> str | None:
        """The console account's email when a person did it (``admin:<email>``)."""
        if self.actor and self.actor.startswith(ACCOUNT_PREFIX):
            return self.actor[len(ACCOUNT_PREFIX) :]
        return None


@dataclass(frozen=True, slots=True)
class Timeline:
    link: Link
    items: list[dict[str, Any]]  # services.admin_links.items_json: as stored and as read
    total: str  # "270.00 USD"
    state: str  # what the payer's page shows (domain.checkout.LinkState)
    status: str  # the admin's finer view (services.link_listing.admin_status)
    duplicate: bool  # a second payment arrived
    url: str  # the payer's page
    entries: tuple[Entry, ...]  # oldest first
    omitted: int = 0  # older entries left out (see LIMIT)
    omitted_exact: bool = True  # False: at least ``omitted`` (the count stopped at COUNT_CAP)
    replaced_by: tuple[str, ...] = field(default=())  # links issued in this one's place

    @property
    def more(self) -> Text | None:
        """ "and N more", when entries were left out."""
        if not self.omitted:
            return None
        if self.omitted_exact:
            return Text("and %(count)s earlier entries, not shown", count=self.omitted)
        return Text("and more than %(count)s earlier entries, not shown", count=self.omitted)


class LinkTimeline:
    def __init__(self, db: Database, clock: Clock, urls: LinkUrls) -> None:
        self._db = db
        self._clock = clock
        self._urls = urls

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    async def for_link(self, link_id: str) -> Timeline:
        """The link's timeline; :class:`NotFound` when there is no such link."""
        now = self.now()
        async with self._db.read() as session:
            link = (
                await session.execute(
                    sa.select(Link).where(Link.id == link_id).options(selectinload(Link.items))
                )
            ).scalar_one_or_none()
            if link is None:
                raise NotFound(link_id)
            replacements = (
                (
                    await session.execute(
                        sa.select(Link)
                        .where(Link.replaces_id == link_id)
                        .order_by(Link.created_at, Link.id)
                        .limit(REPLACEMENTS)
                    )
                )
                .scalars()
                .all()
            )
            first_send = await self._first_outbox_send(session, link_id)
            entries_q = self._audit_query(link_id, first_send)
            audit_rows = (
                (
                    await session.execute(
                        entries_q.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(LIMIT)
                    )
                )
                .scalars()
                .all()
            )
            messages_q = sa.select(OutboxMessage).where(OutboxMessage.link_id == link_id)
            messages = (
                (
                    await session.execute(
                        messages_q.order_by(
                            OutboxMessage.created_at.desc(), OutboxMessage.id.desc()
                        ).limit(LIMIT)
                    )
                )
                .scalars()
                .all()
            )
            previews_q = sa.select(LinkPreview).where(LinkPreview.link_id == link_id)
            previews = (
                (
                    await session.execute(
                        previews_q.order_by(
                            LinkPreview.first_at.desc(), LinkPreview.bot_name
                        ).limit(LIMIT)
                    )
                )
                .scalars()
                .all()
            )
            counts = [
                await _count(session, entries_q, len(audit_rows)),
                await _count(session, messages_q, len(messages)),
                await _count(session, previews_q, len(previews)),
            ]
            referenced = sorted({row.order_id for row in audit_rows if row.order_id})
            orders = await self._orders(session, link_id, referenced)

        by_id = {order.id: order for order in orders}
        deciding = [o for o in orders if o.status in _DECIDING]
        view = link_view(link, link.items, deciding, now)
        pinned = self._from_link(link, replacements, view.state, now)
        capped = (
            [_from_audit(row, by_id) for row in audit_rows]
            + [_from_message(row) for row in messages]
            + [_from_preview(row) for row in previews]
        )
        capped.sort(key=lambda e: e.at, reverse=True)
        shown = capped[:LIMIT]
        total = sum(n for n, _ in counts)
        exact = all(exact for _, exact in counts)
        entries = sorted(pinned + shown, key=_order)
        _, url = self._urls.url_for(link.id, link.created_at)
        return Timeline(
            link=link,
            items=items_json(link.items, link.currency),
            total=format_minor(link.amount_total, link.currency),
            state=view.state.value,
            status=admin_status(view.state, deciding, link.open_count),
            duplicate=any(o.duplicate_of for o in orders),
            url=url,
            entries=tuple(entries),
            omitted=max(total - len(shown), 0),
            omitted_exact=exact,
            replaced_by=tuple(r.id for r in replacements),
        )

    # --- reading ----------------------------------------------------------------------------

    async def _first_outbox_send(self, session: AsyncSession, link_id: str) -> datetime | None:
        t = OutboxMessage
        found: datetime | None = (
            await session.execute(
                sa.select(sa.func.min(t.created_at)).where(
                    t.link_id == link_id,
                    sa.or_(t.kind == MessageKind.LINK.value, t.kind == MessageKind.RENEWAL.value),
                )
            )
        ).scalar_one_or_none()
        return found

    def _audit_query(self, link_id: str, first_send: datetime | None) -> sa.Select[Any]:
        t = AuditEntry
        conditions: list[sa.ColumnElement[bool]] = [t.link_id == link_id]
        conditions.extend(t.action != action for action in _FROM_LINK_ROW)
        if first_send is not None:
            restated = sa.or_(*(t.action == action for action in _FROM_OUTBOX))
            conditions.append(sa.not_(sa.and_(restated, t.at >= first_send)))
        return sa.select(t).where(*conditions)

    async def _orders(
        self, session: AsyncSession, link_id: str, referenced: Sequence[str]
    ) -> Sequence[Order]:
        """The orders that decide the link's state, those a shown entry names, and duplicates:
        never every attempt of a link tried ten thousand times."""
        wanted: list[sa.ColumnElement[bool]] = [Order.status == s for s in _DECIDING]
        wanted.append(Order.duplicate_of.is_not(None))
        if referenced:
            wanted.append(any_of(_ORDER_ID, referenced, postgres=not self._db.is_sqlite))
        query = sa.select(Order).where(Order.link_id == link_id, sa.or_(*wanted))
        return (
            (await session.execute(query.order_by(Order.created_at, Order.id).limit(LIMIT * 2)))
            .scalars()
            .all()
        )

    # --- the link's own row -----------------------------------------------------------------

    def _from_link(
        self, link: Link, replacements: Sequence[Link], state: LinkState, now: datetime
    ) -> list[Entry]:
        entries = [
            Entry(
                link.created_at,
                EntryKind.CREATED,
                Text(
                    "Link created for %(total)s",
                    total=format_minor(link.amount_total, link.currency),
                ),
                link.created_by,
                rank=0,
            )
        ]
        if link.replaces_id:
            entries.append(
                Entry(
                    link.created_at,
                    EntryKind.RENEWAL,
                    Text("Issued in place of link %(link)s", link=link.replaces_id),
                    link.created_by,
                    link_id=link.replaces_id,
                    rank=1,
                )
            )
        if link.first_opened_at is not None and link.open_count:
            text = (
                Text("Opened by the payer")
                if link.open_count == 1
                else Text("Opened by the payer, %(count)s times in all", count=link.open_count)
            )
            last = link.last_opened_at if link.open_count > 1 else None
            entries.append(Entry(link.first_opened_at, EntryKind.OPENED, text, None, until=last))
        for newer in replacements:
            entries.append(
                Entry(
                    newer.created_at,
                    EntryKind.RENEWAL,
                    Text("Replaced by link %(link)s", link=newer.id),
                    newer.created_by,
                    link_id=newer.id,
                    rank=7,
                )
            )
        if link.revoked_at is not None:
            reason = link.revoke_reason
            entries.append(
                Entry(
                    link.revoked_at,
                    EntryKind.REVOKED,
                    Text("Link revoked: %(reason)s", reason=reason)
                    if reason
                    else Text("Link revoked"),
                    link.revoked_by,
                    rank=8,
                )
            )
        revoked_first = link.revoked_at is not None and link.revoked_at <= link.valid_until
        paid = state in (LinkState.PAID, LinkState.PROCESSING)
        if link.valid_until <= now and not revoked_first and not paid:
            entries.append(
                Entry(
                    link.valid_until, EntryKind.EXPIRED, Text("Link expired unpaid"), None, rank=9
                )
            )
        return entries


# --- entries from rows ------------------------------------------------------------------------


def _status(order: Order | None) -> Text:
    if order is None:
        return Text("unknown")
    return _words(_ORDER_STATUS.get(order.status, order.status))


def _from_audit(row: AuditEntry, orders: dict[str, Order]) -> Entry:
    order = orders.get(row.order_id) if row.order_id else None
    kind, text = _describe(row, order)
    if row.action in _SAID_IN_FULL:
        return Entry(row.at, kind, text, row.actor, order_id=row.order_id)
    session_id = order.stripe_session_id if order is not None else None
    detail = row.detail
    if detail and session_id and detail.startswith(f"session {session_id}"):
        # The session is shown as a reference already; keep only what the detail adds.
        detail = detail[len(f"session {session_id}") :].lstrip("; ") or None
    return Entry(
        row.at,
        kind,
        text,
        row.actor,
        order_id=row.order_id,
        session_id=session_id,
        detail=detail,
    )


def _describe(row: AuditEntry, order: Order | None) -> tuple[EntryKind, Text]:
    action = row.action
    if action == "order.created":
        return EntryKind.CHECKOUT, Text(
            "Checkout attempt started (now: %(status)s)", status=_status(order)
        )
    if action == "order.session_recovered":
        return EntryKind.CHECKOUT, Text("Checkout attempt's Stripe session found again")
    if action == "order.expired":
        return EntryKind.CHECKOUT, Text("Checkout attempt expired unpaid")
    if action == "order.canceled":
        reason = order.cancel_reason if order is not None else None
        found = _CANCEL_REASON.get(reason or "")
        return EntryKind.CHECKOUT, _words(found) if found else Text("Checkout attempt canceled")
    if action == "order.paid":
        if order is not None and order.duplicate_of:
            return EntryKind.PAYMENT, Text(
                "Paid again: the link was already paid (order %(order)s)",
                order=order.duplicate_of,
            )
        return EntryKind.PAYMENT, Text("Payment received")
    if action == "order.processing":
        return EntryKind.PAYMENT, Text("Bank payment started; it takes a few days to clear")
    if action == "order.failed":
        return EntryKind.PAYMENT, Text("Payment failed")
    if action in ("order.refunded", "order.partially_refunded"):
        return EntryKind.REFUND, _refund_text(row)
    if action == "order.disputed":
        return EntryKind.DISPUTE, Text("The payer disputed the payment with their bank")
    if action == "link.renew_requested":
        return EntryKind.RENEWAL, Text("The payer asked for a fresh link from the expired page")
    if action == "link.emailed":
        return EntryKind.EMAIL, Text("Payment link emailed")
    if action == "link.email_failed":
        return EntryKind.EMAIL, Text("Payment link email failed")
    if action == "mail.retried":
        return EntryKind.EMAIL, Text("Email sent again on request")
    if action == "mail.canceled":
        return EntryKind.EMAIL, Text("Email canceled on request")
    if action == "reminders.stopped":
        return EntryKind.REMINDERS, Text("Reminders stopped by the payer")
    if action == "reminders.paused":
        return EntryKind.REMINDERS, Text("Reminders paused")
    if action == "reminders.resumed":
        return EntryKind.REMINDERS, Text("Reminders resumed")
    return EntryKind.OTHER, Text("Recorded: %(action)s", action=action)


def _refund_text(row: AuditEntry) -> Text:
    full = row.action == "order.refunded"
    match = _AMOUNTS.search(row.detail or "")
    if row.detail and "duplicate payment refunded automatically" in row.detail:
        return Text("Second payment refunded automatically")
    if match is None:
        return Text("Payment refunded") if full else Text("Part of the payment refunded")
    refunded, paid, currency = int(match[1]), int(match[2]), match[3]
    if full:
        return Text("Payment refunded: %(amount)s", amount=format_minor(paid, currency))
    return Text(
        "Part of the payment refunded: %(amount)s of %(total)s in all",
        amount=format_minor(refunded, currency),
        total=format_minor(paid, currency),
    )


def _from_message(row: OutboxMessage) -> Entry:
    message = _words(_MESSAGE.get(row.kind, row.kind))
    try:
        payload = json.loads(row.payload or "{}")
    except ValueError:  # written by this code as JSON
        payload = {}
    actor = payload.get("actor") if isinstance(payload, dict) else None
    actor = str(actor) if actor else "gateway"
    state = row.state
    at, text, detail = row.created_at, Text("%(message)s queued", message=message), None
    if state == MessageState.SENDING.value:
        text = Text("%(message)s being sent", message=message)
    elif state == MessageState.SENT.value:
        at = row.sent_at or row.updated_at
        text = (
            Text("%(message)s emailed", message=message)
            if row.attempts <= 1
            else Text(
                "%(message)s emailed, after %(count)s attempts",
                message=message,
                count=row.attempts,
            )
        )
    elif state == MessageState.FAILED.value:
        at, detail = row.updated_at, row.last_error
        text = Text("%(message)s could not be sent", message=message)
    elif state == MessageState.SKIPPED.value:
        at, detail = row.updated_at, row.last_error
        text = Text("%(message)s not sent: no longer needed", message=message)
    elif state == MessageState.CANCELED.value:
        at, detail = row.updated_at, row.last_error
        text = Text("%(message)s canceled", message=message)
    return Entry(at, EntryKind.EMAIL, text, actor, order_id=row.order_id, detail=detail)


def _from_preview(row: LinkPreview) -> Entry:
    text = (
        Text("Link preview fetched by %(bot)s", bot=row.bot_name)
        if row.count <= 1
        else Text(
            "Link preview fetched by %(bot)s, %(count)s times in all",
            bot=row.bot_name,
            count=row.count,
        )
    )
    return Entry(
        row.first_at,
        EntryKind.PREVIEW,
        text,
        None,
        until=row.last_at if row.count > 1 else None,
    )


def _order(entry: Entry) -> tuple[datetime, int]:
    return entry.at, entry.rank


async def _count(session: AsyncSession, query: sa.Select[Any], read: int) -> tuple[int, bool]:
    """How many rows ``query`` has (it read ``read`` of them, up to LIMIT), counted up to
    COUNT_CAP: (count, exact)."""
    if read < LIMIT:
        return read, True
    capped = query.with_only_columns(sa.literal(1)).limit(COUNT_CAP + 1).subquery()
    found = int(
        (await session.execute(sa.select(sa.func.count()).select_from(capped))).scalar_one()
    )
    return min(found, COUNT_CAP), found <= COUNT_CAP


__all__ = ["Entry", "EntryKind", "LinkTimeline", "Timeline"]
