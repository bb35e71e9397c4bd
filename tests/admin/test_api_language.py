"""The admin API's messages in the admin's language (issue 13), on both databases: ``message``,
each field's problem and each bulk row's problem follow ``Accept-Language`` (offered languages
only, else ``checkout.default_locale``), while ``code``, field names and values (the amount as
typed) are the same in every language. Expected text is read through the catalogs, so these
tests hold before and after translation."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.domain.text import Text
from gateway.i18n import localize, translate
from tests.admin.support import AdminHarness, start_admin_harness

NEW = {"email": "ana@example.com", "name": "Ana Lopez", "ref": "2026-04/p1"}
BAD_EMAIL = Text("not an email address: %(email)s", email="'ana@'")
AMBIGUOUS = Text(
    "%(amount)s is ambiguous (did you mean %(reading)s?): write digits with a dot for "
    "decimals, e.g. 1500.00 (a comma only between thousands, and only with a dot "
    "decimal part: 1,500.00)",
    amount="'150,00'",
    reading="150.00",
)


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> AdminHarness:
    return await start_admin_harness(aiohttp_server, aiohttp_client, database_url)


async def refused(h: AdminHarness, language: str | None) -> dict[str, Any]:
    headers = {"Accept-Language": language} if language is not None else {}
    body = {**NEW, "email": "ana@", "items": ["Fee=150,00"], "currency": "eur"}
    response = await h.api("POST", "/links", json=body, headers=headers)
    assert response.status == 422
    error: dict[str, Any] = (await response.json())["error"]
    return error


@pytest.mark.parametrize(
    ("header", "locale"),
    [("fr", "fr"), ("fr-CA,en;q=0.5", "fr"), ("pt-PT", "pt-BR"), ("es-MX", "es"), ("de", "en")],
)
async def test_field_errors_are_in_the_requests_language_and_the_code_is_unchanged(
    h: AdminHarness, header: str, locale: str
) -> None:
    error = await refused(h, header)
    assert error["code"] == "validation_failed"
    assert error["message"] == translate(locale, "invalid input")
    assert set(error["fields"]) == {"email", "items[0]"}
    assert error["fields"]["email"] == localize(locale, BAD_EMAIL)
    assert error["fields"]["items[0]"] == localize(locale, AMBIGUOUS)
    # The amount the admin typed, exactly, whatever the language.
    assert "'150,00'" in error["fields"]["items[0]"]


async def test_french_differs_from_english_where_the_catalog_translates_it(
    h: AdminHarness,
) -> None:
    english, french = await refused(h, None), await refused(h, "fr")
    assert english["fields"]["email"] == str(BAD_EMAIL)
    assert english["code"] == french["code"]
    if translate("fr", BAD_EMAIL.template) != BAD_EMAIL.template:
        assert french["fields"]["email"] != english["fields"]["email"]


async def test_a_malformed_header_falls_back_to_the_default(h: AdminHarness) -> None:
    error = await refused(h, ";;q=,=fr;" * 50)
    assert error["fields"]["email"] == str(BAD_EMAIL)


async def test_the_configured_default_when_the_browser_asks_for_nothing_offered(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str
) -> None:
    h = await start_admin_harness(aiohttp_server, aiohttp_client, database_url, default_locale="es")
    error = await refused(h, "de, ja;q=0.8")
    assert error["message"] == translate("es", "invalid input")
    assert error["fields"]["email"] == localize("es", BAD_EMAIL)


async def test_unauthorized_and_not_found_messages_follow_the_header(h: AdminHarness) -> None:
    response = await h.api("GET", "/links", key=None, headers={"Accept-Language": "pt-BR"})
    assert response.status == 401
    error = (await response.json())["error"]
    assert error["code"] == "unauthorized"
    assert error["message"] == translate("pt-BR", "a valid admin key is required (Bearer)")
    response = await h.api("GET", "/links/lk_missing", headers={"Accept-Language": "es"})
    error = (await response.json())["error"]
    assert response.status == 404 and error["code"] == "not_found"
    assert error["message"] == translate("es", "no such link")


async def test_query_errors_name_the_parameter_in_every_language(h: AdminHarness) -> None:
    response = await h.api("GET", "/links?limit=9999", headers={"Accept-Language": "fr"})
    error = (await response.json())["error"]
    assert response.status == 422 and error["code"] == "validation_failed"
    expected = Text("must be between %(low)s and %(high)s", low=1, high=500)
    assert error["fields"] == {"limit": localize("fr", expected)}


async def test_bulk_rows_problems_are_in_the_requests_language(h: AdminHarness) -> None:
    csv = (
        "email,name,ref,items\n"
        "ana@example.com,Ana,r1,Fee=150.00\n"
        "ana@,Ben,r2,Fee=150,00\n"  # the comma splits the cell: an extra one
        "kim@example.com,Kim,r1,Fee=10.00\n"
    )
    headers = {"Content-Type": "text/csv", "Accept-Language": "es"}
    response = await h.api("POST", "/links/bulk", data=csv.encode(), headers=headers)
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "bulk_invalid"
    invalid = Text("%(count)s invalid row(s): %(rows)s; nothing was created", count=2, rows="3, 4")
    assert error["message"] == localize("es", invalid)
    rows = {row["row"]: row["errors"] for row in error["rows"]}
    assert rows[3] == {"row": localize("es", Text("more cells than columns"))}
    assert rows[4] == {"ref": localize("es", Text("the same ref as row %(row)s", row=2))}

    dry = await h.api("POST", "/links/bulk?dry_run=true", data=csv.encode(), headers=headers)
    report = await dry.json()
    by_row = {row["row"]: row for row in report["rows"]}
    assert by_row[4]["errors"]["ref"] == localize("es", Text("the same ref as row %(row)s", row=2))
    assert by_row[2]["status"] == "would_create"


async def test_an_unreadable_file_is_refused_in_the_requests_language(h: AdminHarness) -> None:
    headers = {"Content-Type": "text/csv", "Accept-Language": "pt-BR"}
    response = await h.api("POST", "/links/bulk", data=b"", headers=headers)
    error = (await response.json())["error"]
    assert response.status == 400 and error["code"] == "bad_file"
    assert error["message"] == translate("pt-BR", "the CSV is empty (expected a header row)")
