"""The payer's pages in their language (issue 13 item 2): the switcher, the link's locale, the
browser's Accept-Language limited to what is offered, the default; the headers that say so;
bot previews in the link's language; and outsiders' headers and cookies that can only fall back.
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

import pytest

from gateway.web.keys import LINKS
from gateway.web.payable import PAYABLE_IN
from tests.harness import IPHONE_SAFARI, Harness, start_harness

SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"


def browser(accept_language: str | None = None, **more: str) -> dict[str, str]:
    headers = {"User-Agent": IPHONE_SAFARI, **more}
    if accept_language is not None:
        headers["Accept-Language"] = accept_language
    return headers


def page_lang(body: str) -> str:
    found = re.search(r'<html lang="([^"]+)">', body)
    assert found, body[:200]
    return found[1]


async def language_of(h: Harness, path: str, headers: dict[str, str]) -> tuple[str, Any]:
    response = await h.client.get(path, headers=headers, allow_redirects=False)
    body = await response.text()
    assert response.status < 500, body
    lang = page_lang(body)
    # What the page is in, it also says in a header, and a cache must key on what chose it.
    assert response.headers["Content-Language"] == lang
    assert response.headers["Vary"] == "Accept-Language, Cookie"
    return lang, response


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, database_url)


class TestChoosing:
    async def test_a_spanish_link_reads_spanish_in_an_english_browser(self, h: Harness) -> None:
        link = await h.issue(locale="es")
        lang, response = await language_of(h, h.path(link), browser("en-GB,en;q=0.9"))
        assert lang == "es"
        assert "150,00\xa0US$" in await response.text()  # CLDR's Spanish dollars

    @pytest.mark.parametrize(
        ("accept", "expected"),
        [
            ("pt-BR", "pt-BR"),
            ("pt-PT,pt;q=0.9,en;q=0.5", "pt-BR"),  # the Portuguese offered, not the default
            ("es-MX,es;q=0.9", "es"),
            ("de-DE,de;q=0.9,fr;q=0.8", "fr"),  # German is not offered; French is next
            ("fr;q=0, es;q=0.4, en;q=0.3", "es"),  # q=0: "not French"
            ("de-DE", "en"),
            (None, "en"),
        ],
    )
    async def test_a_link_without_a_locale_follows_the_browser(
        self, h: Harness, accept: str | None, expected: str
    ) -> None:
        link = await h.issue()
        lang, _ = await language_of(h, h.path(link), browser(accept))
        assert lang == expected

    async def test_the_default_is_the_organisations(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str
    ) -> None:
        h = await start_harness(aiohttp_server, aiohttp_client, database_url, default_locale="fr")
        link = await h.issue()
        assert (await language_of(h, h.path(link), browser("de")))[0] == "fr"
        assert (await language_of(h, h.path(link), browser("es")))[0] == "es"

    async def test_every_state_page_is_in_the_links_language(self, h: Harness) -> None:
        paid = await h.issue(ref="paid", locale="pt-BR")
        await h.pay_flow(paid)
        lang, response = await language_of(h, h.path(paid), browser("en"))
        assert lang == "pt-BR" and response.status == 409
        lang, _ = await language_of(h, h.path(paid) + "/return", browser("en"))
        assert lang == "pt-BR"
        revoked = await h.issue(ref="revoked", locale="fr")
        await h.app[LINKS].revoke(revoked.id, actor="test", reason="test")
        lang, response = await language_of(h, h.path(revoked), browser("en"))
        assert lang == "fr" and response.status == 410


class TestSwitcher:
    async def test_a_choice_answers_in_that_language_and_is_remembered_for_that_link_only(
        self, h: Harness
    ) -> None:
        link = await h.issue(locale="es")
        lang, response = await language_of(h, h.path(link) + "?lang=fr", browser("en"))
        assert lang == "fr"
        cookie = SimpleCookie(response.headers["Set-Cookie"])["lang"]
        assert cookie.value == "fr"
        assert cookie["path"] == h.path(link)  # this link's pages, no other link's
        assert cookie["httponly"] and cookie["samesite"] == "Lax"
        # Nothing else about the answer changes: still uncacheable, still framed by nobody.
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        # The browser sends it back on this link's pages: French, whatever the link says.
        remembered = browser("en", Cookie="lang=fr")
        lang, again = await language_of(h, h.path(link), remembered)
        assert lang == "fr" and "Set-Cookie" not in again.headers  # set once, on the choice
        assert (await language_of(h, h.path(link) + "/return", remembered))[0] == "fr"

    async def test_the_switcher_is_plain_links_to_each_offered_language(self, h: Harness) -> None:
        link = await h.issue()
        body = await (await h.client.get(h.path(link), headers=browser("en"))).text()
        switcher = re.search(r'<nav class="languages"[^>]*>(.*?)</nav>', body, re.S)
        assert switcher
        hrefs = re.findall(r'href="\?lang=([^"]+)"', switcher[1])
        assert sorted(hrefs) == ["es", "fr", "pt-BR"]  # the current one is not a link
        assert 'aria-current="true" lang="en">English<' in switcher[1]
        assert "<script" not in switcher[1]

    async def test_an_unknown_choice_changes_nothing(self, h: Harness) -> None:
        link = await h.issue(locale="es")
        for query in ("?lang=de", "?lang=", "?lang=" + "x" * 5000, "?lang=%ff%fe"):
            lang, response = await language_of(h, h.path(link) + query, browser("en"))
            assert lang == "es" and "Set-Cookie" not in response.headers, query


class TestBotsAndErrors:
    async def test_a_bot_preview_is_in_the_links_language_whatever_it_asks(
        self, h: Harness
    ) -> None:
        spanish = await h.issue(ref="es", locale="es")
        plain = await h.issue(ref="none")
        bot = {"User-Agent": SLACKBOT, "Accept-Language": "fr"}
        lang, response = await language_of(h, h.path(spanish), bot)
        assert lang == "es" and 'property="og:title"' in await response.text()
        assert (await language_of(h, h.path(plain), bot))[0] == "en"

    async def test_error_pages_follow_the_browser(self, h: Harness) -> None:
        assert (await language_of(h, "/nowhere", browser("pt-BR")))[0] == "pt-BR"
        assert (await language_of(h, "/pay/lk_not-a-token", browser("fr")))[0] == "fr"

    @pytest.mark.parametrize(
        "accept",
        [
            "garbage;;;,,,q=",
            "es;q=abc, fr;q=-1, pt;q=2",
            # As long as aiohttp's parser lets a header line be (8 KB): read 512 chars at most.
            "x" * 8000,
            ", ".join(f"l{i}" for i in range(1000)) + ", es",  # es past the 16 ranges read
            "*",
        ],
    )
    async def test_a_malformed_accept_language_falls_back_to_the_default(
        self, h: Harness, accept: str
    ) -> None:
        link = await h.issue()
        assert (await language_of(h, h.path(link), browser(accept)))[0] == "en"

    @pytest.mark.parametrize("cookie", ['lang="fr', "lang=de", "lang=" + "é" * 100, "=;;;lang"])
    async def test_a_malformed_cookie_falls_back(self, h: Harness, cookie: str) -> None:
        link = await h.issue(locale="es")
        lang, _ = await language_of(h, h.path(link), browser("en", Cookie=cookie))
        assert lang == "es"


class TestCache:
    async def test_one_languages_page_is_never_served_for_another(self, h: Harness) -> None:
        link = await h.issue()
        seen = []
        for accept in ("en", "es", "en", "fr", "es", "pt-BR", "en"):
            lang, response = await language_of(h, h.path(link), browser(accept))
            body = await response.text()
            assert lang == accept and page_lang(body) == accept
            seen.append(body)
        assert seen[0] == seen[2] == seen[6] and seen[1] == seen[4]

    async def test_another_language_is_packed_once_per_link_and_follows_its_changes(
        self, h: Harness
    ) -> None:
        link = await h.issue()  # no locale: English for most, Spanish for a Spanish browser
        spanish = browser("es-ES,es;q=0.9")
        first = await (await h.client.get(h.path(link), headers=spanish)).text()
        packed = h.app[PAYABLE_IN]["es"].fresh(link.id)
        assert packed is not None and page_lang(first) == "es"
        second = await (await h.client.get(h.path(link), headers=spanish)).text()
        assert second == first and h.app[PAYABLE_IN]["es"].fresh(link.id) is packed
        # A change to the link reaches the Spanish page too (one snapshot, one invalidation).
        await h.app[LINKS].revoke(link.id, actor="test", reason="test")
        assert h.app[PAYABLE_IN]["es"].fresh(link.id) is None
        lang, response = await language_of(h, h.path(link), spanish)
        assert (lang, response.status) == ("es", 410)
