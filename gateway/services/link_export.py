"""The console's CSV of links: the current filter, streamed, capped, escaped, audited.

- **Streamed**: :meth:`LinkExport.csv` is an async iterator of encoded chunks, one per batch of
  :data:`BATCH` links read from the database (the list's own cursor pages, newest first, whatever
  order the page was sorted in), so neither the rows nor the file is ever held whole.
- **Capped** at :data:`MAX_ROWS` rows; a longer result stops there, and a last line says so.
- **Escaped** against spreadsheet formula injection (OWASP "CSV injection"): a cell starting with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a single quote in front
  (:func:`neutralize`).
- **Masked**: payers' email addresses as a viewer sees them (``domain.accounts.mask_email``)
  unless the caller may see them.
- **Audited**: one entry (action ``export``, about no link, the actor, the filter and the number
  of rows) when the stream ends, whether it ran to the end, stopped at the cap, or the reader
  went away (then it says how far it got). A process killed mid-stream writes none.

The columns are stable machine names (a spreadsheet or a script reads them), not translated.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from gateway.adapters.db.engine import Database
from gateway.clock import Clock
from gateway.domain.accounts import mask_email
from gateway.domain.money import exponent
from gateway.services.audit import audit
from gateway.services.link_listing import LinkFilter, LinkListing, LinkSummary

MAX_ROWS = 100_000
BATCH = 500
COLUMNS = (
    "id",
    "reference",
    "payer_name",
    "payer_email",
    "amount",
    "currency",
    "status",
    "paid_twice",
    "created_at",
    "valid_until",
    "open_count",
    "bot_previews",
    "sent_count",
    "revoked_at",
)
# A cell starting with one of these is a formula to a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: str) -> str:
    """OWASP's advice for CSV cells: a leading single quote makes a would-be formula text."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else ""


def _amount(minor: int, currency: str) -> str:
    places = exponent(currency)
    if not places:
        return str(minor)
    whole, part = divmod(minor, 10**places)
    return f"{whole}.{part:0{places}d}"


def describe(f: LinkFilter) -> str:
    """The filter in a few words, for the audit trail."""
    parts = [
        f"status={f.status}" if f.status else "",
        f"ref_prefix={f.ref_prefix}" if f.ref_prefix else "",
        f"from={_iso(f.created_from)}" if f.created_from else "",
        f"to={_iso(f.created_to)}" if f.created_to else "",
        f"search[{f.match.describe()}]" if f.match else "",
    ]
    return " ".join(p for p in parts if p) or "all links"


class LinkExport:
    def __init__(self, db: Database, listing: LinkListing, clock: Clock) -> None:
        self._db = db
        self._listing = listing
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def row(self, s: LinkSummary, *, mask: bool) -> list[str]:
        link = s.link
        email = mask_email(link.email) if mask else link.email
        cells = [
            link.id,
            link.ref,
            link.name,
            email,
            _amount(link.amount_total, link.currency),
            link.currency.upper(),
            s.status,
            "yes" if s.duplicate else "no",
            _iso(link.created_at),
            _iso(link.valid_until),
            str(link.open_count),
            str(sum(s.previews.values())),
            str(link.sent_count),
            _iso(link.revoked_at),
        ]
        return [neutralize(c) for c in cells]

    async def csv(
        self,
        f: LinkFilter,
        *,
        actor: str,
        see_emails: bool,
        max_rows: int = MAX_ROWS,
        batch: int = BATCH,
    ) -> AsyncGenerator[bytes]:
        """The CSV (UTF-8 with a byte order mark, for spreadsheets), chunk by chunk."""
        page_filter = replace(f, sort="created_desc", offset=0, cursor=None, limit=batch)
        rows = 0
        outcome = "interrupted"
        try:
            yield "\ufeff".encode() + _line(COLUMNS)
            while True:
                page = await self._listing.list(page_filter)
                chunk = page.links[: max_rows - rows]
                if chunk:
                    rows += len(chunk)
                    yield b"".join(_line(self.row(s, mask=not see_emails)) for s in chunk)
                if rows >= max_rows and (page.next_cursor or len(page.links) > len(chunk)):
                    outcome = "capped"
                    yield _line([f"# stopped at {max_rows} rows: narrow the filter for the rest"])
                    break
                if page.next_cursor is None:
                    outcome = "complete"
                    break
                page_filter = replace(page_filter, cursor=page.next_cursor)
        finally:
            # Shielded: a reader that went away cancels the stream, not its audit entry.
            await asyncio.shield(self._audit(f, actor=actor, rows=rows, outcome=outcome))

    async def _audit(self, f: LinkFilter, *, actor: str, rows: int, outcome: str) -> None:
        async with self._db.write() as session:
            audit(
                session,
                at=self.now(),
                link_id=None,
                action="export",
                actor=actor,
                detail=f"CSV of links: {describe(f)}; {rows} rows ({outcome})",
            )


def _line(cells: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue().encode()
