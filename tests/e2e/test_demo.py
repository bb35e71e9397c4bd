"""``gateway demo`` as a parent meets it: a real process, real HTTP, the emulator's hosted page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from tests.harness import BROWSER_HEADERS
from tests.processes import DemoProcess, run_cli


@pytest.mark.slow
async def test_demo_flow_end_to_end(tmp_path: Path) -> None:
    async with DemoProcess(tmp_path / "demo.sqlite3") as demo:
        # The banner is printed once the sample links exist.
        banner = await demo.read_until("two items")
        urls = re.findall(r"http://127\.0\.0\.1:\d+/pay/\S+", banner)
        assert len(urls) == 2
        one, two = urls

        async with aiohttp.ClientSession(headers=BROWSER_HEADERS) as client:
            async with client.get(two) as page:
                text = await page.text()
                assert page.status == 200
                assert "Spring fee, Maya" in text and "270.00 USD" in text

            async with client.post(one, allow_redirects=False) as pressed:
                assert pressed.status == 303
                checkout_url = pressed.headers["Location"]
            assert checkout_url.startswith(f"http://127.0.0.1:{demo.emulator_port}/checkout/cs_")
            async with client.get(checkout_url) as hosted:
                assert hosted.status == 200
                assert "150.00" in await hosted.text()
            async with client.post(
                checkout_url, data={"action": "pay"}, allow_redirects=False
            ) as paid:
                assert paid.status == 303
                success_url = paid.headers["Location"]
            assert success_url.startswith(f"{one}/return?session_id=cs_")
            async with client.get(success_url) as returned:
                assert returned.status == 200
                assert "payment received" in await returned.text()
            async with client.get(one) as again:
                assert again.status == 409
                assert "Already paid" in await again.text()

        # The admin sees it as paid, with the webhook in the trail.
        cli_env = dict(
            demo.env, GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{demo.database}", GATEWAY_DEMO="1"
        )
        listed = run_cli(["links", "list", "--json"], cli_env)
        assert listed.returncode == 0, listed.stderr
        states = sorted(row["state"] for row in json.loads(listed.stdout))
        assert states == ["paid", "payable"]
    assert demo.returncode == 0  # a graceful stop on SIGTERM
