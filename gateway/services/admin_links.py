"""What an admin does with links beyond one at a time: filtered lists, bulk issuance, resending,
and the payer's own "email me a new link" on an expired page.

Bulk runs are keyed by ``ref``, so running the same file twice is safe (see :meth:`bulk`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import AuditEntry, Link, LinkPreview, Order
from gateway.clock import Clock
from gateway.config import ConfigError, Settings, parse_duration
from gateway.domain.checkout import LinkState
from gateway.domain.errors import GatewayError, NotFound, ValidationFailed
from gateway.domain.links import ItemSpec, NewLink, validate_new_link
from gateway.domain.payments import PaymentProvider
from gateway.services.audit import audit
from gateway.services.checkout import link_view
from gateway.services.email import LinkMailer, SendResult
from gateway.services.links import LinkService
from gateway.services.payments import lock_link

log = logging.getLogger(__name__)

MAX_BULK_ROWS = 2000
SEND_CONCURRENCY = 4
# What an admin can filter on. ``duplicate`` is a flag (a second payment arrived), the others are
# one status each, computed in SQL exactly as the payer's page computes its state.
STATUSES = ("issued", "opened", "pending", "paid", "processing", "expired", "revoked", "duplicate")
_BULK_COLUMNS = {"email", "name", "description", "currency", "items", "amount", "ref", "valid_for"}


class LinkNotSendable(GatewayError):
    """Only a payable link is emailed: a paid, revoked or expired one would only confuse."""

    def __init__(self, link_id: str, state: str) -> None:
        super().__init__(f"link {link_id} is {state}; only a payable link can be emailed")
        self.state = state


# --- listing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkFilter:
    status: str | None = None
    ref_prefix: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True)
class LinkSummary:
    link: Link
    state: str  # what the payer's page shows: payable, paid, processing, revoked, expired
    status: str  # the admin's finer view (issued, opened, pending instead of payable)
    duplicate: bool
    previews: dict[str, int]


@dataclass(frozen=True, slots=True)
class LinkPage:
    links: list[LinkSummary]
    total: int
    limit: int
    offset: int

    @property
    def next_offset(self) -> int | None:
        after = self.offset + len(self.links)
        return after if after < self.total else None


def admin_status(state: LinkState, orders: Sequence[Order], open_count: int) -> str:
    """The admin's finer view of a payable link: issued, opened, or a payment pending."""
    if state is not LinkState.PAYABLE:
        return state.value
    if any(o.status == "pending" for o in orders):
        return "pending"
    return "opened" if open_count else "issued"


def _has_order(*statuses: str) -> sa.ColumnElement[bool]:
    return sa.exists().where(Order.link_id == Link.id, Order.status.in_(statuses))


def status_condition(status: str, now: datetime) -> sa.ColumnElement[bool]:
    """The SQL twin of :func:`admin_status` (a test checks they agree on every status)."""
    paid = _has_order("paid")
    processing = _has_order("processing")
    revoked = Link.revoked_at.is_not(None)
    expired = Link.valid_until <= now
    payable = sa.and_(~paid, ~processing, ~revoked, ~expired)
    pending = _has_order("pending")
    conditions: dict[str, sa.ColumnElement[bool]] = {
        "paid": paid,
        "processing": sa.and_(~paid, processing),
        "revoked": sa.and_(~paid, ~processing, revoked),
        "expired": sa.and_(~paid, ~processing, ~revoked, expired),
        "pending": sa.and_(payable, pending),
        "opened": sa.and_(payable, ~pending, Link.open_count > 0),
        "issued": sa.and_(payable, ~pending, Link.open_count == 0),
        "duplicate": sa.exists().where(Order.link_id == Link.id, Order.duplicate_of.is_not(None)),
    }
    return conditions[status]


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# --- bulk -----------------------------------------------------------------------------------


@dataclass
class BulkRow:
    row: int  # 1-based data row (a CSV's header is row 0)
    ref: str
    status: str = "invalid"  # would_create | created | existing | invalid | skipped
    errors: dict[str, str] = field(default_factory=dict)
    id: str | None = None
    url: str | None = None
    differs: list[str] = field(default_factory=list)
    email: SendResult | None = None
    new: NewLink | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"row": self.row, "ref": self.ref, "status": self.status}
        if self.errors:
            data["errors"] = self.errors
        if self.id:
            data["id"], data["url"] = self.id, self.url
        if self.differs:
            data["differs"] = self.differs
        if self.email is not None:
            data["email"] = {"sent": self.email.ok, "error": self.email.error}
        return data


