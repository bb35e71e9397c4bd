"""The console's overview and settings in a real browser (issue 15 items 6, 10 and 11): a
treasurer lands on the overview after logging in and follows a Needs attention item to its
link; an admin saves the settings form, first with mistakes (each named, linked from the error
summary to its field, nothing saved), then correctly; a treasurer has no Settings link and is
refused the page. axe-core finds nothing on a phone and a desktop, in both colour schemes.
Screenshots in SCREENSHOTS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import Demo
from tests.e2e.console import DESKTOP, accessible, console_page


def issue_expiring(demo: Demo) -> dict[str, Any]:
    """A link that expires in two days: the overview lists it under Needs attention."""
    body = {
        "email": "sam.parent@example.com",
        "name": "Sam Rivera",
        "description": "Tournament fee",
        "currency": "usd",
        "items": ["Tournament fee=40.00"],
        "ref": "e2e-overview-soon",
        "valid_for": "2d",
    }
    created: dict[str, Any] = demo.request("POST", f"{demo.url}/admin/api/links", body, key=True)
    return created


@pytest.fixture(scope="module")
def treasurer(browser: Browser, demo: Demo) -> Iterator[Page]:
    page = console_page(browser, demo, "treasurer", viewport=DESKTOP)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def admin(browser: Browser, demo: Demo) -> Iterator[Page]:
    page = console_page(browser, demo, "admin", viewport=DESKTOP)
    yield page
    page.context.close()


def test_the_overview_shows_figures_and_leads_to_what_needs_attention(
    treasurer: Page, demo: Demo
) -> None:
    link = issue_expiring(demo)
    page = treasurer
    page.goto(f"{demo.url}/admin/")
    assert page.get_by_role("heading", level=1).inner_text() == "Overview"
    month = page.locator("section", has=page.get_by_role("heading", name="This month"))
    assert "Issued" in month.inner_text()
    assert "$40.00" in page.locator('[data-kind="expiring"]').inner_text()
    problems = accessible(page, "console-overview")
    # No Settings for a treasurer, and the page itself refused.
    assert page.get_by_role("link", name="Settings").count() == 0

    page.get_by_role("link", name="e2e-overview-soon expires soon and has not been paid").click()
    page.wait_for_url(f"{demo.url}/admin/links/{link['id']}")

    response = page.goto(f"{demo.url}/admin/settings")
    assert response is not None and response.status == 403
    assert problems == []


def test_an_admin_corrects_and_saves_the_settings(admin: Page, demo: Demo) -> None:
    page = admin
    page.goto(f"{demo.url}/admin/")
    page.get_by_role("link", name="Settings").click()
    page.wait_for_url(f"{demo.url}/admin/settings")
    assert page.get_by_role("heading", level=1).inner_text() == "Settings"
    problems = accessible(page, "console-settings")

    page.get_by_label("Contact email").fill("not an address")
    page.get_by_label("Time zone").fill("Mars/Olympus_Mons")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_load_state()
    summary = page.locator(".error-summary")
    assert "There is a problem" in summary.inner_text()
    assert page.get_by_label("Time zone").get_attribute("aria-invalid") == "true"
    problems += accessible(page, "console-settings-error")
    # The summary's link takes the keyboard to the field.
    summary.get_by_role("link", name="Europe/Lisbon").click()
    assert page.evaluate("() => document.activeElement.id") == "timezone"

    page.get_by_label("Contact email").fill("money@riverside.example")
    page.get_by_label("Time zone").fill("Europe/Lisbon")
    page.get_by_label("Organisation name").fill("Riverside Hoops")
    page.get_by_label("Off: Stripe sends receipts").check()
    page.get_by_label("The season starts in").select_option("8")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_url(f"{demo.url}/admin/settings?notice=settings_saved")
    assert "The settings have been saved." in page.locator(".notice").inner_text()
    assert page.get_by_label("Organisation name").input_value() == "Riverside Hoops"
    assert page.get_by_label("Off: Stripe sends receipts").is_checked()
    assert "Set in the console by admin@" in page.locator("main form").inner_text()
    problems += accessible(page, "console-settings-saved")
    assert problems == []
