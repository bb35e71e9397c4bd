"""``gateway demo`` as a newcomer meets it: a real process, real HTTP, the emulator's hosted page,
the sample links it prints and the command-line hint it prints, run as printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.harness import BROWSER_HEADERS
from tests.processes import ROOT, DemoProcess, run_cli

STATES = ["fresh", "two_items", "paid", "processing", "failed", "expired", "revoked", "renewed"]


async def samples(demo: DemoProcess) -> dict[str, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{demo.url}/_demo/links.json") as response,
    ):
        assert response.status == 200
        data = await response.json()
    assert data["ready"] is True
    return {link["key"]: link for link in data["links"]}


def run_printed(banner: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run one of the banner's command lines in a shell, after its ``export`` line, from the
    folder the demo runs in and with no GATEWAY_* settings of the test's own."""
    exports = [line.strip() for line in banner.splitlines() if line.strip().startswith("export ")]
    assert len(exports) == 1, banner
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        ["bash", "-c", f"{exports[0]} && {command}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
async def test_demo_flow_end_to_end_and_its_printed_cli_hint(tmp_path: Path) -> None:
    async with DemoProcess(tmp_path / "demo.sqlite3") as demo:
        # The banner is printed once the sample links exist.
        banner = await demo.read_until("Ctrl-C stops the demo")
        by_key = await samples(demo)
        assert list(by_key) == STATES
        for link in by_key.values():
            assert link["url"] in banner  # printed, labelled, and the same as the JSON's
        one, two = by_key["fresh"]["url"], by_key["two_items"]["url"]

        async with aiohttp.ClientSession(headers=BROWSER_HEADERS) as client:
            async with client.get(two) as page:
                text = await page.text()
                assert page.status == 200
                assert "Spring fee, Maya" in text and "$270.00" in text

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

        # The command-line hint works exactly as printed (it crashed without GATEWAY_DEMO=1).
        lines = [line.strip() for line in banner.splitlines()]
        hint = next(line for line in lines if line.endswith(f"links show {by_key['fresh']['id']}"))
        list_cmd, show_cmd = (part.strip() for part in hint.split("   /   "))
        listed = run_printed(banner, list_cmd)
        assert listed.returncode == 0, listed.stderr
        assert "Traceback" not in listed.stderr
        for link in by_key.values():
            assert link["id"] in listed.stdout
        shown = run_printed(banner, show_cmd)
        assert shown.returncode == 0, shown.stderr
        assert "Sam Rivera" in shown.stdout

        as_json = run_printed(banner, list_cmd + " --json")
        assert as_json.returncode == 0, as_json.stderr
        states = {row["id"]: row["state"] for row in json.loads(as_json.stdout)}
        assert states[by_key["fresh"]["id"]] == "paid"  # the admin sees the payment just made
    assert demo.returncode == 0  # a graceful stop on SIGTERM


@pytest.mark.slow
async def test_demo_issues_a_sample_link_in_every_state_through_the_real_flow(
    tmp_path: Path,
) -> None:
    async with DemoProcess(tmp_path / "demo.sqlite3") as demo:
        banner = await demo.read_until("Ctrl-C stops the demo")
        by_key = await samples(demo)
        headings = {
            "fresh": "Spring season fee",
            "two_items": "Spring fees, two players",
            "paid": "Already paid",
            "processing": "Payment processing",
            "failed": "Spring season fee",
            "expired": "This link has expired",
            "revoked": "This link was withdrawn",
            "renewed": "A new link was emailed to you",
        }
        async with aiohttp.ClientSession(headers=BROWSER_HEADERS) as client:
            for key in STATES:
                sample = by_key[key]
                label = re.escape(sample["label"])
                assert re.search(rf"^  {label} +{re.escape(sample['url'])}$", banner, re.M), key
                async with client.get(sample["url"]) as page:
                    assert page.status == sample["status"], key
                    assert headings[key] in await page.text(), key
            # The gallery links every page state in every language, each answering as it says.
            async with client.get(f"{demo.url}/_demo/gallery.json") as listed:
                gallery = await listed.json()
            assert [lang["code"] for lang in gallery["languages"]] == ["en", "es", "pt-BR", "fr"]
            for shown in gallery["pages"]:
                for code, url in shown["urls"].items():
                    async with client.get(demo.url + url) as page:
                        html = await page.text()
                        assert page.status == shown["status"], (shown["key"], code)
                        assert f'<html lang="{code}">' in html, (shown["key"], code)
            async with client.get(f"{demo.url}/_demo/gallery") as table:
                html = await table.text()
            for shown in gallery["pages"]:
                assert shown["label"] in html and shown["urls"]["pt-BR"] in html
            # A failed payment leaves the link payable: Pay starts a new attempt.
            async with client.post(by_key["failed"]["url"], allow_redirects=False) as pressed:
                assert pressed.status == 303
            # The emulator saw the flows: paid, processing, failed sessions completed (two
            # of them unpaid: bank debits), the revoked link's session expired at "Stripe".
            async with client.get(f"http://127.0.0.1:{demo.emulator_port}/_emulator/state") as s:
                state = await s.json()
        assert state["sessions"]["by_status"] == {"complete": 3, "expired": 1, "open": 1}
        assert state["payment_intents"]["by_status"] == {
            "succeeded": 1,
            "processing": 1,
            "requires_payment_method": 1,
        }
        # The orders moved on signed webhooks, recorded in the gateway's inbox.
        env = dict(
            demo.env, GATEWAY_DEMO="1", GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{demo.database}"
        )
        show = run_cli(["links", "show", by_key["failed"]["id"], "--json"], env)
        assert show.returncode == 0, show.stderr
        detail = json.loads(show.stdout)
        assert sorted(o["status"] for o in detail["orders"]) == ["failed", "pending"]


@pytest.mark.slow
async def test_a_restarted_demo_starts_fresh_instead_of_sending_payers_to_forgotten_sessions(
    tmp_path: Path,
) -> None:
    database = tmp_path / "demo.sqlite3"
    async with DemoProcess(database) as first:
        await first.read_until("Ctrl-C stops the demo")
        old = await samples(first)
        async with (
            aiohttp.ClientSession(headers=BROWSER_HEADERS) as client,
            client.post(old["fresh"]["url"], allow_redirects=False) as pressed,
        ):
            assert pressed.status == 303  # a pending attempt with a session at the emulator

    async with DemoProcess(database) as second:
        banner = await second.read_until("Ctrl-C stops the demo")
        assert f"kept as {database}.previous" in banner
        new = await samples(second)
        async with aiohttp.ClientSession(headers=BROWSER_HEADERS) as client:
            # The first run's link is gone with its database, so Pay cannot lead to a session
            # the new emulator never heard of (that was the emulator's 404).
            async with client.post(
                old["fresh"]["url"].replace(str(first.port), str(second.port)),
                allow_redirects=False,
            ) as pressed:
                assert pressed.status == 404
                assert "Location" not in pressed.headers
            # Every link the restarted demo has leads to a live checkout page.
            for key in ("fresh", "two_items", "failed"):
                async with client.post(new[key]["url"], allow_redirects=False) as pressed:
                    assert pressed.status == 303
                    async with client.get(pressed.headers["Location"]) as hosted:
                        assert hosted.status == 200
    assert (tmp_path / "demo.sqlite3.previous").exists()