@dataclass
class BulkReport:
    dry_run: bool
    rows: list[BulkRow]

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def invalid(self) -> list[BulkRow]:
        return [r for r in self.rows if r.errors]

    def as_dict(self) -> dict[str, Any]:
        emailed = [r.email for r in self.rows if r.email is not None]
        return {
            "dry_run": self.dry_run,
            "ok": not self.invalid and all(e.ok for e in emailed),
            "created": self.count("created"),
            "would_create": self.count("would_create"),
            "existing": self.count("existing"),
            "invalid": len(self.invalid),
            "skipped": self.count("skipped"),
            "emails_sent": sum(1 for e in emailed if e.ok),
            "emails_failed": sum(1 for e in emailed if not e.ok),
            "rows": [r.as_dict() for r in self.rows],
        }


class BulkInvalid(GatewayError):
    """At least one row is wrong and the run was not told to skip them: nothing was created."""

    def __init__(self, report: BulkReport) -> None:
        rows = ", ".join(str(r.row) for r in report.invalid)
        super().__init__(f"{len(report.invalid)} invalid row(s): {rows}; nothing was created")
        self.report = report


class BulkFormatError(GatewayError):
    """The file itself cannot be read (not CSV/JSON, missing columns, too many rows)."""


def parse_csv(text: str) -> list[dict[str, Any]]:
    """Rows of a CSV with a header. ``items`` holds ``Desc=Amount[xQty]`` parts separated by
    ``|``; or an ``amount`` column makes one item described by ``description``."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not header:
        raise BulkFormatError("the CSV is empty (expected a header row)")
    missing = {"email", "name", "ref"} - set(header)
    if missing:
        raise BulkFormatError(f"missing column(s): {', '.join(sorted(missing))}")
    if "items" not in header and "amount" not in header:
        raise BulkFormatError("an 'items' or an 'amount' column is required")
    unknown = sorted(set(header) - _BULK_COLUMNS)
    if unknown:
        raise BulkFormatError(
            f"unknown column(s): {', '.join(unknown)} (known: {', '.join(sorted(_BULK_COLUMNS))})"
        )
    reader.fieldnames = header
    rows: list[dict[str, Any]] = []
    for raw in reader:
        if None in raw:  # more cells than headers
            rows.append({**{k: v for k, v in raw.items() if k is not None}, "_extra": True})
            continue
        if not any((v or "").strip() for v in raw.values()):
            continue  # blank line
        rows.append(dict(raw))
    return rows


def parse_json(data: object) -> list[dict[str, Any]]:
    """``[{...}, ...]`` or ``{"rows": [...]}``; items as strings or objects."""
    if isinstance(data, dict):
        data = data.get("rows")
    if not isinstance(data, list):
        raise BulkFormatError('expected a list of rows or {"rows": [...]}')
    if not all(isinstance(row, dict) for row in data):
        raise BulkFormatError("every row must be a JSON object")
    return [dict(row) for row in data]


def _items_of(row: Mapping[str, Any]) -> list[str | ItemSpec] | str:
    """Items as given, or an error message."""
    items = row.get("items")
    if items in (None, "", []):
        amount = row.get("amount")
        if amount in (None, ""):
            return "items or amount is required"
        description = str(row.get("description") or "").strip() or "Payment"
        return [f"{description}={amount}"]
    if isinstance(items, str):
        return [part.strip() for part in items.split("|") if part.strip()]
    if not isinstance(items, list):
        return "items must be a list"
    parsed: list[str | ItemSpec] = []
    for item in items:
        if isinstance(item, str):
            parsed.append(item)
        elif isinstance(item, dict) and "description" in item and "amount" in item:
            quantity = item.get("quantity", 1)
            suffix = f"x{quantity}" if quantity not in (1, "1", None) else ""
            parsed.append(f"{item['description']}={item['amount']}{suffix}")
        else:
            return 'each item is "Description=Amount" or {"description", "amount", "quantity"}'
    return parsed


def validate_row(
    row: Mapping[str, Any], settings: Settings, *, require_ref: bool = True
) -> tuple[NewLink | None, dict[str, str]]:
    """One row (or one API request) to a :class:`NewLink`, with every problem reported."""
    if row.get("_extra"):
        return None, {"row": "more cells than columns"}
    unknown = sorted(set(row) - _BULK_COLUMNS)
    if unknown:
        return None, {"row": f"unknown field(s): {', '.join(unknown)}"}
    errors: dict[str, str] = {}
    ref = str(row.get("ref") or "").strip()
    if not ref and require_ref:
        # The ref is what makes a second run of the same file harmless.
        errors["ref"] = "a ref is required in bulk files (it identifies the row on a re-run)"
    valid_for: float = settings.checkout.default_valid_for
    if row.get("valid_for") not in (None, ""):
        try:
            valid_for = parse_duration(row["valid_for"], "valid_for")
        except ConfigError as exc:
            errors["valid_for"] = str(exc)
    items = _items_of(row)
    if isinstance(items, str):
        errors["items"] = items
        items = []
    try:
        new = validate_new_link(
            email=str(row.get("email") or ""),
            name=str(row.get("name") or ""),
            description=str(row.get("description") or ""),
            currency=str(row.get("currency") or settings.checkout.default_currency),
            items=items,
            ref=ref,
            valid_for=valid_for,
            max_valid_for=settings.tokens.max_age,
        )
    except ValidationFailed as exc:
        for key, value in exc.errors.items():
            errors.setdefault(key, value)
        return None, errors
    return (None, errors) if errors else (new, {})


def _differences(link: Link, new: NewLink) -> list[str]:
    differs = []
    if link.email.lower() != new.email.lower():
        differs.append("email")
    if link.name != new.name:
        differs.append("name")
    if (link.amount_total, link.currency) != (new.amount_total, new.currency):
        differs.append("amount")
    return differs


# --- renewal --------------------------------------------------------------------------------


class RenewOutcome(StrEnum):
    SENT = "sent"  # a fresh link was issued and emailed
    RESENT = "resent"  # a fresh link existed already; it was emailed again
    RATE_LIMITED = "rate_limited"
    NOT_RENEWABLE = "not_renewable"  # payable, paid, processing, or revoked by an admin
    EMAIL_FAILED = "email_failed"  # the fresh link exists; sending it failed (recorded)
    DISABLED = "disabled"  # email is not configured


@dataclass(frozen=True, slots=True)
class RenewResult:
    outcome: RenewOutcome
    new_link_id: str | None = None


@dataclass(frozen=True, slots=True)
class Replacement:
    """The newest link issued in place of a renewed one, as the old link's page tells it."""

    link_id: str
    sent_at: datetime  # when it was last emailed (issued, if it never was)
    state: LinkState


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
    ) -> None:
        self._db = db
        self._links = links
        self._mailer = mailer
        self._provider = provider
        self._settings = settings
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    # --- list -------------------------------------------------------------------------------

    async def list(self, f: LinkFilter) -> LinkPage:
        now = self.now()
        where: list[sa.ColumnElement[bool]] = []
        if f.status:
            if f.status not in STATUSES:
                raise ValidationFailed({"status": f"one of {', '.join(STATUSES)}"})
            where.append(status_condition(f.status, now))
        if f.ref_prefix:
            where.append(Link.ref.like(_like_prefix(f.ref_prefix), escape="\\"))
        if f.created_from:
            where.append(Link.created_at >= f.created_from)
        if f.created_to:
            where.append(Link.created_at < f.created_to)
        async with self._db.read() as session:
            total = (
                await session.execute(sa.select(sa.func.count()).select_from(Link).where(*where))
            ).scalar_one()
            links = (
                (
                    await session.execute(
                        sa.select(Link)
                        .where(*where)
                        .options(selectinload(Link.orders))
                        .order_by(Link.created_at.desc(), Link.id)
                        .limit(f.limit)
                        .offset(f.offset)
                    )
                )
                .scalars()
                .all()
            )
            previews: dict[str, dict[str, int]] = {}
            if links:
                rows = await session.execute(
                    sa.select(LinkPreview).where(LinkPreview.link_id.in_([x.id for x in links]))
                )
                for p in rows.scalars():
                    previews.setdefault(p.link_id, {})[p.bot_name] = p.count
        return LinkPage(
            [self._summary(link, now, previews.get(link.id, {})) for link in links],
            int(total),
            f.limit,
            f.offset,
        )

    def _summary(self, link: Link, now: datetime, previews: dict[str, int]) -> LinkSummary:
        state = link_view(link, [], link.orders, now).state
        return LinkSummary(
            link,
            state.value,
            admin_status(state, link.orders, link.open_count),
            any(o.duplicate_of for o in link.orders),
            previews,
        )

    async def status_of(self, link_id: str) -> str:
        async with self._db.read() as session:
            link = (
                await session.execute(
                    sa.select(Link).where(Link.id == link_id).options(selectinload(Link.orders))
                )
            ).scalar_one_or_none()
        if link is None:
            raise NotFound(link_id)
        return self._summary(link, self.now(), {}).status

    # --- bulk -------------------------------------------------------------------------------

    async def bulk(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        actor: str,
        dry_run: bool = False,
        skip_invalid: bool = False,
        send: bool = False,
        resend: bool = False,
    ) -> BulkReport:
        """Issue a link per row, all in one transaction, then (optionally) email them.

        Idempotent by ``ref``: a row whose ref already has a link that is not revoked is reported
        as ``existing`` and not created again. With ``send``, a link is emailed when it has never
        been sent successfully (new links, and earlier failures); ``resend`` emails existing
        links again too. So running the same file twice neither duplicates links nor emails.
        """
        if len(rows) > MAX_BULK_ROWS:
            raise BulkFormatError(f"at most {MAX_BULK_ROWS} rows per file, got {len(rows)}")
        if not rows:
            raise BulkFormatError("the file has no rows")
        report = BulkReport(dry_run, [])
        seen: dict[str, int] = {}
        for index, row in enumerate(rows, start=1):
            new, errors = validate_row(row, self._settings)
            ref = str(row.get("ref") or "").strip()
            if ref and ref in seen:
                errors["ref"] = f"the same ref as row {seen[ref]}"
                new = None
            elif ref:
                seen[ref] = index
            report.rows.append(BulkRow(index, ref, errors=errors, new=new))
        if report.invalid and not skip_invalid and not dry_run:
            raise BulkInvalid(report)
        for r in report.invalid:
            r.status = "invalid" if dry_run or not skip_invalid else "skipped"

        if send and not dry_run and not self._mailer.enabled:
            from gateway.services.email import EmailNotConfigured

            raise EmailNotConfigured
        todo = [r for r in report.rows if r.new is not None]
        existing = await self._existing({r.ref for r in todo})
        to_create: list[BulkRow] = []
        for r in todo:
            link = existing.get(r.ref)
            if link is not None:
                r.status, r.id = "existing", link.id
                r.url = self._links.url_for(link.id, link.created_at)[1]
                assert r.new is not None
                r.differs = _differences(link, r.new)
            else:
                r.status = "would_create" if dry_run else "created"
                to_create.append(r)
        if dry_run:
            return report
        if to_create:
            issued = await self._links.issue_many(
                [r.new for r in to_create if r.new is not None], actor=actor
            )
            for r, made in zip(to_create, issued, strict=True):
                r.id, r.url = made.id, made.url
        if send:
            await self._send_rows(report, existing, resend=resend, actor=actor)
        return report

    async def _existing(self, refs: set[str]) -> dict[str, Link]:
        if not refs:
            return {}
        found: dict[str, Link] = {}
        async with self._db.read() as session:
            rows = await session.execute(
                sa.select(Link)
                .where(Link.ref.in_(sorted(refs)), Link.revoked_at.is_(None))
                .order_by(Link.created_at)
            )
            for link in rows.scalars():
                found[link.ref] = link  # the newest wins
        return found

    async def _send_rows(
        self, report: BulkReport, existing: dict[str, Link], *, resend: bool, actor: str
    ) -> None:
        wanted: list[BulkRow] = []
        for r in report.rows:
            if r.status == "created":
                wanted.append(r)
            elif r.status == "existing":
                link = existing[r.ref]
                if resend or link.sent_count == 0:
                    wanted.append(r)
        # A few at a time: quick for a team of 30, gentle with a small club's mail relay.
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one(r: BulkRow) -> None:
            assert r.id is not None
            async with gate:
                status = await self.status_of(r.id) if r.status == "existing" else "issued"
                if status in ("paid", "processing", "revoked", "expired"):
                    r.email = SendResult(r.id, False, f"not sent: the link is {status}")
                    return
                r.email = await self._mailer.send_link(r.id, actor=actor)

        await asyncio.gather(*(one(r) for r in wanted))

    # --- resend -----------------------------------------------------------------------------

    async def resend(self, link_id: str, *, actor: str) -> SendResult:
        status = await self.status_of(link_id)
        if status in ("paid", "processing", "revoked", "expired"):
            raise LinkNotSendable(link_id, status)
        return await self._mailer.send_link(link_id, actor=actor)

    # --- the payer's fresh link -------------------------------------------------------------

    async def renew(self, link_id: str, *, token_expired: bool = False) -> RenewResult:
        """ "Email me a new link" from an expired page: revoke the old link, issue a new one for
        the same payment, and email it to the address on file, at most ``email.renew_limit``
        times per ``email.renew_window`` for one link.

        The new link is written before the old is revoked, in that order, so a crash in between
        leaves a replacement that the next request finds and sends again instead of a second one.
        """
        if not self._mailer.enabled:
            return RenewResult(RenewOutcome.DISABLED)
        limits = self._settings.email
        now = self.now()
        async with self._db.write() as session:
            link = await lock_link(session, link_id)
            if link is None:
                raise NotFound(link_id)
            recent = (
                await session.execute(
                    sa.select(sa.func.count())
                    .select_from(AuditEntry)
                    .where(
                        AuditEntry.link_id == link_id,
                        AuditEntry.action == "link.renew_requested",
                        AuditEntry.at > now - timedelta(seconds=limits.renew_window),
                    )
                )
            ).scalar_one()
            if recent >= limits.renew_limit:
                return RenewResult(RenewOutcome.RATE_LIMITED)
            target = await self._latest_replacement(session, link)
            orders = (
                (await session.execute(sa.select(Order).where(Order.link_id == target.id)))
                .scalars()
                .all()
            )
            items = (
                await session.execute(
                    sa.select(Link).where(Link.id == target.id).options(selectinload(Link.items))
                )
            ).scalar_one()
            state = link_view(target, items.items, orders, now).state
            fresh: Link | None = None
            if target.id != link.id and state is LinkState.PAYABLE:
                pass  # a replacement exists and works: send it again
            elif state is LinkState.EXPIRED or (
                state is LinkState.PAYABLE and token_expired and target.id == link.id
            ):
                fresh = self._links.add_link(
                    session,
                    self._copy(target, items.items),
                    actor="visitor",
                    now=now,
                    replaces=target.id,
                )
            else:
                # Paid, processing, or withdrawn by an admin: the page says what to do.
                return RenewResult(RenewOutcome.NOT_RENEWABLE)
            audit(
                session,
                at=now,
                link_id=link_id,
                action="link.renew_requested",
                actor="visitor",
                detail="fresh link requested from the expired page",
            )
            new_id = fresh.id if fresh is not None else target.id
            old_ids = [x for x in {link.id, target.id} if x != new_id]
        for old in old_ids:
            # Cancels a pending attempt and expires its Stripe session too; no-op when done.
            await self._links.revoke(
                old, actor="visitor", reason=f"replaced by {new_id}", provider=self._provider
            )
        result = await self._mailer.send_link(new_id, actor="visitor", renewal=True)
        if not result.ok:
            return RenewResult(RenewOutcome.EMAIL_FAILED, new_id)
        return RenewResult(RenewOutcome.SENT if fresh is not None else RenewOutcome.RESENT, new_id)

    async def replacement(self, link_id: str) -> Replacement | None:
        """What "Email me a new link" put in this link's place, if it did: read only."""
        async with self._db.read() as session:
            link = await session.get(Link, link_id)
            if link is None or link.revoked_at is None:
                return None
            target = await self._latest_replacement(session, link)
            if target.id == link.id:
                return None
            orders = (
                (await session.execute(sa.select(Order).where(Order.link_id == target.id)))
                .scalars()
                .all()
            )
        state = link_view(target, (), orders, self.now()).state
        return Replacement(target.id, target.last_sent_at or target.created_at, state)

    async def _latest_replacement(self, session: Any, link: Link) -> Link:
        current = link
        for _ in range(20):  # a chain of renewals; bounded against a cycle in bad data
            newer = (
                await session.execute(
                    sa.select(Link)
                    .where(Link.replaces_id == current.id)
                    .order_by(Link.created_at.desc(), Link.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
            if newer is None:
                return current
            current = newer
        return current

    def _copy(self, link: Link, items: Sequence[Any]) -> NewLink:
        original = (link.valid_until - link.created_at).total_seconds()
        valid_for = min(max(original, 3600.0), self._settings.tokens.max_age)
        return NewLink(
            email=link.email,
            name=link.name,
            description=link.description,
            currency=link.currency,
            items=tuple(ItemSpec(i.description, i.amount, i.quantity) for i in items),
            ref=link.ref,
            valid_for=valid_for,
        )
