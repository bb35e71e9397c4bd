"""``gateway demo`` sends its sample links to a local SMTP sink and shows them at /_demo/mail,
and its admin API answers the key it prints."""

from __future__ import annotations

import html
import re
from pathlib import Path

import aiohttp
import pytest

from tests.processes import DemoProcess


@pytest.mark.slow
async def test_demo_shows_what_it_sent_and_prints_a_working_admin_key(tmp_path: Path) -> None:
    async with DemoProcess(tmp_path / "demo.sqlite3") as demo:
        banner = await demo.read_until("Bearer")
        links = re.findall(r"http://127\.0\.0\.1:\d+/pay/\S+", banner)
        key = re.search(r"Bearer ([A-Za-z0-9_-]+)'", banner)
        assert len(links) == 8 and key  # one sample link per state, every one emailed

        async with aiohttp.ClientSession() as client:
            async with client.get(f"{demo.url}/_demo/mail") as page:
                assert page.status == 200
                text = html.unescape(await page.text())
            for link in links:
                assert link in text
            assert "sam.parent@example.com" in text
            headers = {"Authorization": f"Bearer {key[1]}"}
            async with client.get(f"{demo.url}/admin/api/links", headers=headers) as listed:
                assert listed.status == 200
                rows = (await listed.json())["links"]
            assert {r["email_delivery"]["sent_count"] for r in rows} == {1}
