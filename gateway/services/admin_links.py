"""What an admin does with links beyond one at a time: filtered lists, issuing with a ref,
bulk issuance and resending. (The payer's own "email me a new link" is
:mod:`gateway.services.renewal`.)

Rules:

- **One live link per ref.** A ref that already has a live (not revoked) link is not issued
  again, whether by ``links create`` or a bulk file: the existing link is returned and said to
  be existing (with ``differs`` when email, name or amount changed), unless the admin passes
  ``allow_duplicate_ref``. The check and the insert are one step (:meth:`LinkService.issue_many`).
- **Bulk runs** (:meth:`AdminLinks.bulk`) are keyed by ``ref``, so running the same file twice is
  safe. Every row is validated before anything is written: one invalid row creates nothing
  (unless ``skip_invalid``). Rows are then written in transactions of :data:`BATCH_ROWS`, so a
  100,000-row file never holds SQLite's write lock for long; a file of up to
  :data:`BATCH_ROWS` rows is one transaction. If the database fails mid-run, the batches
  already written stay (the error says how many rows); running the file again creates the rest.
- **Listing** is newest first, by ``(created_at, id)``, with an opaque cursor for the next page
  (constant cost at any depth) and a count that stops at :data:`COUNT_CAP` (``total_exact``
  says whether it did). ``offset`` still works, at a cost that grows with it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import selectinload

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link, LinkItem, LinkPreview, Order
from gateway.clock import Clock
from gateway.config import ConfigError, Settings, parse_duration
from gateway.domain.checkout import LinkState
from gateway.domain.errors import GatewayError, NotFound, ValidationFailed
from gateway.domain.links import ItemSpec, NewLink, text_problem, validate_new_link
from gateway.domain.money import format_minor
from gateway.domain.payments import PaymentProvider
from gateway.services.bulk_files import (
    COLUMNS,
    MAX_ROWS,
    BulkFile,
    BulkFormatError,
    FileRow,
    as_file_rows,
    parse_csv,
    parse_json,
)
from gateway.services.checkout import link_view
from gateway.services.email import EmailNotConfigured, LinkMailer, SendResult
from gateway.services.links import LinkService

log = logging.getLogger(__name__)

MAX_BULK_ROWS = MAX_ROWS
BATCH_ROWS = 2000
ANALYZE_AFTER = 10_000  # links created by one bulk run, on PostgreSQL
COUNT_CAP = 1000
# A status filter whose candidates (status_candidates) are at most this many looks only at them.
DRIVE_CAP = COUNT_CAP
# Above DRIVE_CAP and up to this many, a status's matches are counted from its orders.
WALK_FROM_ORDERS_CAP = 20_000
SEND_CONCURRENCY = 4
# What an admin can filter on. ``duplicate`` is a flag (a second payment arrived), the others are
# one status each, computed in SQL exactly as the payer's page computes its state.
STATUSES = (
    "issued",
    "opened",
    "pending",
    "failed",
    "paid",
    "processing",
    "expired",
    "revoked",
    "duplicate",
)
_NOT_SENDABLE = ("paid", "processing", "revoked", "expired")

__all__ = ["BulkFile", "BulkFormatError", "FileRow", "parse_csv", "parse_json"]


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
    cursor: str | None = None  # from a page's next_cursor; wins over offset


@dataclass(frozen=True, slots=True)
class LinkSummary:
    link: Link
    state: str  # what the payer's page shows: payable, paid, processing, revoked, expired
    status: str  # the admin's finer view (issued, opened, pending, failed instead of payable)
    duplicate: bool
    previews: dict[str, int]


@dataclass(frozen=True, slots=True)
class LinkPage:
    links: list[LinkSummary]
    total: int  # exact when total_exact, else "at least" (the count stops at COUNT_CAP)
    limit: int
    offset: int
    next_cursor: str | None = None
    total_exact: bool = True

    @property
    def next_offset(self) -> int | None:
        if self.next_cursor is None:
            return None
        return self.offset + len(self.links)


def encode_cursor(created_at: datetime, link_id: str) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{link_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, link_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(when)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationFailed({"cursor": "not a cursor this API gave out"}) from None
    if created_at.tzinfo is None or not link_id:
        raise ValidationFailed({"cursor": "not a cursor this API gave out"})
    return created_at, link_id


def admin_status(state: LinkState, orders: Sequence[Order], open_count: int) -> str:
    """The admin's finer view of a payable link: issued, opened, a payment pending, or a
    delayed payment (bank debit) that failed and nothing paid since."""
    if state is not LinkState.PAYABLE:
        return state.value
    if any(o.status == "pending" for o in orders):
        return "pending"
    if any(o.status == "failed" for o in orders):
        return "failed"
    return "opened" if open_count else "issued"


class _Unindexed(sa.sql.expression.ColumnElement[Any]):
    """A column SQLite's planner must not pick an index for (``+column``): with no statistics
    it takes ``revoked_at IS NULL`` for a selective condition, reads nearly every link through
    that index and sorts them all, instead of walking ``(created_at, id)`` and stopping after a
    page. Other databases get the column as it is."""

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(_Unindexed)
def _render_unindexed(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(_Unindexed, "sqlite")
def _render_unindexed_sqlite(element: _Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))


def _has_order(*statuses: str) -> sa.ColumnElement[bool]:
    """Whether the link has an order in one of ``statuses``: an index probe per link (a scalar
    subquery, which PostgreSQL never turns into a join: as NOT EXISTS it hashed every paid
    order before returning the first of a thousand links)."""
    first = (
        sa.select(sa.literal(1))
        .where(Order.link_id == Link.id, Order.status.in_(statuses))
        .limit(1)
        .scalar_subquery()
    )
    return first.is_not(None)


def status_condition(status: str, now: datetime) -> sa.ColumnElement[bool]:
    """The SQL twin of :func:`admin_status` (a test checks they agree on every status), with at
    most two order look-ups per link."""
    revoked = _Unindexed(Link.revoked_at).is_not(None)
    expired = _Unindexed(Link.valid_until) <= now
    live = sa.and_(~revoked, ~expired)  # neither revoked nor expired
    open_status = sa.and_(live, ~_has_order("paid", "processing", "pending", "failed"))
    conditions: dict[str, sa.ColumnElement[bool]] = {
        "paid": _has_order("paid"),
        "processing": sa.and_(_has_order("processing"), ~_has_order("paid")),
        "revoked": sa.and_(revoked, ~_has_order("paid", "processing")),
        "expired": sa.and_(~revoked, expired, ~_has_order("paid", "processing")),
        "pending": sa.and_(live, _has_order("pending"), ~_has_order("paid", "processing")),
        "failed": sa.and_(live, _has_order("failed"), ~_has_order("paid", "processing", "pending")),
        "opened": sa.and_(open_status, Link.open_count > 0),
        "issued": sa.and_(open_status, Link.open_count == 0),
        "duplicate": (
            sa.select(sa.literal(1))
            .where(Order.link_id == Link.id, Order.duplicate_of.is_not(None))
            .limit(1)
            .scalar_subquery()
            .is_not(None)
        ),
    }
    return conditions[status]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ORDER_STATUSES = ("paid", "processing", "pending", "failed")


def status_candidates(status: str, now: datetime) -> sa.Select[Any]:
    """Link ids that a status can only be found among, read from an index: when they are few,
    a list looks only at them (see :meth:`AdminLinks.list`)."""
    if status in _ORDER_STATUSES:
        return sa.select(Order.link_id).where(Order.status == status)
    if status == "duplicate":
        return sa.select(Order.link_id).where(Order.duplicate_of.is_not(None))
    if status == "revoked":
        # A range, not IS NOT NULL: SQLite reads a range from the index.
        return sa.select(Link.id).where(Link.revoked_at > _EPOCH)
    if status == "expired":
        return sa.select(Link.id).where(Link.valid_until <= now)
    return sa.select(Link.id).where(Link.valid_until > now)  # issued, opened


def _before(key: tuple[datetime, str]) -> sa.ColumnElement[bool]:
    """Links after ``key`` in the list's order. ``created_at <= x`` comes first and alone so
    that the index on ``(created_at, id)`` is read from ``key`` on, not from the top."""
    created_at, link_id = key
    return sa.and_(
        Link.created_at <= created_at,
        sa.or_(Link.created_at < created_at, Link.id < link_id),
    )


def _successor(prefix: str) -> str | None:
    """The smallest string after every string that starts with ``prefix`` (code point order,
    which is UTF-8's byte order and SQLite's BINARY collation), or None."""
    for cut in range(len(prefix) - 1, -1, -1):
        point = ord(prefix[cut]) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000
        if point <= 0x10FFFF:
            return prefix[:cut] + chr(point)
    return None


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


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
    }


# --- bulk -----------------------------------------------------------------------------------


@dataclass(slots=True)
class BulkRow:
    row: int  # the spreadsheet's row number (header = row 1); JSON rows count from 1
    ref: str
    status: str = "invalid"  # would_create | created | existing | invalid | skipped
    errors: dict[str, str] = field(default_factory=dict)
    id: str | None = None
    url: str | None = None
    differs: list[str] = field(default_factory=list)
    email: SendResult | None = None
    new: NewLink | None = None
    sent_before: bool = False  # an existing link emailed successfully before

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"row": self.row, "ref": self.ref, "status": self.status}
        if self.new is not None:
            data.update(new_link_json(self.new))
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
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def invalid(self) -> list[BulkRow]:
        return [r for r in self.rows if r.errors]

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary(), "rows": [r.as_dict() for r in self.rows]}

    def to_json(self) -> bytes:
        """:meth:`as_dict` as JSON, one row at a time (a 100,000-row report as dictionaries
        would take several times the memory of its text)."""
        chunks = [json.dumps(self.summary())[:-1].encode(), b', "rows": [']
        for index, row in enumerate(self.rows):
            chunks.append((", " if index else "").encode() + json.dumps(row.as_dict()).encode())
        chunks.append(b"]}")
        return b"".join(chunks)

    def summary(self) -> dict[str, Any]:
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
            "warnings": self.warnings,
        }


class BulkInvalid(GatewayError):
    """At least one row is wrong and the run was not told to skip them: nothing was created."""

    def __init__(self, report: BulkReport) -> None:
        rows = ", ".join(str(r.row) for r in report.invalid[:50])
        more = f" and {len(report.invalid) - 50} more" if len(report.invalid) > 50 else ""
        super().__init__(f"{len(report.invalid)} invalid row(s): {rows}{more}; nothing was created")
        self.report = report


class BulkInterrupted(GatewayError):
    """The database failed after some batches were written: those links exist, the rest not."""

    def __init__(self, created: int, remaining: int) -> None:
        super().__init__(
            f"the run stopped after {created} link(s) were created ({remaining} row(s) not "
            "written); run the same file again: rows already created are recognised by ref"
        )
        self.created = created
        self.remaining = remaining


def _text(row: Mapping[str, Any], key: str, errors: dict[str, str]) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errors.setdefault(key, "expected text")
        return ""
    return str(value)  # validate_new_link checks the text itself


def _items_of(row: Mapping[str, Any]) -> list[str | ItemSpec] | str:
    """Items as given, or an error message."""
    items = row.get("items")
    if items in (None, "", []):
        amount = row.get("amount")
        if amount in (None, ""):
            return "items or amount is required"
        if isinstance(amount, bool) or not isinstance(amount, str | int | float):
            return "amount must be a number like 150.00"
        description = row.get("description") or ""
        if not isinstance(description, str):
            return "description must be text"
        return [f"{description.strip() or 'Payment'}={amount}"]
    if isinstance(items, str):
        return [part.strip() for part in items.split("|") if part.strip()]
    if not isinstance(items, list):
        return "items must be a list"
    parsed: list[str | ItemSpec] = []
    for item in items:
        if isinstance(item, str):
            parsed.append(item)
        elif isinstance(item, dict) and "description" in item and "amount" in item:
            description, amount = item["description"], item["amount"]
            quantity = item.get("quantity", 1)
            if not isinstance(description, str) or isinstance(amount, bool):
                return "an item's description must be text and its amount a number"
            if not isinstance(amount, str | int | float):
                return "an item's amount must be a number like 150.00"
            if isinstance(quantity, bool) or not isinstance(quantity, int | str):
                return "an item's quantity must be a whole number"
            suffix = f"x{quantity}" if quantity not in (1, "1") else ""
            parsed.append(f"{description}={amount}{suffix}")
        else:
            return 'each item is "Description=Amount" or {"description", "amount", "quantity"}'
    return parsed


def validate_row(
    row: Mapping[str, Any] | FileRow, settings: Settings, *, require_ref: bool = True
) -> tuple[NewLink | None, dict[str, str]]:
    """One row (or one API request) to a :class:`NewLink`, with every problem reported."""
    if isinstance(row, FileRow):
        if row.extra:
            return None, {"row": "more cells than columns"}
        row = row.fields
    unknown = sorted(str(k) for k in set(row) - COLUMNS)
    if unknown:
        return None, {"row": f"unknown field(s): {', '.join(unknown)}"}
    errors: dict[str, str] = {}
    ref = _text(row, "ref", errors).strip()
    if not ref and require_ref and "ref" not in errors:
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
            email=_text(row, "email", errors),
            name=_text(row, "name", errors),
            description=_text(row, "description", errors),
            currency=_text(row, "currency", errors) or settings.checkout.default_currency,
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


def differences(link: Link, new: NewLink) -> list[str]:
    differs = []
    if link.email.lower() != new.email.lower():
        differs.append("email")
    if link.name != new.name:
        differs.append("name")
    if (link.amount_total, link.currency) != (new.amount_total, new.currency):
        differs.append("amount")
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
    shown: dict[str, Any]  # name, payer_email, items, total: of the new link or the existing one
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
        """A page of links, newest first, at a cost that does not grow with the table.

        With a status filter, the status's candidates (:func:`status_candidates`, an index
        read) are fetched first: up to :data:`DRIVE_CAP` of them, only those links are looked
        at (an exact total); more, and the links are walked newest first until the page is
        full, the total counted up to :data:`COUNT_CAP`.
        """
        now = self.now()
        where: list[sa.ColumnElement[bool]] = []
        if f.status and f.status not in STATUSES:
            raise ValidationFailed({"status": f"one of {', '.join(STATUSES)}"})
        if f.ref_prefix:
            problem = text_problem(f.ref_prefix)
            if problem:
                raise ValidationFailed({"ref_prefix": problem})
            where.append(Link.ref.like(_like_prefix(f.ref_prefix), escape="\\"))
            upper = _successor(f.ref_prefix)
            if self._db.is_sqlite and upper is not None:
                # The same links, as a range SQLite reads from ix_links_ref (its LIKE cannot
                # use the index, and ignores case where PostgreSQL's does not).
                where.append(sa.and_(Link.ref >= f.ref_prefix, Link.ref < upper))
        if f.created_from:
            where.append(Link.created_at >= f.created_from)
        if f.created_to:
            where.append(Link.created_at < f.created_to)
        after = decode_cursor(f.cursor) if f.cursor else None
        offset = 0 if after else f.offset
        async with self._db.read() as session:
            if not self._db.is_sqlite:
                # A page reads a few thousand rows at most: starting parallel workers, or
                # compiling the plan (its cost looks high: a subquery per link), costs more.
                # And sorting: it takes "(subquery) IS NULL" for rare, expects to read most of
                # the table for a page, and sorts it all instead of walking (created_at, id).
                await session.execute(
                    sa.text(
                        "SELECT set_config('max_parallel_workers_per_gather', '0', true),"
                        " set_config('jit', 'off', true), set_config('enable_sort', 'off', true)"
                    )
                )
            candidates: sa.Select[Any] | None = None
            few: list[str] | None = None
            if f.status:
                where.append(status_condition(f.status, now))
                candidates = status_candidates(f.status, now)
                found = list((await session.execute(candidates.limit(DRIVE_CAP + 1))).scalars())
                few = sorted(set(found)) if len(found) <= DRIVE_CAP else None
            if few is not None:
                rows, total, exact = await self._few(session, few, where, after, offset, f.limit)
            else:
                rows, total, exact = await self._walk(
                    session, f.status, candidates, where, after, offset, f.limit
                )
            links, more = rows[: f.limit], len(rows) > f.limit
            previews: dict[str, dict[str, int]] = {}
            if links:
                preview_rows = await session.execute(
                    sa.select(LinkPreview).where(LinkPreview.link_id.in_([x.id for x in links]))
                )
                for p in preview_rows.scalars():
                    previews.setdefault(p.link_id, {})[p.bot_name] = p.count
        last = links[-1] if links and more else None
        return LinkPage(
            [self._summary(link, now, previews.get(link.id, {})) for link in links],
            total,
            f.limit,
            f.offset,
            next_cursor=encode_cursor(last.created_at, last.id) if last else None,
            total_exact=exact,
        )

    async def _few(
        self,
        session: Any,
        few: Sequence[str],
        where: Sequence[sa.ColumnElement[bool]],
        after: tuple[datetime, str] | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Link], int, bool]:
        """A page from a status's few candidates: the database counts and sorts the matches
        among them and returns one page (the ids are sent, not a subquery: PostgreSQL would
        hash-join the whole table). The total is exact."""
        matches = (
            sa.select(Link.id, Link.created_at, sa.func.count().over().label("total"))
            .where(self._id_in(few), *where)
            .subquery()
        )
        page = sa.select(matches.c.id, matches.c.total)
        if after:
            page = page.where(
                matches.c.created_at <= after[0],
                sa.or_(matches.c.created_at < after[0], matches.c.id < after[1]),
            )
        found = (
            await session.execute(
                page.order_by(matches.c.created_at.desc(), matches.c.id.desc())
                .limit(limit + 1)
                .offset(offset)
            )
        ).all()
        ids = [row[0] for row in found]
        if found:
            total = int(found[0][1])
        else:  # past the end: count on its own
            total = (
                await session.execute(sa.select(sa.func.count()).select_from(matches))
            ).scalar_one()
        loaded = await session.execute(
            sa.select(Link).where(self._id_in(ids)).options(selectinload(Link.orders))
        )
        by_id = {link.id: link for link in loaded.scalars()}
        return [by_id[i] for i in ids if i in by_id], int(total), True

    async def _walk(
        self,
        session: Any,
        status: str | None,
        candidates: sa.Select[Any] | None,
        where: Sequence[sa.ColumnElement[bool]],
        after: tuple[datetime, str] | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Link], int, bool]:
        """A page walked newest first along ``(created_at, id)`` until it is full, and the
        matches counted up to :data:`COUNT_CAP`."""
        counting = list(where)
        if status in (*_ORDER_STATUSES, "duplicate") and candidates is not None:
            some = (
                await session.execute(
                    sa.select(sa.func.count()).select_from(
                        candidates.limit(WALK_FROM_ORDERS_CAP + 1).subquery()
                    )
                )
            ).scalar_one()
            if some <= WALK_FROM_ORDERS_CAP:
                # Not that many: count the links reached from the status's orders rather than
                # walk every link (when they are many, the walk finds the matches at once).
                counting.append(Link.id.in_(candidates))
        counted = (
            await session.execute(
                sa.select(sa.func.count()).select_from(
                    sa.select(Link.id).where(*counting).limit(COUNT_CAP + 1).subquery()
                )
            )
        ).scalar_one()
        paging = [*where, _before(after)] if after else list(where)
        rows = (
            await session.execute(
                sa.select(Link)
                .where(*paging)
                .options(selectinload(Link.orders))
                .order_by(Link.created_at.desc(), Link.id.desc())
                .limit(limit + 1)
                .offset(offset)
            )
        ).scalars()
        return list(rows), min(int(counted), COUNT_CAP), int(counted) <= COUNT_CAP

    def _id_in(self, ids: Sequence[str]) -> sa.ColumnElement[bool]:
        if self._db.is_sqlite:
            return Link.id.in_(ids)
        # One array parameter: the same statement (prepared once) whatever the number of ids.
        return Link.id == sa.any_(sa.bindparam("ids", list(ids), type_=ARRAY(sa.String)))

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
                stored = (
                    (
                        await session.execute(
                            sa.select(LinkItem)
                            .where(LinkItem.link_id == existing.id)
                            .order_by(LinkItem.position)
                        )
                    )
                    .scalars()
                    .all()
                )
            shown = {
                "name": existing.name,
                "payer_email": existing.email,
                "items": items_json(stored, existing.currency),
                "amount_total": existing.amount_total,
                "currency": existing.currency,
                "total": format_minor(existing.amount_total, existing.currency),
            }
            differs = differences(existing, new)
        email: SendResult | None = None
        skipped: str | None = None
        if send:
            if existing is not None and existing.sent_count > 0:
                skipped = "emailed before; use resend to email it again"
            else:
                status = await self.status_of(issued.id) if existing is not None else "issued"
                if status in _NOT_SENDABLE:
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

    # --- bulk -------------------------------------------------------------------------------

    async def bulk(
        self,
        rows: BulkFile | Sequence[Mapping[str, Any] | FileRow],
        *,
        actor: str,
        dry_run: bool = False,
        skip_invalid: bool = False,
        send: bool = False,
        resend: bool = False,
        batch_rows: int = BATCH_ROWS,
    ) -> BulkReport:
        """Issue a link per row (see the module docstring), then (optionally) email them.

        Idempotent by ``ref``: a row whose ref already has a link that is not revoked is reported
        as ``existing`` and not created again. With ``send``, a link is emailed when it has never
        been sent successfully (new links, and earlier failures); ``resend`` emails existing
        links again too. So running the same file twice neither duplicates links nor emails.
        """
        warnings = list(rows.warnings) if isinstance(rows, BulkFile) else []
        file_rows = as_file_rows(rows if isinstance(rows, BulkFile) else list(rows))
        report = BulkReport(dry_run, [], warnings)
        seen: dict[str, int] = {}
        for file_row in file_rows:
            if len(report.rows) >= MAX_BULK_ROWS:
                raise BulkFormatError(f"at most {MAX_BULK_ROWS:,} rows per file")
            new, errors = validate_row(file_row, self._settings)
            ref = new.ref if new is not None else str(file_row.fields.get("ref") or "").strip()
            if ref and ref in seen:
                errors["ref"] = f"the same ref as row {seen[ref]}"
                new = None
            elif ref:
                seen[ref] = file_row.number
            report.rows.append(BulkRow(file_row.number, ref, errors=errors, new=new))
        if not report.rows:
            raise BulkFormatError("the file has no rows")
        if report.invalid and not skip_invalid and not dry_run:
            raise BulkInvalid(report)
        for r in report.invalid:
            r.status = "invalid" if dry_run or not skip_invalid else "skipped"
        if send and not dry_run and not self._mailer.enabled:
            raise EmailNotConfigured
        todo = [r for r in report.rows if r.new is not None]
        if dry_run:
            existing = await self._links.live_by_ref([r.ref for r in todo])
            for r in todo:
                self._mark(r, existing.get(r.ref), "would_create")
            return report
        created = 0
        for start in range(0, len(todo), max(batch_rows, 1)):
            batch = todo[start : start + batch_rows]
            try:
                issued = await self._links.issue_many(
                    [r.new for r in batch if r.new is not None], actor=actor, reuse_refs=True
                )
            except Exception:
                if not created:
                    raise
                log.exception("bulk run interrupted", extra={"links_created": created})
                raise BulkInterrupted(created, len(todo) - start) from None
            for r, made in zip(batch, issued, strict=True):
                self._mark(r, made.existing, "created")
                if made.existing is None:
                    r.id, r.url = made.id, made.url
                    created += 1
        if created >= ANALYZE_AFTER and not self._db.is_sqlite:
            # Fresh statistics now rather than at autovacuum's next pass: PostgreSQL plans the
            # admin list from them, and a table that doubled looks empty to it until then.
            async with self._db.engine.begin() as connection:
                await connection.execute(sa.text("ANALYZE links, link_items"))
        if send:
            await self._send_rows(report, resend=resend, actor=actor)
        return report

    def _mark(self, r: BulkRow, link: Link | None, new_status: str) -> None:
        if link is None:
            r.status = new_status
            return
        r.status, r.id = "existing", link.id
        r.url = self._links.url_for(link.id, link.created_at)[1]
        r.sent_before = link.sent_count > 0
        assert r.new is not None
        r.differs = differences(link, r.new)

    async def _send_rows(self, report: BulkReport, *, resend: bool, actor: str) -> None:
        wanted = [
            r
            for r in report.rows
            if r.status == "created" or (r.status == "existing" and (resend or not r.sent_before))
        ]
        # A few at a time: quick for a team of 30, gentle with a small club's mail relay.
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def one(r: BulkRow) -> None:
            assert r.id is not None
            async with gate:
                status = await self.status_of(r.id) if r.status == "existing" else "issued"
                if status in _NOT_SENDABLE:
                    r.email = SendResult(r.id, False, f"not sent: the link is {status}")
                    return
                r.email = await self._mailer.send_link(r.id, actor=actor)

        await asyncio.gather(*(one(r) for r in wanted))

    # --- resend -----------------------------------------------------------------------------

    async def resend(self, link_id: str, *, actor: str) -> SendResult:
        status = await self.status_of(link_id)
        if status in _NOT_SENDABLE:
            raise LinkNotSendable(link_id, status)
        return await self._mailer.send_link(link_id, actor=actor)
