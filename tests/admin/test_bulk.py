"""Bulk issuance through the API: all-or-nothing in one transaction, every bad row reported,
dry runs, skipping bad rows when asked, and re-runs keyed by ref that create nothing twice."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, Link
from gateway.services.bulk_files import parse_csv
from gateway.services.bulk_issue import BulkInterrupted
from gateway.web.keys import ADMIN, DATABASE
from tests.admin.support import AdminHarness, start_admin_harness

CSV_HEADERS = {"Content-Type": "text/csv"}
GOOD_CSV = """email,name,ref,items,description
maya.parent@example.com,Ana Lopez,2026-04/p1,Spring fee=150.00,Spring season
leo.parent@example.com,Ben Okafor,2026-04/p2,Spring fee=150.00 | Kit=25.00x2,Spring season
kim.parent@example.com,Kim Ito,2026-04/p3,Spring fee=120.00,
"""
BAD_ROW_CSV = GOOD_CSV + "not-an-email,,2026-04/p4,Spring fee=abc,\n"


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> AdminHarness:
    return await start_admin_harness(aiohttp_server, aiohttp_client, database_url)


async def counts(h: AdminHarness) -> tuple[int, int]:
    async with h.app[DATABASE].read() as session:
        links = (await session.execute(sa.select(sa.func.count()).select_from(Link))).scalar_one()
        audit = (
            await session.execute(sa.select(sa.func.count()).select_from(AuditEntry))
        ).scalar_one()
    return int(links), int(audit)


async def bulk(h: AdminHarness, body: str, **params: str) -> Any:
    headers = (
        CSV_HEADERS
        if not body.lstrip().startswith(("[", "{"))
        else {"Content-Type": "application/json"}
    )
    return await h.api("POST", "/links/bulk", data=body.encode(), headers=headers, params=params)


class TestAllOrNothing:
    async def test_one_bad_row_creates_nothing_and_reports_that_row(self, h: AdminHarness) -> None:
        response = await bulk(h, BAD_ROW_CSV)
        assert response.status == 422
        error = (await response.json())["error"]
        assert error["code"] == "bulk_invalid"
        (row,) = error["rows"]
        # The spreadsheet's row number: the header is row 1.
        assert row["row"] == 5 and row["ref"] == "2026-04/p4"
        # Every problem of the row at once.
        assert {"email", "name", "items[0]"} <= set(row["errors"])
        assert await counts(h) == (0, 0)

    async def test_a_good_file_creates_every_link(self, h: AdminHarness) -> None:
        response = await bulk(h, GOOD_CSV)
        assert response.status == 201, await response.text()
        report = await response.json()
        assert (report["created"], report["invalid"], report["ok"]) == (3, 0, True)
        rows = report["rows"]
        assert [r["status"] for r in rows] == ["created"] * 3
        assert (await counts(h))[0] == 3
        second = await h.get(rows[1]["url"].rsplit("/", 1)[1])
        text = await second.text()
        assert "Ben Okafor" in text and "200.00" in text

    async def test_skip_invalid_creates_the_good_rows(self, h: AdminHarness) -> None:
        response = await bulk(h, BAD_ROW_CSV, skip_invalid="true")
        assert response.status == 201
        report = await response.json()
        assert [r["status"] for r in report["rows"]] == ["created"] * 3 + ["skipped"]
        assert report["ok"] is False
        assert (await counts(h))[0] == 3

    async def test_dry_run_reports_and_writes_nothing(self, h: AdminHarness) -> None:
        response = await bulk(h, BAD_ROW_CSV, dry_run="1")
        assert response.status == 200
        report = await response.json()
        assert report["dry_run"] is True
        assert [r["status"] for r in report["rows"]] == ["would_create"] * 3 + ["invalid"]
        assert await counts(h) == (0, 0)

    async def test_a_database_failure_mid_run_leaves_nothing(self, h: AdminHarness) -> None:
        await fail_inserts_of(h, "2026-04/p3")
        response = await bulk(h, GOOD_CSV)
        assert response.status == 500
        assert await counts(h) == (0, 0)

    async def test_a_failure_after_some_batches_says_what_exists_and_a_rerun_completes(
        self, h: AdminHarness
    ) -> None:
        await fail_inserts_of(h, "2026-04/p3")
        with pytest.raises(BulkInterrupted) as caught:
            await h.app[ADMIN].bulk(parse_csv(GOOD_CSV.encode()), actor="admin:t", batch_rows=2)
        assert (caught.value.created, caught.value.remaining) == (2, 1)
        assert "run the same file again" in str(caught.value)
        assert (await counts(h))[0] == 2
        await fail_inserts_of(h, None)
        report = await h.app[ADMIN].bulk(
            parse_csv(GOOD_CSV.encode()), actor="admin:t", batch_rows=2
        )
        assert [r.status for r in report.rows] == ["existing", "existing", "created"]
        assert (await counts(h))[0] == 3


async def fail_inserts_of(h: AdminHarness, ref: str | None) -> None:
    """A real database error (a trigger) when a link with ``ref`` is inserted; None removes it."""
    db = h.app[DATABASE]
    async with db.write() as session:
        if db.is_sqlite:
            await session.execute(sa.text("DROP TRIGGER IF EXISTS fail_insert"))
            if ref is not None:
                await session.execute(
                    sa.text(
                        "CREATE TRIGGER fail_insert BEFORE INSERT ON links "
                        f"WHEN NEW.ref = '{ref}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                    )
                )
            return
        await session.execute(sa.text("DROP TRIGGER IF EXISTS fail_insert ON links"))
        if ref is not None:
            await session.execute(
                sa.text(
                    "CREATE OR REPLACE FUNCTION fail_insert() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.ref = '{ref}' THEN RAISE EXCEPTION 'disk full'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            await session.execute(
                sa.text(
                    "CREATE TRIGGER fail_insert BEFORE INSERT ON links "
                    "FOR EACH ROW EXECUTE FUNCTION fail_insert()"
                )
            )


class TestRerun:
    async def test_the_same_file_twice_creates_nothing_new(self, h: AdminHarness) -> None:
        first = await (await bulk(h, GOOD_CSV)).json()
        response = await bulk(h, GOOD_CSV)
        assert response.status == 200
        second = await response.json()
        assert [r["status"] for r in second["rows"]] == ["existing"] * 3
        assert [r["id"] for r in second["rows"]] == [r["id"] for r in first["rows"]]
        assert [r["url"] for r in second["rows"]] == [r["url"] for r in first["rows"]]
        assert (await counts(h))[0] == 3

    async def test_existing_rows_that_differ_are_flagged(self, h: AdminHarness) -> None:
        await bulk(h, GOOD_CSV)
        changed = GOOD_CSV.replace(
            "Kim Ito,2026-04/p3,Spring fee=120.00", "Kim Ito,2026-04/p3,Spring fee=130.00"
        )
        report = await (await bulk(h, changed)).json()
        assert report["rows"][2]["differs"] == ["amount"]
        assert "differs" not in report["rows"][0]

    async def test_a_revoked_links_ref_is_issued_again(self, h: AdminHarness) -> None:
        first = await (await bulk(h, GOOD_CSV)).json()
        old = first["rows"][0]["id"]
        await h.api("POST", f"/links/{old}/revoke", json={"reason": "wrong amount"})
        report = await (await bulk(h, GOOD_CSV)).json()
        assert [r["status"] for r in report["rows"]] == ["created", "existing", "existing"]
        assert report["rows"][0]["id"] != old


class TestFormats:
    async def test_json_rows_with_item_objects(self, h: AdminHarness) -> None:
        rows = [
            {
                "email": "a@example.com",
                "name": "A Parent",
                "ref": "j/1",
                "items": [{"description": "Fee", "amount": "10.00", "quantity": 2}],
            },
            {
                "email": "b@example.com",
                "name": "B Parent",
                "ref": "j/2",
                "amount": 12,
                "description": "Fee",
            },
        ]
        response = await bulk(h, json.dumps({"rows": rows}))
        assert response.status == 201, await response.text()
        created = await (
            await h.api("GET", f"/links/{(await response.json())['rows'][0]['id']}")
        ).json()
        assert created["amount_total"] == 2000

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ("email,name\na@example.com,A\n", "missing column"),
            ("email,name,ref\na@example.com,A,r\n", "'items' or an 'amount'"),
            ("email,name,ref,amount,colour\n", "unknown column"),
            ("", "empty"),
            ("email,name,ref,amount\n", "no rows"),
            ('{"rows": 5}', "expected a list"),
        ],
    )
    async def test_unreadable_files_are_400(self, h: AdminHarness, body: str, message: str) -> None:
        response = await bulk(h, body)
        assert response.status == 400, await response.text()
        error = (await response.json())["error"]
        assert error["code"] == "bad_file" and message in error["message"]

    async def test_rows_need_distinct_refs(self, h: AdminHarness) -> None:
        body = "email,name,ref,amount\na@example.com,A,r/1,10\nb@example.com,B,r/1,10\nc@example.com,C,,10\n"
        response = await bulk(h, body)
        assert response.status == 422
        rows = (await response.json())["error"]["rows"]
        assert [(r["row"], sorted(r["errors"])) for r in rows] == [(3, ["ref"]), (4, ["ref"])]
        assert "row 2" in rows[0]["errors"]["ref"]
        assert await counts(h) == (0, 0)

    async def test_a_row_with_extra_cells_is_invalid(self, h: AdminHarness) -> None:
        body = "email,name,ref,amount\na@example.com,A,r/1,10,surprise\n"
        response = await bulk(h, body)
        assert response.status == 422


LOCALE_CSV = """email,name,ref,amount,locale
ana@example.com,Ana Lopez,l/1,150.00,es
bia@example.com,Bia Souza,l/2,150.00,pt_br
kim@example.com,Kim Ito,l/3,150.00,
zoe@example.com,Zoé Martin,l/4,150.00,FR
"""


async def locales_by_ref(h: AdminHarness) -> dict[str, str | None]:
    async with h.app[DATABASE].read() as session:
        rows = (await session.execute(sa.select(Link.ref, Link.locale))).all()
    return {str(ref): locale for ref, locale in rows}


class TestLocaleColumn:
    async def test_each_rows_locale_is_stored_normalised_and_an_empty_cell_stores_none(
        self, h: AdminHarness
    ) -> None:
        response = await bulk(h, LOCALE_CSV)
        assert response.status == 201, await response.text()
        report = await response.json()
        assert [r["locale"] for r in report["rows"]] == ["es", "pt-BR", None, "fr"]
        expected = {"l/1": "es", "l/2": "pt-BR", "l/3": None, "l/4": "fr"}
        assert await locales_by_ref(h) == expected
        shown = await (await h.api("GET", f"/links/{report['rows'][1]['id']}")).json()
        assert shown["locale"] == "pt-BR"

    async def test_a_file_without_the_column_stores_none(self, h: AdminHarness) -> None:
        assert (await bulk(h, GOOD_CSV)).status == 201
        assert set((await locales_by_ref(h)).values()) == {None}

    async def test_a_locale_not_offered_fails_the_run_naming_the_offered_ones(
        self, h: AdminHarness
    ) -> None:
        response = await bulk(h, LOCALE_CSV + "max@example.com,Max Bauer,l/5,150.00,de\n")
        assert response.status == 422
        error = (await response.json())["error"]
        assert error["code"] == "bulk_invalid"
        (row,) = error["rows"]
        assert row["row"] == 6 and list(row["errors"]) == ["locale"]
        assert "offered: en, es, pt-BR, fr" in row["errors"]["locale"]
        assert await counts(h) == (0, 0)

    async def test_dry_run_shows_each_rows_locale(self, h: AdminHarness) -> None:
        response = await bulk(h, LOCALE_CSV, dry_run="1")
        assert response.status == 200
        rows = (await response.json())["rows"]
        assert [(r["status"], r["locale"]) for r in rows] == [
            ("would_create", "es"),
            ("would_create", "pt-BR"),
            ("would_create", None),
            ("would_create", "fr"),
        ]
        assert await counts(h) == (0, 0)

    async def test_json_rows_take_a_locale_or_null(self, h: AdminHarness) -> None:
        rows = [
            {"email": "a@example.com", "name": "A", "ref": "j/1", "amount": 10, "locale": "pt-BR"},
            {"email": "b@example.com", "name": "B", "ref": "j/2", "amount": 10, "locale": None},
            {"email": "c@example.com", "name": "C", "ref": "j/3", "amount": 10},
        ]
        response = await bulk(h, json.dumps(rows))
        assert response.status == 201, await response.text()
        assert await locales_by_ref(h) == {"j/1": "pt-BR", "j/2": None, "j/3": None}
        bad = [
            {**rows[0], "ref": "j/4", "locale": ["es"]},
            {**rows[0], "ref": "j/5", "locale": "de"},
        ]
        response = await bulk(h, json.dumps(bad))
        assert response.status == 422
        errors = [r["errors"] for r in (await response.json())["error"]["rows"]]
        assert errors[0] == {"locale": "expected text"}
        assert "offered: en, es, pt-BR, fr" in errors[1]["locale"]
        assert (await counts(h))[0] == 3

    async def test_a_rerun_with_another_locale_flags_the_difference(self, h: AdminHarness) -> None:
        await bulk(h, LOCALE_CSV)
        changed = LOCALE_CSV.replace("l/1,150.00,es", "l/1,150.00,fr")
        report = await (await bulk(h, changed)).json()
        assert [r["status"] for r in report["rows"]] == ["existing"] * 4
        assert report["rows"][0]["differs"] == ["locale"]
        assert (await locales_by_ref(h))["l/1"] == "es"
