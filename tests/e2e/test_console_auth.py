"""The console's auth pages in a real browser (issue 15 items 1-4 and 11): logging in (a wrong
password first: the error summary, then the right one), setting up two-factor authentication
from the account page with a code pyotp computes from the key the page shows, logging in again
with a recovery code, and the accounts pages of an admin (an invitation with a mistake, then
sent) which a viewer does not see. Each page is checked at a phone and a desktop width, light
and dark: axe-core's WCAG 2.2 A/AA rules, the contrast of every text, one h1 that starts the
title, 24 px targets, no sideways scrolling. Screenshots in tests/e2e/screenshots/ (console-*)."""

from __future__ import annotations

import html
import re
import time
import urllib.request
from collections.abc import Iterator

import pyotp
import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.browser import (
    COLOUR_RULES,
    SCHEMES,
    SCREENSHOTS,
    axe_violations,
    contrast,
    small_targets,
    structure,
)
from tests.e2e.conftest import Demo
from tests.e2e.console import DESKTOP, PHONE, console_context, console_login, console_page

pytestmark = pytest.mark.browser


def layout_targets(page: Page) -> tuple[str, ...]:
    """The layout's own links (the brand, the error summary's), the lead's to size: left out
    here, reported (their size is the layout's, the same on every console page)."""
    texts = page.locator(".bar .brand a, .error-summary a").all_inner_texts()
    return tuple(f'a "{text.strip()[:30]}" ' for text in texts)


def checked(page: Page, name: str) -> list[str]:
    """Every check at the phone and the desktop width, in both schemes; a screenshot of each."""
    SCREENSHOTS.mkdir(exist_ok=True)
    problems = [f"{name}: {p}" for p in structure(page, "en")]
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size({"width": size["width"], "height": size["height"]})
        layout = layout_targets(page)
        problems += [
            f"{name} {label}: target under 24x24 px: {t}"
            for t in small_targets(page)
            if not t.startswith(layout)
        ]
        for index, scheme in enumerate(SCHEMES):
            page.emulate_media(color_scheme=scheme)
            where = f"{name} {label} {scheme}"
            rules = None if index == 0 else COLOUR_RULES
            problems += [f"{where}: axe {v}" for v in axe_violations(page, rules)]
            problems += [
                f"{where}: contrast {r['ratio']}:1 < {r['needed']}:1 for {r['element']} "
                f"{r['text']!r}"
                for r in contrast(page, scheme)
                if r["ratio"] < r["needed"]
            ]
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}-{scheme}.png"), full_page=True)
        if page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth"):
            problems.append(f"{name} {label}: the page scrolls sideways")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": DESKTOP["width"], "height": DESKTOP["height"]})
    return problems


@pytest.fixture(scope="module")
def admin(browser: Browser, demo: Demo) -> Iterator[Page]:
    page = console_page(browser, demo, "admin", viewport=DESKTOP, locale="en-GB")
    yield page
    page.context.close()


