"""``/metrics`` moves as the pay flow runs, per app (no global registry), with no token in it;
``/healthz`` and ``/readyz`` (database and Stripe)."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.admin.support import AdminHarness, start_admin_harness
from tests.conftest import drop_pg_database
from tests.harness import session_id_from

SLACKBOT = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}


async def scrape(h: AdminHarness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await h.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, database_url: str) -> AdminHarness:
    return await start_admin_harness(aiohttp_server, aiohttp_client, database_url)


class TestCounters:
    async def test_counters_follow_the_pay_flow(self, h: AdminHarness) -> None:
        link = await h.issue()
        before = await scrape(h)
        assert value(before, "gateway_pages_total", kind="confirm", status="200") == 0

        assert (await h.get(link)).status == 200
        assert (await h.get(link, headers=SLACKBOT)).status == 200
        first = await h.post(link)
        second = await h.post(link)
        assert session_id_from(first.headers["Location"]) == session_id_from(
            second.headers["Location"]
        )
        h.emulator.pay(session_id_from(first.headers["Location"]))
        await h.emulator.deliver_webhooks()
        assert (await h.post(link)).status == 409
        assert (await h.get(link)).status == 409

        m = await scrape(h)
        assert value(m, "gateway_pages_total", kind="confirm", status="200") == 1
        assert value(m, "gateway_pages_total", kind="preview", status="200") == 1
        assert value(m, "gateway_pages_total", kind="paid", status="409") == 2
        assert value(m, "gateway_pages_total", kind="redirect", status="303") == 2
        (bot,) = [k for k in m if k[0] == "gateway_bot_previews_total"]
        assert m[bot] == 1
        assert value(m, "gateway_checkout_sessions_total", kind="created") == 1
        assert value(m, "gateway_checkout_sessions_total", kind="reused") == 1
        assert value(m, "gateway_confirms_total", outcome="redirect") == 2
        assert value(m, "gateway_confirms_total", outcome="paid_block") == 1
        assert value(m, "gateway_paid_blocks_total", state="paid") == 1
        assert (
            value(m, "gateway_webhooks_total", type="checkout.session.completed", outcome="applied")
            == 1
        )
        assert (
            value(m, "gateway_http_requests_total", route="confirm", method="POST", status="303")
            == 2
        )
        assert value(m, "gateway_http_request_duration_seconds_count", route="pay") == 3

    async def test_a_stale_session_replaced_is_counted_as_replaced(self, h: AdminHarness) -> None:
        link = await h.issue()
        assert (await h.post(link)).status == 303
        h.clock.advance(31 * 60)
        assert (await h.post(link)).status == 303
        m = await scrape(h)
        assert value(m, "gateway_checkout_sessions_total", kind="created") == 1
        assert value(m, "gateway_checkout_sessions_total", kind="replaced") == 1

    async def test_stripe_errors_and_503s_are_counted(self, h: AdminHarness) -> None:
        link = await h.issue()
        h.emulator.faults.update({"fail_next": 5})
        response = await h.post(link)
        assert response.status == 503
        m = await scrape(h)
        assert value(m, "gateway_stripe_errors_total", kind="unavailable") == 1
        assert value(m, "gateway_confirms_total", outcome="stripe_error") == 1
        assert (
            value(m, "gateway_http_requests_total", route="confirm", method="POST", status="503")
            == 1
        )

    async def test_unsigned_webhooks_cannot_choose_a_label(self, h: AdminHarness) -> None:
        response = await h.client.post(
            "/stripe/webhook",
            data=b'{"id": "evt_x", "type": "attacker.chosen.type", "data": {"object": {}}}',
            headers={"Stripe-Signature": "t=1,v1=00"},
        )
        assert response.status == 400
        m = await scrape(h)
        assert (
            value(m, "gateway_webhooks_total", type="unverified", outcome="signature_invalid") == 1
        )
        assert not any("attacker" in str(k) for k in m)

    async def test_no_token_or_link_id_ever_becomes_a_label(self, h: AdminHarness) -> None:
        link = await h.issue()
        await h.get(link)
        await h.get(link.token[:-3])
        await h.post(link)
        text = await (await h.client.get("/metrics")).text()
        assert link.token not in text and link.id not in text and "lk_" not in text

    async def test_each_app_has_its_own_registry(
        self, h: AdminHarness, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        other = await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url)
        await h.get(await h.issue())
        m = await scrape(other)
        assert value(m, "gateway_pages_total", kind="confirm", status="200") == 0


class TestHealth:
    async def test_healthz_and_readyz_when_all_is_well(self, h: AdminHarness) -> None:
        assert (await h.client.get("/healthz")).status == 200
        response = await h.client.get("/readyz")
        assert response.status == 200
        body = await response.json()
        assert body["ready"] is True
        assert body["checks"] == {"database": "ok", "stripe": "ok"}
        assert body["stripe_checked"]["age_seconds"] == 0

    async def test_readyz_fails_when_stripe_is_unreachable(self, h: AdminHarness) -> None:
        h.emulator.faults.update({"fail_next": 100})
        response = await h.client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["stripe"].startswith("error")
        assert (await h.client.get("/healthz")).status == 200


async def test_readyz_fails_when_the_database_is_gone(
    aiohttp_server: Any, aiohttp_client: Any, backend: str, tmp_path: Path
) -> None:
    from tests.conftest import create_pg_database

    if backend == "sqlite":
        directory = tmp_path / "db"
        url = f"sqlite+aiosqlite:///{directory}/gateway.sqlite3"
    else:
        url = await create_pg_database()
    h = await start_admin_harness(aiohttp_server, aiohttp_client, url)
    assert (await h.client.get("/readyz")).status == 200
    from gateway.web.keys import DATABASE

    await h.app[DATABASE].engine.dispose()
    if backend == "sqlite":
        shutil.rmtree(directory)  # no file, no directory to create one in
    else:
        await drop_pg_database(url)
    threads_before = set(threading.enumerate())
    response = await h.client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["ready"] is False and body["checks"]["database"].startswith("error")
    assert (await h.client.get("/healthz")).status == 200
    # aiosqlite answers a failed connect, then stops that connection's thread with a future it
    # does not await: let each such thread finish while this test's loop can still take its
    # answer (once the loop is closed, the thread's call_soon_threadsafe raises in the thread).
    for thread in set(threading.enumerate()) - threads_before:
        if "_connection_worker_thread" not in thread.name:  # aiosqlite's thread, by its target
            continue
        await asyncio.to_thread(thread.join, 10)
        assert not thread.is_alive(), thread
