"""The CSV export of the links list (gateway.services.link_export) on both databases: the
current filter's rows in batches, capped, cells escaped against formula injection, emails
masked for viewers, and one audit entry with the actor, the filter and the row count."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry
from gateway.services import link_listing
from gateway.services.link_export import COLUMNS, LinkExport, neutralize
from gateway.services.link_listing import LinkFilter
from gateway.services.link_search import LinkSearch
from gateway.web.keys import DATABASE, LISTING, TOKENS
from tests.admin.support import AdminHarness, start_admin_harness

ACTOR = "admin:treasurer@riverside.example"


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> AdminHarness:
    return await start_admin_harness(aiohttp_server, aiohttp_client, database_url)


def exporter(h: AdminHarness) -> LinkExport:
    return LinkExport(h.app[DATABASE], h.app[LISTING], h.clock)


async def collect(chunks: AsyncIterator[bytes]) -> tuple[list[bytes], list[list[str]]]:
    parts = [chunk async for chunk in chunks]
    text = b"".join(parts).decode("utf-8")
    assert text.startswith("\ufeff")
    return parts, list(csv.reader(io.StringIO(text[1:])))


async def exports(h: AdminHarness) -> list[AuditEntry]:
    async with h.app[DATABASE].read() as session:
        rows = await session.execute(
            sa.select(AuditEntry).where(AuditEntry.action == "export").order_by(AuditEntry.id)
        )
        return list(rows.scalars())


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Sam Rivera", "Sam Rivera"),
        ("a=b", "a=b"),
    ],
)
def test_cells_that_a_spreadsheet_would_run_are_quoted(value: str, shown: str) -> None:
    assert neutralize(value) == shown


class TestExport:
    async def test_the_filter_rows_in_batches_and_one_audit_entry(self, h: AdminHarness) -> None:
        wanted = []
        for i in range(5):
            wanted.append((await h.issue(ref=f"U12-{i}", items=[f"Fee={10 + i}.50"])).id)
            h.clock.advance(60)
        other = await h.issue(ref="U14-0")
        search = await LinkSearch(h.app[DATABASE], h.app[TOKENS]).understand("U12-")
        assert search is not None
        f = LinkFilter(match=search.match, sort="amount_asc")
        parts, rows = await collect(exporter(h).csv(f, actor=ACTOR, see_emails=True, batch=2))
        assert rows[0] == list(COLUMNS)
        assert [r[0] for r in rows[1:]] == wanted[::-1]  # newest first, all of them
        assert other.id not in {r[0] for r in rows}
        assert len(parts) == 1 + 3  # the header, then three batches of at most two
        first = dict(zip(COLUMNS, rows[-1], strict=True))
        assert first["reference"] == "U12-0" and first["amount"] == "10.50"
        assert first["currency"] == "USD" and first["status"] == "issued"
        assert first["payer_email"] == "parent@example.com"
        (entry,) = await exports(h)
        assert entry.actor == ACTOR and entry.link_id is None
        assert entry.detail is not None
        assert "ref_prefix=U12-" in entry.detail and "5 rows (complete)" in entry.detail

    async def test_formulas_are_escaped_and_emails_masked_for_viewers(
        self, h: AdminHarness
    ) -> None:
        await h.issue(ref="=cmd|' /C calc'!A0", name="@Sam", email="jane.doe@example.org")
        _, rows = await collect(exporter(h).csv(LinkFilter(), actor=ACTOR, see_emails=False))
        row = dict(zip(COLUMNS, rows[1], strict=True))
        assert row["reference"] == "'=cmd|' /C calc'!A0"
        assert row["payer_name"] == "'@Sam"
        assert row["payer_email"] == "j•••@e•••.org"
        assert "jane" not in "".join(rows[1])

    async def test_a_long_result_stops_at_the_cap_and_says_so(self, h: AdminHarness) -> None:
        for i in range(4):
            await h.issue(ref=f"R{i}")
        _, rows = await collect(
            exporter(h).csv(LinkFilter(), actor=ACTOR, see_emails=True, max_rows=3, batch=2)
        )
        assert len(rows) == 1 + 3 + 1
        assert rows[-1][0].startswith("# stopped at 3 rows")
        (entry,) = await exports(h)
        assert entry.detail is not None and "3 rows (capped)" in entry.detail

    async def test_exactly_the_cap_is_complete(self, h: AdminHarness) -> None:
        for i in range(3):
            await h.issue(ref=f"R{i}")
        _, rows = await collect(
            exporter(h).csv(LinkFilter(), actor=ACTOR, see_emails=True, max_rows=3, batch=3)
        )
        assert len(rows) == 4
        (entry,) = await exports(h)
        assert entry.detail is not None and "(complete)" in entry.detail

    async def test_a_reader_that_goes_away_is_still_audited(self, h: AdminHarness) -> None:
        for i in range(4):
            await h.issue(ref=f"R{i}")
        stream = exporter(h).csv(LinkFilter(), actor=ACTOR, see_emails=True, batch=2)
        await anext(stream)  # the header
        await anext(stream)  # the first batch
        await stream.aclose()
        (entry,) = await exports(h)
        assert entry.detail is not None and "2 rows (interrupted)" in entry.detail

    async def test_a_status_filter_that_walks(
        self, h: AdminHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(link_listing, "DRIVE_CAP", 0)
        revoked = []
        for i in range(3):
            link = await h.issue(ref=f"R{i}")
            if i != 1:
                await h.api("POST", f"/links/{link.id}/revoke", json={"reason": "left"})
                revoked.append(link.id)
        _, rows = await collect(
            exporter(h).csv(LinkFilter(status="revoked"), actor=ACTOR, see_emails=True, batch=1)
        )
        assert sorted(r[0] for r in rows[1:]) == sorted(revoked)
        assert {r[6] for r in rows[1:]} == {"revoked"}