def test_logging_in_after_a_mistake(browser: Browser, demo: Demo) -> None:
    context = console_context(browser, viewport=DESKTOP, locale="en-GB")
    try:
        page = context.new_page()
        page.goto(f"{demo.url}/admin/links")
        page.wait_for_url(re.compile(r".*/admin/login\?next=.*"))
        assert page.get_by_role("heading", level=1).inner_text() == "Log in"
        problems = checked(page, "console-login")
        page.get_by_label("Email address").fill(demo.console["accounts"]["treasurer"])
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        summary = page.locator(".error-summary")
        assert "There is a problem" in summary.inner_text()
        assert page.get_by_label("Email address").get_attribute("aria-invalid") == "true"
        problems += checked(page, "console-login-error")
        page.get_by_label("Password").fill(demo.console["password"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{demo.url}/admin/links")  # where they were going
        assert problems == [], "\n".join(problems)
    finally:
        context.close()


def test_setting_up_two_factor_and_logging_in_with_a_recovery_code(
    browser: Browser, demo: Demo
) -> None:
    context = console_context(browser, viewport=DESKTOP, locale="en-GB")
    try:
        page = context.new_page()
        console_login(page, demo, "viewer")
        page.get_by_role("link", name=re.compile("Demo viewer|viewer@")).click()
        page.wait_for_url(f"{demo.url}/admin/account")
        assert page.get_by_role("heading", level=1).inner_text() == "Your account"
        problems = checked(page, "console-account")

        page.get_by_role("link", name="Set up two-factor authentication").click()
        page.wait_for_url(f"{demo.url}/admin/account/2fa")
        problems += checked(page, "console-2fa-off")
        page.get_by_role("button", name="Set up two-factor authentication").click()
        page.wait_for_load_state()
        assert page.locator(".qr svg").count() == 1
        secret = page.locator("#secret").inner_text().replace(" ", "")
        problems += checked(page, "console-2fa-scan")
        # The demo runs on the real clock: the code of now (one step either side is accepted).
        page.get_by_label("6-digit code").fill(pyotp.TOTP(secret).at(time.time()))
        page.get_by_role("button", name="Turn on two-factor authentication").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", level=1).inner_text() == "Your recovery codes"
        codes = page.locator(".codes li").all_inner_texts()
        assert len(codes) == 10
        problems += checked(page, "console-2fa-codes")
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(re.compile(r".*/admin/login\?notice=logged_out"))

        page.get_by_label("Email address").fill(demo.console["accounts"]["viewer"])
        page.get_by_label("Password").fill(demo.console["password"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r".*/admin/login/code.*"))
        problems += checked(page, "console-second-factor")
        page.get_by_label("Code from your authenticator app, or a recovery code").fill(codes[0])
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"{demo.url}/admin/")
        page.goto(f"{demo.url}/admin/account/2fa")
        assert "You have 9 unused recovery codes" in page.locator("main").inner_text()
        problems += checked(page, "console-2fa-on")
        # A viewer has no accounts link, and the page is refused.
        assert page.get_by_role("link", name="Accounts").count() == 0
        response = page.goto(f"{demo.url}/admin/accounts")
        assert response is not None and response.status == 403
        assert problems == [], "\n".join(problems)
    finally:
        context.close()


def test_an_admin_invites_someone(admin: Page, demo: Demo) -> None:
    page = admin
    page.goto(f"{demo.url}/admin/")
    page.get_by_role("link", name="Accounts").click()
    page.wait_for_url(f"{demo.url}/admin/accounts")
    assert page.get_by_role("heading", level=1).inner_text() == "Accounts"
    problems = checked(page, "console-accounts")
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Send invitation").click()
    page.wait_for_load_state()
    assert "There is a problem" in page.locator(".error-summary").inner_text()
    problems += checked(page, "console-accounts-error")
    page.locator(".error-summary a").first.click()
    assert page.evaluate("() => document.activeElement.id") == "email"
    page.get_by_label("Email address").fill("kim.lee@riverside.example")
    page.get_by_label("Name (optional)").fill("Kim Lee")
    page.get_by_label("Role").select_option("treasurer")
    page.get_by_role("button", name="Send invitation").click()
    page.wait_for_load_state()
    main = page.locator("main").inner_text()
    assert "kim.lee@riverside.example" in main
    page.goto(f"{demo.url}/admin/accounts")
    page.get_by_role("link", name="kim.lee@riverside.example").click()
    page.wait_for_url(re.compile(r".*/admin/accounts/ac_.*"))
    assert "Invited" in page.locator("main").inner_text()
    problems += checked(page, "console-account-admin")
    assert problems == [], "\n".join(problems)


def invitation_link(demo: Demo, address: str) -> str:
    """The set-password link in the demo's mailbox for ``address`` (the newest)."""
    with urllib.request.urlopen(f"{demo.url}/_demo/mail", timeout=10) as response:  # noqa: S310
        mailbox = html.unescape(response.read().decode())
    for article in mailbox.split("<article>")[1:]:  # newest first
        if f"To {address}" in article:
            found = re.search(r"http://127\.0\.0\.1:\d+/admin/invitation/[A-Za-z0-9._-]+", article)
            assert found, article
            return found.group(0)
    raise AssertionError(f"no invitation for {address} in the demo's mailbox")


def test_the_invited_person_sets_a_password_and_logs_in(
    browser: Browser, admin: Page, demo: Demo
) -> None:
    address = "lee.park@riverside.example"
    admin.goto(f"{demo.url}/admin/accounts")
    admin.get_by_label("Email address").fill(address)
    admin.get_by_label("Role").select_option("viewer")
    admin.get_by_role("button", name="Send invitation").click()
    admin.wait_for_url(f"{demo.url}/admin/accounts?notice=invited")
    link = invitation_link(demo, address)
    context = console_context(browser, viewport=PHONE, locale="en-GB")
    try:
        page = context.new_page()
        response = page.goto(link)
        assert response is not None and response.status == 200
        assert response.headers["referrer-policy"] == "no-referrer"
        assert page.get_by_role("heading", level=1).inner_text() == "Set up your account"
        problems = checked(page, "console-invitation")
        page.get_by_label("New password", exact=True).fill("rivers and hoops 2026")
        page.get_by_label("New password again").fill("rivers and hoops 2027")
        page.get_by_role("button", name="Set password").click()
        page.wait_for_load_state()
        assert "The two passwords are not the same" in page.locator(".error-summary").inner_text()
        problems += checked(page, "console-invitation-error")
        page.get_by_label("New password", exact=True).fill("rivers and hoops 2026")
        page.get_by_label("New password again").fill("rivers and hoops 2026")
        page.get_by_role("button", name="Set password").click()
        page.wait_for_url(re.compile(r".*/admin/login\?notice=password_set"))
        assert "Your password is set" in page.locator(".notice").inner_text()
        page.get_by_label("Email address").fill(address)
        page.get_by_label("Password").fill("rivers and hoops 2026")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{demo.url}/admin/")
        response = page.goto(link)
        assert response is not None and response.status == 410
        problems += checked(page, "console-link-used")
        assert problems == [], "\n".join(problems)
    finally:
        context.close()
