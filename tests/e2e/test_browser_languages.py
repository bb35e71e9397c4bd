"""Every payer page in every offered language, in headless Chromium (issue 13 items 6 and 7).

The pages are the demo gallery's (``/_demo/gallery.json``): each state, opened with the
switcher's ``?lang=xx``, checked at a phone and a desktop viewport in the light and the dark
scheme (axe-core, contrast, the card, one h1, ``lang``, the title, 24 px targets) and reflowed
at 320 px and 200 % zoom. Its own demo (one per module), so no other test's button presses
change a sample before it is looked at. Then what the issue asks of the languages themselves:
a link's own language beats the browser's, ``Accept-Language`` picks among the offered, the
switcher works without JavaScript and stays on its link, Stripe's page gets the mapped locale,
the Pay button sends one request however fast it is pressed, and works without JavaScript.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

from gateway.domain.locales import NATIVE_NAMES, OFFERED
from gateway.i18n import translate
from gateway.i18n.formats import Formats
from tests.e2e.browser import SCHEMES, VIEWPORTS, Scheme, check_page, focus_ring, with_axe
from tests.e2e.conftest import Demo

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
ORG = "Riverside Youth Basketball"
PAYMENT_REQUEST = "Payment request"  # the state the confirm page's title carries

# Every page state in the gallery and its heading in English (a catalog msgid), or None where
# the heading is the link's own description (the confirm page). A state added to the gallery
# and not here fails test_the_gallery_lists_every_state_checked_here.
HEADINGS: dict[str, str | None] = {
    "confirm": None,
    "confirm_items": None,
    "confirm_failed": None,
    "in_app": None,
    "preview": "Payment request",
    "paid": "Already paid",
    "processing": "Payment processing",
    "return_paid": "Thank you, payment received",
    "return_processing": "Thank you, payment processing",
    "return_failed": "Your payment did not go through",
    "return_confirming": "We are confirming your payment",
    "expired": "This link has expired",
    "expired_no_renew": "This link has expired",
    "revoked": "This link was withdrawn",
    "revoked_renewed": "A new link was emailed to you",
    "renewed_sent": "Check your inbox",
    "renewed_limited": "A new link is on its way",
    "renewed_failed": "We could not send the email just now",
    "invalid": "This link is not valid",
    "truncated": "This link is incomplete",
    "not_found": "Page not found",
    "error_503": "Sorry, there is a problem",
    "error_500": "Sorry, there is a problem",
    "bad_request": "Request not accepted",
}
# The confirm pages: their description (the h1) and total, as the demo issued them.
CONFIRMS = {
    "confirm": ("Spring season fee", 15000),
    "confirm_items": ("Spring fees, two players", 27000),
    "confirm_failed": ("Spring season fee", 15000),
    "in_app": ("Spring season fee", 15000),
}


def person(browser: Any) -> str:
    """Chromium's own user agent without "HeadlessChrome", which reads as a bot (rightly)."""
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{browser.version} Safari/537.36"
    )


def new_context(browser: Any, **options: Any) -> Any:
    settings = {"viewport": PHONE, "locale": "en-GB", "user_agent": person(browser)}
    return browser.new_context(**(settings | options))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = new_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def walker(browser: Any) -> Iterator[Any]:
    """One page for the walk through the gallery, axe-core loaded into every page it opens
    (a context per page and axe injected after each load cost four times as long)."""
    context = with_axe(new_context(browser))
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def gallery(demo: Demo) -> dict[str, dict[str, Any]]:
    listed = demo.request("GET", f"{demo.url}/_demo/gallery.json")
    return {shown["key"]: shown for shown in listed["pages"]}


def money(locale: str, minor: int) -> str:
    return Formats(locale, "UTC").money(minor, "usd")


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_the_gallery_lists_every_state_checked_here(gallery: dict[str, Any]) -> None:
    assert list(gallery) == list(HEADINGS)
    for shown in gallery.values():
        assert set(shown["urls"]) == set(OFFERED)


def desktop_language(key: str) -> str:
    """The language a state is also checked in at the desktop viewport: each in one, in turn,
    so every state and every language is seen on a desktop (the card is the same 440 px there,
    and the phone is where text runs out of room), at a quarter of the time."""
    return OFFERED[list(HEADINGS).index(key) % len(OFFERED)]


