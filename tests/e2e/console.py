"""The console in the browser suite: logging in as one of the demo's accounts.

``gateway demo`` makes one account per role (admin, treasurer, viewer) with one password per
run (``Demo.console``). Each person gets a browser context of their own (its own cookies)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page

from tests.e2e.browser import COLOUR_RULES, SCREENSHOTS, axe_violations, with_axe
from tests.e2e.conftest import Demo

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def console_context(browser: Browser, **options: Any) -> BrowserContext:
    """A fresh context (no cookies) with axe loaded on every page."""
    return with_axe(browser.new_context(**options))


def console_login(page: Page, demo: Demo, role: str = "treasurer") -> None:
    """Log in through the login form, as a person would; ends on the overview."""
    email = demo.console["accounts"][role]
    page.goto(f"{demo.url}/admin/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(demo.console["password"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{demo.url}/admin/**")
    assert "/admin/login" not in page.url, f"login as {role} failed: {page.url}"


def console_page(browser: Browser, demo: Demo, role: str = "treasurer", **options: Any) -> Page:
    """A page of a new context, logged in as ``role``."""
    context = console_context(browser, **options)
    page = context.new_page()
    console_login(page, demo, role)
    return page


def accessible(page: Page, name: str) -> list[str]:
    """axe at the phone and the desktop width, light and dark; a screenshot of each; and no
    sideways scrolling. Ends at the desktop width in the light scheme."""
    SCREENSHOTS.mkdir(exist_ok=True)
    problems = []
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        for index, scheme in enumerate(("light", "dark")):
            page.emulate_media(color_scheme=scheme)
            rules = None if index == 0 else COLOUR_RULES
            problems += [f"{name} {label} {scheme}: {v}" for v in axe_violations(page, rules)]
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}-{scheme}.png"), full_page=True)
        wide = page.evaluate("() => document.documentElement.scrollWidth > window.innerWidth")
        if wide:
            problems.append(f"{name} {label}: the page scrolls sideways")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(DESKTOP)
    return problems
