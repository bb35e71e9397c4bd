"""``gateway demo`` sends its sample links to a local SMTP sink and shows them at /_demo/mail,
and its admin API answers the key it prints."""

from __future__ import annotations

import asyncio
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import unused_port

from tests.processes import ROOT, wait_healthy


@pytest.mark.slow
async def test_demo_shows_what_it_sent_and_prints_a_working_admin_key(tmp_path: Path) -> None:
    port, emulator_port = unused_port(), unused_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
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
            str(tmp_path / "demo.sqlite3"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", process, 30)  # type: ignore[arg-type]
        lines: list[str] = []
        loop = asyncio.get_running_loop()
        while not any("Bearer" in line for line in lines):
            line = await loop.run_in_executor(None, process.stdout.readline)  # type: ignore[union-attr]
            assert line, "demo stopped before printing its banner"
            lines.append(line)
        banner = "".join(lines)
        links = re.findall(r"http://127\.0\.0\.1:\d+/pay/\S+", banner)
        key = re.search(r"Bearer ([A-Za-z0-9_-]+)'", banner)
        assert len(links) == 2 and key

        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{port}/_demo/mail") as page:
                assert page.status == 200
                text = html.unescape(await page.text())
            for link in links:
                assert link in text
            assert "sam.parent@example.com" in text
            headers = {"Authorization": f"Bearer {key[1]}"}
            async with client.get(
                f"http://127.0.0.1:{port}/admin/api/links", headers=headers
            ) as listed:
                assert listed.status == 200
                rows = (await listed.json())["links"]
            assert {r["email_delivery"]["sent_count"] for r in rows} == {1}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