@pytest.mark.parametrize("lang", OFFERED)
@pytest.mark.parametrize("key", list(HEADINGS))
def test_every_page_in_every_language(
    walker: Any, demo: Demo, gallery: dict[str, Any], key: str, lang: str
) -> None:
    page = walker
    page.context.clear_cookies()  # only the ?lang= of this page chooses
    page.set_viewport_size(PHONE)
    shown = gallery[key]
    response = page.goto(demo.url + shown["urls"][lang])
    assert response is not None and response.status == shown["status"], (key, lang)
    assert response.headers["content-language"] == lang
    assert response.headers["vary"] == "Accept-Language, Cookie"

    # The heading is the catalog's sentence in this language (translated: not the English),
    # and the title starts with it, then the state where the heading is not one, then the org.
    heading = words(page.inner_text("h1"))
    english = HEADINGS[key]
    if english is None:
        description, total = CONFIRMS[key]
        assert heading == description
        assert page.title() == f"{description} - {translate(lang, PAYMENT_REQUEST)} - {ORG}"
        pay = words(page.inner_text("button.pay"))
        assert pay == words(translate(lang, "Pay %(amount)s") % {"amount": money(lang, total)})
        assert money(lang, total) in page.inner_text(".items .total")
    else:
        assert heading == translate(lang, english)
        if lang != "en":
            assert heading != english, f"{key} in {lang}: the heading is not translated"
        assert page.title() == f"{heading} - {ORG}"
    # The switcher: every other language as a link named in its own language, this one marked.
    current = page.locator("nav.languages [aria-current=true]")
    assert current.inner_text() == NATIVE_NAMES[lang] and current.get_attribute("lang") == lang
    for code in OFFERED:
        if code != lang:
            link = page.get_by_role("link", name=NATIVE_NAMES[code], exact=True)
            assert link.get_attribute("href") == f"?lang={code}"

    viewports = tuple(VIEWPORTS) if lang == desktop_language(key) else ("phone",)
    report = check_page(page, f"{key}-{lang}", lang=lang, viewports=viewports)
    assert not report.problems, "\n".join(report.problems)


@pytest.mark.parametrize("lang", [code for code in OFFERED if code != "en"])
def test_a_long_word_and_wider_amounts_reflow_in_every_language(
    page: Any, demo: Demo, lang: str
) -> None:
    # The amounts are wider than in English ("US$ 1.295,50", "1 295,50 $US"): the long word
    # must still wrap inside the card, from 320 px up (English: test_browser_pages).
    url = demo.issue(
        "Vereinsmitgliedschaftsbeitrag=1250.00", "Trikot und Trainingsanzug=45.50", locale=lang
    )
    page.goto(url)
    assert money(lang, 129550) in page.inner_text(".items .total")
    report = check_page(
        page,
        f"long-word-{lang}",
        lang=lang,
        viewports=("phone",),
        schemes=("light",),
        extra_widths=(330, 340, 350, 360),
    )
    assert not report.problems, "\n".join(report.problems)


@pytest.mark.parametrize("lang", OFFERED)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_keyboard_focus_shows_on_the_switcher_and_the_pay_button(
    page: Any, demo: Demo, gallery: dict[str, Any], lang: str, scheme: Scheme
) -> None:
    page.goto(demo.url + gallery["confirm"]["urls"][lang])
    reached = focus_ring(page, scheme)
    names = [words(f.text) for f in reached]
    others = [NATIVE_NAMES[code] for code in OFFERED if code != lang]
    pay = words(translate(lang, "Pay %(amount)s") % {"amount": money(lang, 15000)})
    # The order a keyboard meets them: the switcher above the card, then Pay, then the footer.
    assert names[: len(others) + 1] == [*others, pay], names
    problems = [p for f in reached for p in f.problems()]
    assert not problems, "\n".join(problems)


def test_a_spanish_link_is_spanish_for_an_english_browser(page: Any, demo: Demo) -> None:
    url = demo.issue("Spring season fee=150.00", locale="es")
    response = page.goto(url)
    assert response is not None and response.status == 200
    assert response.request.headers["accept-language"].startswith("en-GB")
    assert response.headers["content-language"] == "es"
    assert page.get_attribute("html", "lang") == "es"
    assert words(page.inner_text("button.pay")) == "Pagar 150,00 US$"
    assert page.title() == f"Spring season fee - Solicitud de pago - {ORG}"


def test_accept_language_picks_portuguese_for_a_link_without_a_locale(
    browser: Any, demo: Demo
) -> None:
    context = new_context(browser, locale="pt-BR")
    try:
        page = context.new_page()
        response = page.goto(demo.issue("Spring season fee=150.00"))
        assert response is not None and response.status == 200
        assert response.request.headers["accept-language"].startswith("pt-BR")
        assert response.headers["content-language"] == "pt-BR"
        assert page.get_attribute("html", "lang") == "pt-BR"
        assert words(page.inner_text("button.pay")) == "Pagar US$ 150,00"
    finally:
        context.close()


