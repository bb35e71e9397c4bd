"""The console's New link and Bulk upload pages in a real browser (issue 15 items 9 and 11): a
treasurer fills the form and sees the live summary of what the server understood, is stopped
by an ambiguous amount (named next to its field), checks, creates and emails the link; uploads
a bulk file, sees every row's total and problem, confirms, and sees the links created. axe-core
finds nothing on a phone and a desktop, in both colour schemes. Screenshots in SCREENSHOTS."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Demo
from tests.e2e.console import DESKTOP, accessible, console_page

BULK_CSV = (
    "email,name,ref,items\n"
    "ana.parent@example.com,Ana Lopez,E2E-BULK-1,Spring fee=150.00|Kit=25.00x2\n"
    "ben.parent@example.com,Ben Okafor,E2E-BULK-2,Spring fee=150.00\n"
    'kim.parent@example.com,Kim Ito,E2E-BULK-3,"Spring fee=150,00"\n'
)


@pytest.fixture(scope="module")
def treasurer(browser: Browser, demo: Demo) -> Iterator[Page]:
    page = console_page(browser, demo, "treasurer", viewport=DESKTOP)
    yield page
    page.context.close()


def test_a_treasurer_creates_and_emails_a_link_with_the_form(treasurer: Page, demo: Demo) -> None:
    page = treasurer
    page.goto(f"{demo.url}/admin/")
    page.get_by_role("navigation").get_by_role("link", name="New link").click()
    page.wait_for_url(f"{demo.url}/admin/links/new")
    assert page.get_by_role("heading", level=1).inner_text() == "New payment link"
    problems = accessible(page, "console-new-link")

    page.get_by_label("Payer's name").fill("Sam Rivera")
    page.get_by_label("Payer's email address").fill("sam.parent@example.com")
    page.get_by_label("Item 1", exact=True).fill("Spring fee")
    page.get_by_label("Amount of item 1").fill("150,00")
    page.get_by_label("Item 2", exact=True).fill("Kit")
    page.get_by_label("Amount of item 2").fill("120.00")
    page.get_by_label("Reference (optional)").fill("E2E-FORM-1")
    live = page.locator("#live-summary")
    # The server's reading, live: the ambiguous amount is refused, saying how to write it.
    expect(live).to_contain_text("ambiguous")
    page.get_by_role("button", name="Check").click()
    page.wait_for_load_state()
    summary = page.locator(".error-summary")
    assert "There is a problem" in summary.inner_text()
    assert page.get_by_label("Amount of item 1").get_attribute("aria-invalid") == "true"
    problems += accessible(page, "console-new-link-error")
    summary.get_by_role("link").first.click()
    assert page.evaluate("() => document.activeElement.id") == "item-1-amount"

    page.get_by_label("Amount of item 1").fill("150.00")
    expect(live).to_contain_text("You are asking Sam Rivera for $270.00")
    # A third item through the script's button.
    page.get_by_role("button", name="Add an item").click()
    for _ in range(5):
        page.get_by_role("button", name="Add an item").click()
    page.get_by_label("Item 11", exact=True).fill("Socks")
    page.get_by_label("Amount of item 11").fill("5.00")
    expect(live).to_contain_text("You are asking Sam Rivera for $275.00")
    problems += accessible(page, "console-new-link-live")

    page.get_by_role("button", name="Check").click()
    page.wait_for_load_state()
    check = page.locator("section.check")
    assert "You are asking Sam Rivera for $275.00" in check.inner_text()
    assert "Socks: $5.00" in check.inner_text()
    problems += accessible(page, "console-new-link-check")
    page.get_by_role("button", name="Create and email").click()
    page.wait_for_url(re.compile(r".*/admin/links/[^/?]+\?notice=link_created_sent$"))
    listed = demo.request("GET", f"{demo.url}/admin/api/links?ref_prefix=E2E-FORM", key=True)
    (link,) = listed["links"]
    assert link["amount_total"] == 27500 and link["email_delivery"]["sent_count"] == 1
    assert page.url.split("?")[0].endswith(f"/admin/links/{link['id']}")

    # The same reference again: the existing link is shown, nothing offered to create.
    page.goto(f"{demo.url}/admin/links/new")
    page.get_by_label("Payer's name").fill("Sam Rivera")
    page.get_by_label("Payer's email address").fill("sam.parent@example.com")
    page.get_by_label("Item 1", exact=True).fill("Spring fee")
    page.get_by_label("Amount of item 1").fill("150.00")
    page.get_by_label("Reference (optional)").fill("E2E-FORM-1")
    page.get_by_role("button", name="Check").click()
    page.wait_for_load_state()
    warning = page.locator("section.check .warning")
    assert "E2E-FORM-1 already has a live payment link" in warning.inner_text()
    assert page.get_by_role("button", name=re.compile("^Create")).count() == 0
    assert page.get_by_label("Create another link with this reference").is_visible()
    problems += accessible(page, "console-new-link-duplicate")
    assert problems == []


def test_a_treasurer_uploads_a_bulk_file_and_confirms(treasurer: Page, demo: Demo) -> None:
    page = treasurer
    page.goto(f"{demo.url}/admin/bulk")
    assert page.get_by_role("heading", level=1).inner_text() == "Bulk upload"
    problems = accessible(page, "console-bulk")
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "spring.csv", "mimeType": "text/csv", "buffer": BULK_CSV.encode()}]
    )
    page.get_by_role("button", name="Preview").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Check the file"
    table = page.locator("table.bulk-rows")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(3)
    assert "$200.00" in rows.nth(0).inner_text()  # 150.00 + 2 × 25.00
    assert "ambiguous" in rows.nth(2).inner_text()
    problems += accessible(page, "console-bulk-preview")

    page.get_by_role("button", name="Create 2 links and email them").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "Links created"
    assert "2 links created" in page.locator(".bulk-counts").inner_text()
    assert "2 emails sent" in page.locator(".bulk-counts").inner_text()
    problems += accessible(page, "console-bulk-done")
    listed = demo.request("GET", f"{demo.url}/admin/api/links?ref_prefix=E2E-BULK", key=True)
    assert sorted(link["ref"] for link in listed["links"]) == ["E2E-BULK-1", "E2E-BULK-2"]

    # The same file again: nothing to create.
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "spring.csv", "mimeType": "text/csv", "buffer": BULK_CSV.encode()}]
    )
    page.get_by_role("button", name="Preview").click()
    page.wait_for_load_state()
    assert "Nothing to create" in page.locator("main").inner_text()
    assert page.get_by_role("button", name=re.compile("^Create")).count() == 0
    assert problems == []
