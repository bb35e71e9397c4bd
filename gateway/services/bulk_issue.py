"""Issuing links from a file (CSV or JSON, parsed by :mod:`gateway.services.bulk_files`).

Bulk runs are keyed by ``ref``, so running the same file twice is
safe. Every row is validated before anything is written: one invalid row creates nothing
(unless ``skip_invalid``). Rows are then written in transactions of :data:`BATCH_ROWS`, so a
100,000-row file never holds SQLite's write lock for long; a file of up to
:data:`BATCH_ROWS` rows is one transaction. If the database fails mid-run, the batches
already written stay (the error says how many rows); running the file again creates the rest.
A ref that already has a live link is reported as existing (one live link per ref, as in
:mod:`gateway.services.admin_links`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import Link
from gateway.clock import Clock
from gateway.config import ConfigError, Settings, parse_duration
from gateway.domain.errors import GatewayError, ValidationFailed
from gateway.domain.links import ItemSpec, NewLink, validate_new_link
from gateway.domain.text import Text
from gateway.i18n import localize
from gateway.services.admin_links import NOT_SENDABLE, differences, new_link_json
from gateway.services.bulk_files import (
    COLUMNS,
    MAX_ROWS,
    BulkFile,
    BulkFormatError,
    FileRow,
    as_file_rows,
)
from gateway.services.email import EmailNotConfigured, LinkMailer, SendResult
from gateway.services.link_listing import LinkListing
from gateway.services.links import LinkService

log = logging.getLogger(__name__)

MAX_BULK_ROWS = MAX_ROWS
BATCH_ROWS = 2000
ANALYZE_AFTER = 10_000  # links created by one bulk run, on PostgreSQL
SEND_CONCURRENCY = 4


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

    def as_dict(self, locale: str | None = None) -> dict[str, Any]:
        """The row as JSON; with a ``locale``, its messages for people are in that language."""
        data: dict[str, Any] = {"row": self.row, "ref": self.ref, "status": self.status}
        if self.new is not None:
            data.update(new_link_json(self.new))
        if self.errors:
            data["errors"] = (
                {k: localize(locale, v) for k, v in self.errors.items()} if locale else self.errors
            )
        if self.id:
            data["id"], data["url"] = self.id, self.url
        if self.differs:
            data["differs"] = self.differs
        if self.email is not None:
            error = self.email.error
            if locale and error is not None:
                error = localize(locale, error)
            data["email"] = {"sent": self.email.ok, "error": error}
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

    def as_dict(self, locale: str | None = None) -> dict[str, Any]:
        return {**self.summary(locale), "rows": [r.as_dict(locale) for r in self.rows]}

    def to_json(self, locale: str | None = None) -> bytes:
        """:meth:`as_dict` as JSON, one row at a time (a 100,000-row report as dictionaries
        would take several times the memory of its text)."""
        chunks = [json.dumps(self.summary(locale))[:-1].encode(), b', "rows": [']
        for index, row in enumerate(self.rows):
            row_json = json.dumps(row.as_dict(locale)).encode()
            chunks.append((", " if index else "").encode() + row_json)
        chunks.append(b"]}")
        return b"".join(chunks)

    def summary(self, locale: str | None = None) -> dict[str, Any]:
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
            "warnings": [localize(locale, w) for w in self.warnings] if locale else self.warnings,
        }


class BulkInvalid(GatewayError):
    """At least one row is wrong and the run was not told to skip them: nothing was created."""

    def __init__(self, report: BulkReport) -> None:
        rows = ", ".join(str(r.row) for r in report.invalid[:50])
        count = len(report.invalid)
        if count > 50:
            message = Text(
                "%(count)s invalid row(s): %(rows)s and %(more)s more; nothing was created",
                count=count,
                rows=rows,
                more=count - 50,
            )
        else:
            message = Text(
                "%(count)s invalid row(s): %(rows)s; nothing was created", count=count, rows=rows
            )
        super().__init__(message)
        self.report = report


class BulkInterrupted(GatewayError):
    """The database failed after some batches were written: those links exist, the rest not."""

    def __init__(self, created: int, remaining: int) -> None:
        super().__init__(
            Text(
                "the run stopped after %(created)s link(s) were created (%(remaining)s row(s) "
                "not written); run the same file again: rows already created are recognised "
                "by ref",
                created=created,
                remaining=remaining,
            )
        )
        self.created = created
        self.remaining = remaining


def _text(row: Mapping[str, Any], key: str, errors: dict[str, str]) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errors.setdefault(key, Text("expected text"))
        return ""
    return str(value)  # validate_new_link checks the text itself


def _items_of(row: Mapping[str, Any]) -> list[str | ItemSpec] | str:
    """Items as given, or an error message."""
    items = row.get("items")
    if items in (None, "", []):
        amount = row.get("amount")
        if amount in (None, ""):
            return Text("items or amount is required")
        if isinstance(amount, bool) or not isinstance(amount, str | int | float):
            return Text("amount must be a number like 150.00")
        description = row.get("description") or ""
        if not isinstance(description, str):
            return Text("description must be text")
        return [f"{description.strip() or 'Payment'}={amount}"]
    if isinstance(items, str):
        return [part.strip() for part in items.split("|") if part.strip()]
    if not isinstance(items, list):
        return Text("items must be a list")
    parsed: list[str | ItemSpec] = []
    for item in items:
        if isinstance(item, str):
            parsed.append(item)
        elif isinstance(item, dict) and "description" in item and "amount" in item:
            description, amount = item["description"], item["amount"]
            quantity = item.get("quantity", 1)
            if not isinstance(description, str) or isinstance(amount, bool):
                return Text("an item's description must be text and its amount a number")
            if not isinstance(amount, str | int | float):
                return Text("an item's amount must be a number like 150.00")
            if isinstance(quantity, bool) or not isinstance(quantity, int | str):
                return Text("an item's quantity must be a whole number")
            suffix = f"x{quantity}" if quantity not in (1, "1") else ""
            parsed.append(f"{description}={amount}{suffix}")
        else:
            return Text(
                'each item is "Description=Amount" or {"description", "amount", "quantity"}'
            )
    return parsed


def validate_row(
    row: Mapping[str, Any] | FileRow,
    settings: Settings,
    *,
    require_ref: bool = True,
    now: datetime | None = None,
) -> tuple[NewLink | None, dict[str, str]]:
    """One row (or one API request) to a :class:`NewLink`, with every problem reported.
    ``now``: the issuing moment, which a ``due`` date is checked against (required with one)."""
    if isinstance(row, FileRow):
        if row.extra:
            return None, {"row": Text("more cells than columns")}
        row = row.fields
    unknown = sorted(str(k) for k in set(row) - COLUMNS)
    if unknown:
        return None, {"row": Text("unknown field(s): %(fields)s", fields=", ".join(unknown))}
    errors: dict[str, str] = {}
    ref = _text(row, "ref", errors).strip()
    if not ref and require_ref and "ref" not in errors:
        # The ref is what makes a second run of the same file harmless.
        errors["ref"] = Text("a ref is required in bulk files (it identifies the row on a re-run)")
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
            # An empty cell (or null) is no locale: the link follows the payer's browser.
            locale=_text(row, "locale", errors) or None,
            # Empty cells: no due date (no reminders), the configured schedule.
            due=_text(row, "due", errors) or None,
            reminders=_text(row, "reminders", errors) or None,
            now=now,
            timezone=settings.checkout.timezone,
        )
    except ValidationFailed as exc:
        for key, value in exc.errors.items():
            errors.setdefault(key, value)
        return None, errors
    return (None, errors) if errors else (new, {})


class BulkIssuer:
    def __init__(
        self,
        db: Database,
        links: LinkService,
        mailer: LinkMailer,
        settings: Settings,
        clock: Clock,
        listing: LinkListing,
    ) -> None:
        self._db = db
        self._links = links
        self._mailer = mailer
        self._settings = settings
        self._clock = clock
        self._listing = listing

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

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
                limit = format(MAX_BULK_ROWS, ",")
                raise BulkFormatError(Text("at most %(max)s rows per file", max=limit))
            new, errors = validate_row(file_row, self._settings, now=self.now())
            ref = new.ref if new is not None else str(file_row.fields.get("ref") or "").strip()
            if ref and ref in seen:
                errors["ref"] = Text("the same ref as row %(row)s", row=seen[ref])
                new = None
            elif ref:
                seen[ref] = file_row.number
            report.rows.append(BulkRow(file_row.number, ref, errors=errors, new=new))
        if not report.rows:
            raise BulkFormatError(Text("the file has no rows"))
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
                status = await self._listing.status_of(r.id) if r.status == "existing" else "issued"
                if status in NOT_SENDABLE:
                    r.email = SendResult(
                        r.id, False, Text("not sent: the link is %(status)s", status=status)
                    )
                    return
                r.email = await self._mailer.send_link(r.id, actor=actor)

        await asyncio.gather(*(one(r) for r in wanted))
