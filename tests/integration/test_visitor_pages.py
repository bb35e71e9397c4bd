"""Pages by visitor (issue 3): people get the confirm page, bots a harmless preview, and a
misjudged person is one tap from paying. Nothing a visitor does with GET or HEAD writes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Link, LinkPreview
from gateway.web.keys import DATABASE
from tests.harness import Harness, start_harness

PEOPLE = {
    "iPhone Safari": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Android Chrome": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Facebook": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/442.0.0.39.110;FBBV/540334738;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.1.2;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/542279047]",
    "Instagram": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 317.0.4.27.109 (iPhone15,3; iOS 17_3; en_US; en; scale=3.00; 1290x2796; 565052596)",
    "Google app": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/309.0.616685607 Mobile/15E148 Safari/604.1",
    "LinkedIn": "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [LinkedInApp]/9.29.3360",
    "TikTok": "Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.193 Mobile Safari/537.36 trill_330603 BytedanceWebview/d8a21c6 musical_ly_2023306030 AppName/musical_ly app_version/33.6.3",
}
IN_APP = {"Facebook", "Instagram", "Google app", "LinkedIn", "TikTok"}

BOTS = {
    "facebookexternalhit": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "iMessage": "facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "Slackbot": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "WhatsApp": "WhatsApp/2.23.20.0 A",
    "Outlook": "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)",
    "Teams": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.5735.289 Safari/537.36 SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com",
    "Telegram": "TelegramBot (like TwitterBot)",
    "Discord": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "Googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl": "curl/8.5.0",
}
LISTED = {
    "facebookexternalhit",
    "iMessage",
    "Slackbot",
    "WhatsApp",
    "Outlook",
    "Teams",
    "Telegram",
    "Discord",
}


def headers_for(ua: str) -> dict[str, str]:
    return {"User-Agent": ua, "Accept-Language": "en-GB,en;q=0.9"}


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, database_url)


@pytest.mark.parametrize("who", sorted(PEOPLE))
async def test_people_get_the_confirm_page(h: Harness, who: str) -> None:
    link = await h.issue()
    response = await h.get(link, headers_for(PEOPLE[who]))
    body = await response.text()
    assert response.status == 200
    assert "$150.00" in body and 'method="post"' in body
    assert ("open this page in your phone" in body) == (who in IN_APP)


@pytest.mark.parametrize("who", sorted(BOTS))
async def test_bots_get_the_harmless_preview(h: Harness, who: str) -> None:
    link = await h.issue()
    response = await h.get(link, headers_for(BOTS[who]))
    body = await response.text()
    assert response.status == 200
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert "Payment request" in body and 'property="og:title"' in body
    # Nothing a preview could leak: no amount, no payer, no form.
    assert "150.00" not in body and "Sam Rivera" not in body and "<form" not in body
    assert f'href="/pay/{link.token}?view=confirm"' in body


async def test_get_and_head_from_every_visitor_create_nothing(h: Harness) -> None:
    link = await h.issue()
    for ua in [*PEOPLE.values(), *BOTS.values(), ""]:
        for _ in range(2):
            assert (await h.get(link, headers_for(ua))).status == 200
            assert (await h.head(link, headers_for(ua))).status == 200
            assert (await h.get(link, headers_for(ua), params={"view": "confirm"})).status == 200
    assert await h.orders(link) == []
    assert h.emulator.request_log == []


@pytest.mark.parametrize("who", sorted(LISTED))
async def test_post_from_a_listed_preview_bot_creates_nothing(h: Harness, who: str) -> None:
    link = await h.issue()
    response = await h.post(link, headers_for(BOTS[who]))
    assert response.status == 403
    assert "150.00" not in await response.text()
    assert await h.orders(link) == []
    assert h.emulator.sessions_created() == 0


async def test_unlisted_bot_post_only_creates_or_reuses_the_one_session(h: Harness) -> None:
    """A scanner with a browser-like or crawler UA that presses Pay costs nothing."""
    link = await h.issue()
    first = await h.post(link, headers_for(BOTS["Googlebot"]))
    second = await h.post(link, headers_for(PEOPLE["iPhone Safari"]))
    assert first.status == second.status == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert h.emulator.sessions_created() == 1


async def test_a_person_misjudged_as_bot_continues_to_payment(h: Harness) -> None:
    link = await h.issue()
    # A real browser behind a school web filter that appends a "Bot" token: judged a crawler,
    # yet the person behind it must still get through.
    odd = headers_for(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Safari/537.36 (compatible; SchoolFilter Bot/1.0)"
    )
    preview = await h.get(link, odd)
    assert "Continue to payment" in await preview.text()
    confirm = await h.get(link, odd, params={"view": "confirm"})
    assert confirm.status == 200
    assert "$150.00" in await confirm.text()
    paid = await h.post(link, odd)
    assert paid.status == 303


async def test_opens_and_previews_are_counted_under_100_concurrent_gets(h: Harness) -> None:
    link = await h.issue()
    people = [headers_for(PEOPLE["iPhone Safari"])] * 60
    bots = [headers_for(BOTS["Slackbot"])] * 25 + [headers_for(BOTS["WhatsApp"])] * 15
    responses = await asyncio.gather(*(h.get(link, hdrs) for hdrs in people + bots))
    assert {r.status for r in responses} == {200}
    # Counting happens in memory: no row changed until the batch is flushed.
    async with h.app[DATABASE].read() as session:
        assert (await session.get(Link, link.id)).open_count == 0  # type: ignore[union-attr]
    await h.flush_opens()
    await h.flush_opens()  # a second flush with nothing new changes nothing
    async with h.app[DATABASE].read() as session:
        row = await session.get(Link, link.id)
        assert row is not None
        assert row.open_count == 60
        assert row.first_opened_at is not None and row.last_opened_at is not None
        previews = dict(
            (
                await session.execute(
                    sa.select(LinkPreview.bot_name, LinkPreview.count).where(
                        LinkPreview.link_id == link.id
                    )
                )
            ).all()
        )
    assert sum(previews.values()) == 40
    assert len(previews) == 2


async def test_a_treasurer_opening_the_page_from_the_console_is_not_a_payer_opening_it(
    h: Harness,
) -> None:
    link = await h.issue()
    page = await h.get(link, headers_for(PEOPLE["iPhone Safari"]), params={"from": "console"})
    assert page.status == 200
    assert "$150.00" in await page.text()  # the page the payer sees, as it is
    await h.flush_opens()
    async with h.app[DATABASE].read() as session:
        row = await session.get(Link, link.id)
        assert row is not None and row.open_count == 0 and row.first_opened_at is None
