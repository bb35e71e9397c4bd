"""The link detail page in a real browser (issue 15 items 8 and 11): a treasurer opens a link's
detail, revokes it with a reason (confirming it), and finds the revocation in the history with
their name; the copy button copies the address; a viewer sees the page with no action; axe-core
finds nothing on a phone and a desktop, in both colour schemes. Screenshots in SCREENSHOTS."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Demo
from tests.e2e.console import DESKTOP, PHONE, accessible, console_page


def issue(demo: Demo) -> dict[str, Any]:
    body = {
        "email": "sam.parent@example.com",
        "name": "Sam Rivera",
        "description": "Spring season fee",
        "currency": "usd",
        "items": ["Spring fee=150.00", "Team kit=25.00x2"],
        "ref": "e2e-detail",
    }
    created: dict[str, Any] = demo.request("POST", f"{demo.url}/admin/api/links", body, key=True)
    return created


@pytest.fixture(scope="module")
def treasurer(browser: Browser, demo: Demo) -> Iterator[Page]:
    page = console_page(browser, demo, "treasurer", viewport=DESKTOP)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=demo.url)
    yield page
    page.context.close()


def test_revoke_a_link_with_a_reason_and_see_it_in_the_history(treasurer: Page, demo: Demo) -> None:
    link = issue(demo)
    page = treasurer
    page.goto(f"{demo.url}/admin/links/{link['id']}")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Sam Rivera")
    assert "Link created for 200.00 USD" in page.locator(".timeline").inner_text()
    payer = page.get_by_role("link", name="Open the payer's page")
    assert payer.get_attribute("href") == link["url"] + "?from=console"
    assert payer.get_attribute("target") == "_blank"
    problems = accessible(page, "console-detail")

    # The copy button (shown with JS) puts the address on the clipboard.
    copy = page.get_by_role("button", name="Copy link")
    copy.click()
    expect(page.locator(".copy-status")).to_have_text("Copied")  # the clipboard answers later
    assert page.evaluate("() => navigator.clipboard.readText()") == link["url"]

    # Revoking without confirming: the problem is named, nothing changes.
    page.get_by_label("Reason").fill("Family moved away")
    page.get_by_role("button", name="Revoke the link").click()
    page.wait_for_load_state()
    assert "There is a problem" in page.locator(".error-summary").inner_text()
    problems += accessible(page, "console-detail-error")
    page.get_by_label("Reason").fill("Family moved away")
    page.get_by_label("I understand that the payer can no longer pay with this link").check()
    page.get_by_role("button", name="Revoke the link").click()
    page.wait_for_url(f"**/admin/links/{link['id']}?notice=revoked")
    assert "The payment link has been revoked." in page.locator(".notice").inner_text()
    history = page.locator(".timeline").inner_text()
    assert "Link revoked: Family moved away" in history
    assert "by " + demo.console["accounts"]["treasurer"] in history
    assert page.get_by_role("button", name="Revoke the link").count() == 0
    problems += accessible(page, "console-detail-revoked")
    assert problems == []


def test_a_viewer_sees_no_action(browser: Browser, demo: Demo) -> None:
    link = issue(demo)
    page = console_page(browser, demo, "viewer", viewport=PHONE)
    try:
        page.goto(f"{demo.url}/admin/links/{link['id']}")
        text = page.locator("main").inner_text()
        assert "sam.parent@example.com" not in text and "s•••@e•••.com" in text
        for name in ("Send again", "Revoke the link", "Issue a corrected link"):
            assert page.get_by_role("button", name=name).count() == 0
            assert page.get_by_role("link", name=name).count() == 0
        assert accessible(page, "console-detail-viewer") == []
    finally:
        page.context.close()


def test_issue_a_corrected_link_through_the_form(treasurer: Page, demo: Demo) -> None:
    link = issue(demo)
    page = treasurer
    page.goto(f"{demo.url}/admin/links/{link['id']}")
    page.get_by_role("link", name="Issue a corrected link").click()
    page.wait_for_url(f"**/admin/links/{link['id']}/correct")
    items = page.get_by_label("Items")
    assert items.input_value() == "Spring fee=150.00\nTeam kit=25.00x2"
    problems = accessible(page, "console-correct")
    items.fill("Spring fee=120.00\nTeam kit=25.00x2")
    page.get_by_label("Why the old link is replaced (optional)").fill("Sibling discount")
    page.get_by_label(
        "I understand that the old link is revoked and the payer can only pay with the new one"
    ).check()
    page.get_by_role("button", name="Revoke the old link and issue the corrected one").click()
    page.wait_for_url("**?notice=replaced")
    assert f"/admin/links/{link['id']}" not in page.url
    history = page.locator(".timeline").inner_text()
    assert "Link created for 170.00 USD" in history
    assert f"Issued in place of link {link['id']}" in history
    # The old link's history points to the new one, by a link.
    page.get_by_role("link", name=link["id"]).first.click()
    page.wait_for_url(f"**/admin/links/{link['id']}")
    history = page.locator(".timeline").inner_text()
    assert "Link revoked: Sibling discount" in history and "Replaced by link" in history
    assert problems == []


def test_the_histories_of_the_demo_samples(treasurer: Page, demo: Demo) -> None:
    """A paid link and a renewed one: payments, checkout attempts with their Stripe session,
    previews and opens, renewals, each page clean."""
    page = treasurer
    problems = []
    for key in ("paid", "renewed"):
        sample = demo.samples[key]
        page.goto(f"{demo.url}/admin/links/{sample['id']}")
        history = page.locator(".timeline").inner_text()
        assert "Link created for" in history, key
        if key == "paid":
            assert "Payment received" in history and "Stripe session" in history
            assert page.get_by_role("link", name="Issue a corrected link").count() == 0
        else:
            assert "Replaced by link" in history
        problems += accessible(page, f"console-detail-{key}")
    assert problems == []
