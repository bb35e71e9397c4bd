"""Bulk files as spreadsheets write them, through the API: delimiters, line endings, encodings,
sizes, the spreadsheet's row numbers, and files past the old 2,000-row cap."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Link
from gateway.services import bulk_files
from gateway.services import bulk_issue as admin_links
from gateway.web import admin as admin_web
from gateway.web.keys import DATABASE
from tests.admin.support import AdminHarness, start_admin_harness

CSV = {"Content-Type": "text/csv"}
ROWS = [
    ("maya@example.com", "Ana López", "f/1", "150.00"),
    ("leo@example.com", "Ben Okafor", "f/2", "120.00"),
]


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> AdminHarness:
    return await start_admin_harness(aiohttp_server, aiohttp_client, database_url)


def table(delimiter: str = ",", newline: str = "\n") -> str:
    lines = [delimiter.join(("email", "name", "ref", "amount"))]
    lines += [delimiter.join(row) for row in ROWS]
    return newline.join(lines) + newline


async def send(h: AdminHarness, body: bytes, **params: str) -> tuple[int, Any]:
    response = await h.api("POST", "/links/bulk", data=body, headers=CSV, params=params)
    return response.status, await response.json()


async def names(h: AdminHarness) -> list[str]:
    async with h.app[DATABASE].read() as session:
        return sorted((await session.execute(sa.select(Link.name))).scalars())


class TestWhatSpreadsheetsWrite:
    @pytest.mark.parametrize(
        ("delimiter", "newline"),
        [(",", "\n"), (";", "\r\n"), ("\t", "\r\n"), (",", "\r"), (";", "\r")],
    )
    async def test_delimiters_and_line_endings(
        self, h: AdminHarness, delimiter: str, newline: str
    ) -> None:
        status, report = await send(h, table(delimiter, newline).encode())
        assert status == 201, report
        assert [r["row"] for r in report["rows"]] == [2, 3]
        assert await names(h) == ["Ana López", "Ben Okafor"]

    @pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
    async def test_utf8_with_or_without_a_bom(self, h: AdminHarness, encoding: str) -> None:
        status, report = await send(h, table().encode(encoding))
        assert status == 201 and report["warnings"] == []
        assert await names(h) == ["Ana López", "Ben Okafor"]

    @pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
    async def test_windows_1252_is_read_with_a_warning(
        self, h: AdminHarness, encoding: str
    ) -> None:
        status, report = await send(h, table(";", "\r\n").encode(encoding))
        assert status == 201, report
        assert "read as Windows-1252" in report["warnings"][0]
        assert report["rows"][0]["name"] == "Ana López"
        assert await names(h) == ["Ana López", "Ben Okafor"]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (table().encode("utf-16"), "UTF-16"),
            (table().encode("utf-16-le"), "NUL bytes"),
            (table().encode("utf-32"), "UTF-32"),
            (table().encode("utf-8") + b"\x81\x8d", "neither UTF-8 nor Windows-1252"),
        ],
    )
    async def test_other_encodings_are_a_400_that_says_how_to_save(
        self, h: AdminHarness, body: bytes, message: str
    ) -> None:
        status, answer = await send(h, body)
        assert status == 400, answer
        assert answer["error"]["code"] == "bad_file"
        assert message in answer["error"]["message"] and "CSV UTF-8" in answer["error"]["message"]
        assert await names(h) == []

    @pytest.mark.parametrize("size", [10 * 1024 + 1, 128 * 1024 + 10])
    async def test_a_cell_over_10_kb_is_a_400_naming_its_row(
        self, h: AdminHarness, size: int
    ) -> None:
        body = table() + f'x@example.com,"{"x" * size}",f/3,10\n'
        status, answer = await send(h, body.encode())
        assert status == 400, answer
        assert "row 4" in answer["error"]["message"] and "10 KB" in answer["error"]["message"]
        assert await names(h) == []

    async def test_more_rows_than_the_cap_is_a_400(
        self, h: AdminHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(bulk_files, "MAX_ROWS", 1)
        status, answer = await send(h, table().encode())
        assert status == 400 and "more than 1 data rows" in answer["error"]["message"]

    async def test_a_body_over_the_size_cap_is_a_413(
        self, h: AdminHarness, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(admin_web, "MAX_BODY_BYTES", 50)
        status, answer = await send(h, table().encode())
        assert status == 413 and answer["error"]["code"] == "too_large"
        assert await names(h) == []

    async def test_row_numbers_are_the_spreadsheets(self, h: AdminHarness) -> None:
        body = (
            "email,name,ref,amount\n"
            "a@example.com,A,n/1,10\n"
            "\n"  # a blank row is still row 3
            'b@example.com,"B\nsecond line",n/2,10\n'  # one row, two lines
            "bad,C,n/3,10\n"
        )
        status, answer = await send(h, body.encode())
        assert status == 422
        (bad,) = answer["error"]["rows"]
        assert (bad["row"], bad["ref"]) == (5, "n/3")

    async def test_an_ambiguous_amount_in_a_european_file_is_refused(self, h: AdminHarness) -> None:
        body = "email;name;ref;amount\r\njo@example.com;Jo;e/1;85,50\r\n".encode("cp1252")
        status, answer = await send(h, body)
        assert status == 422
        (row,) = answer["error"]["rows"]
        assert row["row"] == 2 and "did you mean 85.50?" in row["errors"]["items[0]"]
        assert await names(h) == []


class TestLargeFiles:
    async def test_beyond_the_old_2000_row_cap_in_one_call(self, h: AdminHarness) -> None:
        rows = "".join(f"p{n}@example.com,Parent {n},big/{n},150.00\n" for n in range(2500))
        body = ("email,name,ref,amount\n" + rows).encode()
        status, report = await send(h, body)
        assert status == 201
        assert report["created"] == 2500 and report["rows"][-1]["row"] == 2501
        async with h.app[DATABASE].read() as session:
            count = (
                await session.execute(sa.select(sa.func.count()).select_from(Link))
            ).scalar_one()
        assert count == 2500
        status, again = await send(h, body, dry_run="1")
        assert status == 200 and again["existing"] == 2500

    async def test_a_big_run_refreshes_postgresql_statistics(
        self, h: AdminHarness, backend: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if backend != "postgres":
            pytest.skip("SQLite plans these queries without statistics")
        monkeypatch.setattr(admin_links, "ANALYZE_AFTER", 2)
        status, _ = await send(h, table().encode())
        assert status == 201
        async with h.app[DATABASE].read() as session:
            # -1 until the table is first analysed (or vacuumed); ANALYZE is transactional.
            tuples = (
                await session.execute(
                    sa.text("SELECT reltuples FROM pg_class WHERE relname = 'links'")
                )
            ).scalar_one()
        assert tuples == 2
