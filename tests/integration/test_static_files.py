"""The stylesheet under a content-hashed URL (issue 11 item 6): cached for a year there, only
revalidated under its plain name or an old hash, while pages stay ``no-store`` with a strict CSP."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

import gateway
from tests.harness import Harness, start_harness

STYLESHEET = Path(gateway.__file__).parent / "static" / "gateway.css"


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, sqlite_url)


# --- item 6: the stylesheet under its content hash -----------------------------------------------


class TestStaticFiles:
    async def stylesheet_url(self, h: Harness) -> str:
        page = await h.get(await h.issue())
        found = re.search(r'<link rel="stylesheet" href="([^"]+)">', await page.text())
        assert found
        return found[1]

    async def test_pages_link_the_stylesheet_by_its_content_hash(self, h: Harness) -> None:
        digest = hashlib.sha256(STYLESHEET.read_bytes()).hexdigest()[:16]
        assert await self.stylesheet_url(h) == f"/static/gateway.{digest}.css"

    async def test_the_hashed_url_is_cached_for_a_year_pages_are_not(self, h: Harness) -> None:
        link = await h.issue()
        page = await h.get(link)
        assert page.headers["Cache-Control"] == "no-store"
        assert "style-src 'self'" in page.headers["Content-Security-Policy"]
        hashed = await h.client.get(await self.stylesheet_url(h))
        assert hashed.status == 200
        assert hashed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert hashed.headers.getall("Cache-Control") == ["public, max-age=31536000, immutable"]
        assert hashed.headers["Content-Type"].startswith("text/css")
        assert await hashed.read() == STYLESHEET.read_bytes()
        assert hashed.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in hashed.headers

    @pytest.mark.parametrize(
        "path", ["/static/gateway.css", "/static/gateway.0123456789abcdef.css"]
    )
    async def test_the_plain_or_a_wrong_hash_url_is_revalidated_every_time(
        self, h: Harness, path: str
    ) -> None:
        plain = await h.client.get(path)
        assert plain.status == 200
        assert plain.headers.getall("Cache-Control") == ["no-cache"]
        assert await plain.read() == STYLESHEET.read_bytes()
        etag = plain.headers["ETag"]
        again = await h.client.get(path, headers={"If-None-Match": etag})
        assert again.status == 304

    @pytest.mark.parametrize("path", ["/static/nothing.css", "/static/..%2Fpay.py", "/static/"])
    async def test_anything_else_is_not_found(self, h: Harness, path: str) -> None:
        assert (await h.client.get(path)).status == 404
