"""``gateway demo`` as a parent meets it: a real process, real HTTP, the emulator's hosted page."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from tests.harness import BROWSER_HEADERS
from tests.processes import ROOT, run_cli, wait_healthy


@pytest.mark.slow
async def test_demo_flow_end_to_end(tmp_path: Path) -> None:
    port, emulator_port = unused_port(), unused_port()
    database = tmp_path / "demo.sqlite3"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("GATEWAY_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            "--database",
            str(database),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", process, 30)  # type: ignore[arg-type]
        # The banner is printed once the sample links exist.
        lines: list[str] = []
        loop = asyncio.get_running_loop()
        while not any("two items" in line for line in lines):
            line = await loop.run_in_executor(None, process.stdout.readline)  # type: ignore[union-attr]
            assert line, "demo stopped before printing its links"
            lines.append(line)
        urls = re.findall(r"http://127\.0\.0\.1:\d+/pay/\S+", "".join(lines))
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
            assert checkout_url.startswith(f"http://127.0.0.1:{emulator_port}/checkout/cs_")
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
            env, GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{database}", GATEWAY_DEMO="1"
        )
        listed = run_cli(["links", "list", "--json"], cli_env)
        assert listed.returncode == 0, listed.stderr
        states = sorted(row["state"] for row in json.loads(listed.stdout))
        assert states == ["paid", "payable"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout and process.stderr
        process.stdout.close()
        process.stderr.close()
    assert process.returncode == 0  # a graceful stop on SIGTERM
