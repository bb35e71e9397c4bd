"""The edge under hostile input (issue 10): odd headers and oversized tokens get a clear 4xx that
changes nothing, and every answer carries the right transport headers, aiohttp's own included."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import ClientResponse

from gateway.adapters.db.models import Link
from gateway.config import Settings
from gateway.web.keys import DATABASE
from tests.harness import BROWSER_HEADERS, Harness, start_harness

BROKEN_ORIGINS = ["http://[", "http://[::1", "http://[zz]"]


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, sqlite_url)


async def links_state(h: Harness) -> list[tuple[str, object]]:
    async with h.app[DATABASE].read() as session:
        rows = await session.execute(sa.select(Link.id, Link.revoked_at).order_by(Link.id))
        return [(row[0], row[1]) for row in rows]


class TestUnparsableOrigin:
    @pytest.mark.parametrize("origin", BROKEN_ORIGINS)
    async def test_pay_is_a_403_that_creates_nothing(self, h: Harness, origin: str) -> None:
        link = await h.issue()
        response = await h.post(link, headers={**BROWSER_HEADERS, "Origin": origin})
        assert response.status == 403
        assert "text/html" in response.headers["Content-Type"]
        assert await h.orders(link) == []
        assert h.stripe_posts() == []

    @pytest.mark.parametrize("origin", BROKEN_ORIGINS)
    async def test_renew_is_a_403_that_changes_nothing(self, h: Harness, origin: str) -> None:
        link = await h.issue()
        before = await links_state(h)
        response = await h.client.post(
            f"/pay/{link.token}/renew",
            headers={**BROWSER_HEADERS, "Origin": origin},
            allow_redirects=False,
        )
        assert response.status == 403
        assert await links_state(h) == before
        assert await h.orders(link) == []

    async def test_our_own_origin_still_pays(self, h: Harness) -> None:
        link = await h.issue()
        public = str(h.client.make_url("")).rstrip("/")
        response = await h.post(link, headers={**BROWSER_HEADERS, "Origin": public})
        assert response.status == 303


class TestOversizedToken:
    async def test_gets_the_invalid_page_and_is_not_remembered(self, h: Harness) -> None:
        from gateway.web.keys import TOKENS

        tokens = h.app[TOKENS]
        link = await h.issue()
        for i in range(20):
            long_token = f"{link.token}{i:04d}" + "x" * 4000
            for response in (
                await h.get(long_token),
                await h.post(long_token),
                await h.client.post(f"/pay/{long_token}/renew", allow_redirects=False),
            ):
                assert response.status == 404
                assert "not valid" in (await response.text()).lower()
        assert len(tokens._rejected) == 0
        assert await h.orders(link) == [] and h.stripe_posts() == []


async def start_with_public_url(
    aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str, public_url: str
) -> Harness:
    def configure(settings: Settings) -> Settings:
        server = dataclasses.replace(settings.server, public_url=public_url)
        return dataclasses.replace(settings, server=server)

    return await start_harness(aiohttp_server, aiohttp_client, sqlite_url, configure=configure)


async def every_kind_of_answer(h: Harness) -> list[tuple[str, ClientResponse]]:
    link = await h.issue()
    return [
        ("confirm page", await h.get(link)),
        ("invalid page", await h.get("lk_nothing")),
        ("healthz", await h.client.get("/healthz")),
        ("metrics", await h.client.get("/metrics")),
        ("admin api", await h.client.get("/admin/api/links")),
        ("unrouted", await h.client.get("/no/such/page")),
        ("static", await h.client.get("/static/gateway.css")),
        ("wrong method", await h.client.put(h.path(link))),
    ]


class TestTransportHeaders:
    async def test_https_public_url_sends_hsts_on_every_answer(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_with_public_url(
            aiohttp_server, aiohttp_client, sqlite_url, "https://pay.example.org"
        )
        for what, response in await every_kind_of_answer(h):
            hsts = response.headers.get("Strict-Transport-Security", "")
            assert hsts.startswith("max-age="), what
            assert int(hsts.split("=")[1]) >= 180 * 86400, what

    async def test_plain_http_public_url_sends_no_hsts(self, h: Harness) -> None:
        for what, response in await every_kind_of_answer(h):
            assert "Strict-Transport-Security" not in response.headers, what

    async def test_no_answer_names_python_or_aiohttp(self, h: Harness) -> None:
        for what, response in await every_kind_of_answer(h):
            assert response.headers.get("Server") == "gateway", what

    async def test_nor_does_aiohttp_refusing_a_request_it_cannot_parse(self, h: Harness) -> None:
        answer = await h.send_raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Odd: a\x00b\r\n\r\n")
        head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        assert head.startswith("HTTP/1.") and " 400 " in head.split("\r\n")[0]
        assert "\r\nServer: gateway" in head
        assert "aiohttp" not in head.lower() and "python" not in head.lower()
