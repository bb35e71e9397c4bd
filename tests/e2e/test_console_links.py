"""The links list in a real browser (issue 15 items 7 and 11): a treasurer finds a link by its
payer's email and by its pasted payment URL, revokes it with a bulk action (asked, then done),
and downloads the CSV of the current filter; a viewer sees the list with no action; axe-core
finds nothing on a phone and a desktop, in both colour schemes. Screenshots in SCREENSHOTS."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import Demo
from tests.e2e.console import DESKTOP, PHONE, accessible, console_page


def issue(demo: Demo, email: str, ref: str, name: str = "Robin Castillo") -> dict[str, Any]:
    body = {
        "email": email,
        "name": name,
        "description": "Spring season fee",
        "currency": "usd",
        "items": ["Spring fee=150.00"],
        "ref": ref,
    }
    created: dict[str, Any] = demo.request("POST", f"{demo.url}/admin/api/links", body, key=True)
    return created


def search(page: Page, demo: Demo, query: str) -> None:
    page.goto(f"{demo.url}/admin/links")
    page.get_by_label("Search", exact=True).fill(query)
    page.get_by_role("button", name="Show links").click()
    page.wait_for_load_state()


def rows(page: Page) -> list[str]:
    return [r.inner_text() for r in page.locator("table.links tbody tr").all()]


@pytest.fixture(scope="module")
def treasurer(browser: Browser, demo: Demo) -> Iterator[Page]:
    page = console_page(browser, demo, "treasurer", viewport=DESKTOP)
    yield page
    page.context.close()


def test_find_by_email_and_pasted_url_revoke_and_export(treasurer: Page, demo: Demo) -> None:
    tag = secrets.token_hex(3)
    email = f"robin.{tag}@example.com"
    first = issue(demo, email, f"E2E-{tag}-1")
    second = issue(demo, f"other.{tag}@example.org", f"E2E-{tag}-2", name="Alex Moreau")
    page = treasurer

    # By email, typed in any case: exactly its link, and the page says how it read the query.
    search(page, demo, email.upper())
    assert page.locator(".understood").inner_text().startswith("Searching for: Payer email")
    (row,) = rows(page)
    assert "Robin Castillo" in row and email in row
    problems = accessible(page, "console-links-email")

    # A payment URL pasted whole (as copied from the email).
    search(page, demo, second["url"])
    assert "Payment URL of link " + second["id"] in page.locator(".understood").inner_text()
    (row,) = rows(page)
    assert "Alex Moreau" in row

    # A bulk revoke of both, asked first, then done.
    search(page, demo, f"E2E-{tag}-")
    assert len(rows(page)) == 2
    page.get_by_label(f"Select Robin Castillo E2E-{tag}-1").check()
    # With JavaScript, one box ticks every link on the page.
    page.get_by_label("Tick every link on this page").check()
    assert page.get_by_label(f"Select Alex Moreau E2E-{tag}-2").is_checked()
    page.get_by_role("button", name="Revoke", exact=True).click()
    page.wait_for_load_state()
    assert page.locator("#plan").inner_text().startswith("2 selected")
    problems += accessible(page, "console-links-confirm")
    page.get_by_label("Why (optional; the payers do not see this)").fill("Season cancelled")
    page.get_by_role("button", name="Revoke 2 links").click()
    page.wait_for_url("**/admin/links?*notice=*")
    assert page.locator(".notice").count() == 1
    assert all("Revoked" in r for r in rows(page))
    assert len(rows(page)) == 2  # back on the same search
    problems += accessible(page, "console-links-revoked")

    # The CSV of what is on screen.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download these as CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("payment-links-")
    text = Path(download.path()).read_text(encoding="utf-8").lstrip("\ufeff")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][:4] == ["id", "reference", "payer_name", "payer_email"]
    assert sorted(r[0] for r in table[1:]) == sorted([first["id"], second["id"]])
    assert {r[6] for r in table[1:]} == {"revoked"}
    assert problems == []


def test_a_viewer_sees_no_action(browser: Browser, demo: Demo) -> None:
    tag = secrets.token_hex(3)
    issue(demo, f"viewer.{tag}@example.com", f"E2E-{tag}-V")
    page = console_page(browser, demo, "viewer", viewport=PHONE)
    try:
        search(page, demo, f"E2E-{tag}-")
        (row,) = rows(page)
        assert f"viewer.{tag}@example.com" not in row and "v•••@e•••.com" in row
        assert page.locator("input[type=checkbox]").count() == 0
        for name in ("Send again", "Revoke"):
            assert page.get_by_role("button", name=name, exact=True).count() == 0
        assert page.get_by_role("link", name="Download these as CSV").count() == 0
        assert accessible(page, "console-links-viewer") == []
    finally:
        page.context.close()
