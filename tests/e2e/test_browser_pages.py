"""Every page a parent can meet, in headless Chromium, through the demo (issue 11 item 10).

Each page is reached as a parent reaches it (opening a link, pressing its buttons, paying on
the emulator's hosted page) and then checked at a phone viewport (390x844; the long-item
confirm page at a desktop one, 1280x800, too), in the light and the dark colour scheme: no
WCAG 2.2 A/AA violation from axe-core, every text at least 4.5:1 (3:1 large), nothing outside
the card, one h1 starting the title, 24 px targets; and reflowed at 320 px and at 200 % zoom
(640 CSS px) without sideways scrolling.
Screenshots of each go to tests/e2e/screenshots/ (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.browser import check_page, with_axe
from tests.e2e.conftest import CONTACT, Demo

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
LONG_ITEM = "Vereinsmitgliedschaftsbeitrag"


def person(browser: Any) -> str:
    """Chromium's own user agent without "HeadlessChrome", which reads as a bot (rightly)."""
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{browser.version} Safari/537.36"
    )


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = with_axe(
        browser.new_context(viewport=PHONE, locale="en-GB", user_agent=person(browser))
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def open_page(page: Any, url: str, status: int) -> str:
    response = page.goto(url)
    assert response is not None and response.status == status, (url, response)
    return str(page.inner_text("main"))


def checked(page: Any, name: str, **kwargs: Any) -> None:
    """Every check of tests/e2e/browser.py; these pages are all in English (an en-GB browser,
    links without a locale, no switcher choice). At the phone viewport (and the reflow widths):
    test_browser_languages sees each of these states at the desktop one too."""
    report = check_page(page, name, **({"lang": "en", "viewports": ("phone",)} | kwargs))
    assert not report.problems, "\n".join(report.problems)


def test_confirm_page_with_a_long_item_name(page: Any, demo: Demo) -> None:
    url = demo.issue(f"{LONG_ITEM}=1250.00", "Trikot und Trainingsanzug=45.50")
    text = open_page(page, url, 200)
    assert LONG_ITEM in text and "$1,295.50" in text
    # The issue's widths: the long word pushed the amounts out of the card from 320 to 360 px.
    checked(page, "confirm", viewports=("phone", "desktop"), extra_widths=(330, 340, 350, 360))


def test_preview_page_for_a_link_preview_bot(browser: Any, demo: Demo) -> None:
    context = with_axe(browser.new_context(viewport=PHONE, user_agent=SLACKBOT))
    try:
        bot_page = context.new_page()
        text = open_page(bot_page, demo.samples["fresh"]["url"], 200)
        assert "Continue to payment" in text and "150.00" not in text
        checked(bot_page, "preview")
    finally:
        context.close()


@pytest.mark.parametrize(
    ("key", "status", "heading"),
    [
        ("paid", 409, "Already paid"),
        ("processing", 409, "Payment processing"),
        ("revoked", 410, "This link was withdrawn"),
    ],
)
def test_refusal_pages(page: Any, demo: Demo, key: str, status: int, heading: str) -> None:
    text = open_page(page, demo.samples[key]["url"], status)
    assert heading in text
    if key == "revoked":
        assert CONTACT in page.inner_text("footer")  # who to contact, by name and address
    checked(page, key)


def test_failed_bank_debit_is_told_on_the_link(page: Any, demo: Demo) -> None:
    text = open_page(page, demo.samples["failed"]["url"], 200)
    assert "Your last payment did not go through." in text and "nothing was taken" in text
    checked(page, "failed")


def test_invalid_link(page: Any, demo: Demo) -> None:
    text = open_page(page, f"{demo.url}/pay/lk_this-is-not-a-link", 404)
    assert "This link is not valid" in text
    checked(page, "invalid")


def test_expired_link_renewed_then_sent_again(page: Any, demo: Demo) -> None:
    expired = demo.samples["expired"]["url"]
    text = open_page(page, expired, 410)
    assert "This link has expired" in text
    checked(page, "expired")

    with page.expect_navigation():
        page.get_by_role("button", name="Email me a new link").click()
    assert "Check your inbox" in page.inner_text("main")
    checked(page, "renewed")

    text = open_page(page, expired, 410)
    assert "A new link was emailed to you" in text and "withdrawn" not in text
    checked(page, "replaced")
    with page.expect_navigation():
        page.get_by_role("button", name="Email me the new link again").click()
    assert "Check your inbox" in page.inner_text("main")


def test_stripe_down_then_try_again_then_paid(page: Any, demo: Demo) -> None:
    url = demo.issue("Spring season fee=150.00")
    open_page(page, url, 200)
    # Stripe unreachable for the gateway's first try and its one retry.
    demo.emulator("/faults", {"drop_next": 2})
    with page.expect_navigation():
        page.click("button.pay")
    text = page.inner_text("main")
    assert "Please try again in a moment" in text and "Reference:" in text
    checked(page, "error-503")

    # Stripe is back: "Try again" (a plain POST, no script) goes on to the checkout page.
    with page.expect_navigation():
        page.get_by_role("button", name="Try again").click()
    assert page.url.startswith(f"{demo.emulator_url}/checkout/cs_")
    with page.expect_navigation(url=f"{url}/return**"):
        page.click("button[value=pay]")
    assert "Thank you, payment received" in page.inner_text("main")
    checked(page, "return-paid")


def test_bank_debit_processing_then_failed_on_the_return_page(page: Any, demo: Demo) -> None:
    url = demo.issue("Spring season fee=150.00")
    open_page(page, url, 200)
    with page.expect_navigation():
        page.click("button.pay")
    session_id = page.url.rsplit("/", 1)[1]
    with page.expect_navigation(url=f"{url}/return**"):
        page.click("button[value=pay_later]")
    text = page.inner_text("main")
    assert "payment processing" in text and "nothing more to do" not in text.lower()
    checked(page, "return-processing")

    demo.emulator(f"/payment_intents/{session_id}/settle", {"succeed": False})
    demo.emulator("/webhooks/deliver")
    page.reload()
    text = page.inner_text("main")
    assert "Your payment did not go through" in text and "nothing was taken" in text
    checked(page, "return-failed")