def test_the_switcher_works_without_javascript_and_only_for_its_link(
    browser: Any, demo: Demo
) -> None:
    context = new_context(browser, java_script_enabled=False)
    try:
        page = context.new_page()
        url, other = demo.issue("Spring season fee=150.00"), demo.issue("Fee=120.00")
        page.goto(url)
        assert page.get_attribute("html", "lang") == "en"
        with page.expect_navigation():
            page.get_by_role("link", name="Français", exact=True).click()
        assert page.url == f"{url}?lang=fr"
        assert page.get_attribute("html", "lang") == "fr"
        assert words(page.inner_text("button.pay")) == "Payer 150,00 $US"
        cookie = next(c for c in context.cookies() if c["name"] == "lang")
        assert cookie["value"] == "fr" and cookie["path"] == "/pay/" + url.rsplit("/", 1)[1]

        # The link again, as the email has it (no ?lang): still French, from the cookie.
        response = page.goto(url)
        assert response is not None and response.headers["content-language"] == "fr"
        assert page.get_attribute("html", "lang") == "fr"
        page.reload()
        assert page.get_attribute("html", "lang") == "fr"
        # Another link is not affected: the browser's language (en-GB), not the choice.
        response = page.goto(other)
        assert response is not None and response.headers["content-language"] == "en"
        assert words(page.inner_text("button.pay")) == "Pay $120.00"
    finally:
        context.close()


def test_stripe_gets_the_mapped_locale_of_a_portuguese_page(page: Any, demo: Demo) -> None:
    url = demo.issue("Spring season fee=150.00")
    page.goto(f"{url}?lang=pt-BR")
    with page.expect_navigation(url=f"{demo.emulator_url}/checkout/cs_*"):
        page.click("button.pay")
    assert "pt-BR" in page.inner_text("#checkout-locale")
    session_id = page.url.rsplit("/", 1)[1]
    sessions = demo.request("GET", f"{demo.emulator_url}/_emulator/sessions")["data"]
    (session,) = [s for s in sessions if s["id"] == session_id]
    assert session["locale"] == "pt-BR"


def test_pay_pressed_twice_fast_sends_one_request(page: Any, demo: Demo) -> None:
    url = demo.issue("Spring season fee=150.00")
    page.goto(url)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    # The first press's POST is held on its way, so the second press surely comes while it is
    # in flight (the page still there, as on a slow phone network); then both are let go.
    held: list[Any] = []
    release = False

    def hold(route: Any) -> None:
        if release or route.request.method != "POST":
            route.continue_()
        else:
            held.append(route)

    page.route(url, hold)
    box = page.locator("button.pay").bounding_box()
    assert box is not None
    with page.expect_request(lambda r: r.method == "POST"):
        page.click("button.pay", no_wait_after=True)
    # The second press: the mouse, which (unlike a locator) does not wait for the navigation.
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    with page.expect_navigation(url=f"{demo.emulator_url}/checkout/cs_*"):
        release = True
        for route in held:
            with contextlib.suppress(PlaywrightError):  # a superseded one is already gone
                route.continue_()
    assert posts == [url]


def test_pay_works_without_javascript(browser: Any, demo: Demo) -> None:
    context = new_context(browser, java_script_enabled=False)
    try:
        page = context.new_page()
        url = demo.issue("Spring season fee=150.00")
        page.goto(url)
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        with page.expect_navigation(url=f"{demo.emulator_url}/checkout/cs_*"):
            page.click("button.pay")
        assert posts == [url]
        assert page.inner_text("#checkout-locale")  # Stripe's (the emulator's) page
    finally:
        context.close()


def test_stripe_down_after_pay_on_a_french_page_answers_in_french(page: Any, demo: Demo) -> None:
    url = demo.issue("Spring season fee=150.00")
    page.goto(f"{url}?lang=fr")
    demo.emulator("/faults", {"drop_next": 2})  # the gateway's try and its one retry
    with page.expect_navigation():
        page.click("button.pay")
    # The POST carried no ?lang=: the switcher's cookie (scoped to the link) chose French.
    assert page.get_attribute("html", "lang") == "fr"
    assert words(page.inner_text("h1")) == translate("fr", "Sorry, there is a problem")
    assert words(translate("fr", "Please try again in a moment.")) in words(page.inner_text("main"))
    report = check_page(page, "error_503-fr-real", lang="fr", viewports=("phone",))
    assert not report.problems, "\n".join(report.problems)
    with page.expect_navigation(url=f"{demo.emulator_url}/checkout/cs_*"):
        page.get_by_role("button", name=translate("fr", "Try again")).click()
    assert "fr" in page.inner_text("#checkout-locale")


def test_a_new_link_asked_for_on_a_spanish_page_is_answered_in_spanish(
    page: Any, demo: Demo
) -> None:
    # Last in this module: it turns the demo's expired sample into a replaced one.
    expired = demo.samples["expired"]["url"]
    page.goto(f"{expired}?lang=es")
    assert words(page.inner_text("h1")) == translate("es", "This link has expired")
    with page.expect_navigation():
        page.get_by_role("button", name=translate("es", "Email me a new link")).click()
    assert page.get_attribute("html", "lang") == "es"
    assert words(page.inner_text("h1")) == translate("es", "Check your inbox")
    page.goto(expired)  # as the email has it: Spanish still (the cookie), and now replaced
    assert words(page.inner_text("h1")) == translate("es", "A new link was emailed to you")
