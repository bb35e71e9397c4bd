"""``/readyz`` spends at most one Stripe call per freshness window however often it is asked, and
says how old that answer is; ``/metrics`` can be closed to all but listed networks or a bearer
token (issue 10 item 11)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from typing import Any

import pytest

from gateway.config import ConfigError, Settings, load_settings
from gateway.dev.clock import FakeClock
from gateway.web.health import STRIPE_FRESH_FOR, STRIPE_RETRY_AFTER, SharedCheck
from tests.harness import Harness, start_harness

METRICS_TOKEN = "prom_scraper_9d8c7b6a5f4e3d2c1b0a"
METRICS_DIGEST = hashlib.sha256(METRICS_TOKEN.encode()).hexdigest()


def stripe_probes(h: Harness) -> int:
    return sum(1 for method, path, _ in h.emulator.request_log if method == "GET")


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str) -> Harness:
    return await start_harness(aiohttp_server, aiohttp_client, sqlite_url)


class TestReadyzSpendsLittleOfStripe:
    async def test_a_hundred_concurrent_probes_make_one_stripe_call(self, h: Harness) -> None:
        # A slow Stripe: without single flight every probe arriving meanwhile would call it too.
        h.emulator.faults.update({"latency": 0.5})
        responses = await asyncio.gather(*(h.client.get("/readyz") for _ in range(100)))
        assert [r.status for r in responses] == [200] * 100
        assert stripe_probes(h) == 1

    async def test_the_answer_is_reused_while_fresh_and_says_how_old_it_is(
        self, h: Harness
    ) -> None:
        first = await (await h.client.get("/readyz")).json()
        assert first["stripe_checked"]["age_seconds"] == 0
        h.clock.advance(STRIPE_FRESH_FOR - 5)
        for _ in range(50):
            again = await (await h.client.get("/readyz")).json()
        assert again["stripe_checked"]["at"] == first["stripe_checked"]["at"]
        assert again["stripe_checked"]["age_seconds"] == STRIPE_FRESH_FOR - 5
        assert stripe_probes(h) == 1
        h.clock.advance(5)
        fresh = await (await h.client.get("/readyz")).json()
        assert fresh["stripe_checked"]["age_seconds"] == 0
        assert stripe_probes(h) == 2

    async def test_a_failure_is_retried_sooner_and_recovery_shows(self, h: Harness) -> None:
        h.emulator.faults.update({"fail_next": 1})
        down = await h.client.get("/readyz")
        assert down.status == 503
        assert (await down.json())["checks"]["stripe"].startswith("error")
        h.clock.advance(STRIPE_RETRY_AFTER - 1)
        assert (await h.client.get("/readyz")).status == 503  # still the cached failure
        assert stripe_probes(h) == 1
        h.clock.advance(1)
        assert (await h.client.get("/readyz")).status == 200
        assert stripe_probes(h) == 2


class TestSharedCheck:
    async def test_concurrent_callers_share_one_run_and_a_leaving_caller_does_not_cancel_it(
        self,
    ) -> None:
        entered, release = asyncio.Event(), asyncio.Event()
        calls = 0

        async def probe() -> None:
            nonlocal calls
            calls += 1
            entered.set()
            await release.wait()

        check = SharedCheck(probe, FakeClock())
        callers = [asyncio.create_task(check.result()) for _ in range(100)]
        await entered.wait()  # every caller has asked by now: tasks run in creation order
        callers[0].cancel()
        release.set()
        results = await asyncio.gather(*callers[1:])
        assert calls == 1 and check.runs == 1
        assert {r.status for r in results} == {"ok"} and len({id(r) for r in results}) == 1


async def start_guarded(
    aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str, **changes: Any
) -> Harness:
    def configure(settings: Settings) -> Settings:
        server = dataclasses.replace(
            settings.server, trusted_proxies=changes.pop("trusted_proxies", ())
        )
        metrics = dataclasses.replace(settings.metrics, **changes)
        return dataclasses.replace(settings, server=server, metrics=metrics)

    return await start_harness(aiohttp_server, aiohttp_client, sqlite_url, configure=configure)


class TestMetricsGuard:
    async def test_open_when_nothing_is_configured(self, h: Harness) -> None:
        assert (await h.client.get("/metrics")).status == 200

    async def test_allow_list_admits_listed_networks_only(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        closed = await start_guarded(
            aiohttp_server, aiohttp_client, sqlite_url, allow=("10.0.0.0/8", "2001:db8::/32")
        )
        response = await closed.client.get("/metrics")
        assert response.status == 403
        assert "gateway_" not in await response.text()
        # Not behind a configured proxy: X-Forwarded-For is anyone's to write, and ignored.
        spoofed = await closed.client.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
        assert spoofed.status == 403
        opened = await start_guarded(
            aiohttp_server, aiohttp_client, sqlite_url, allow=("127.0.0.0/8",)
        )
        assert (await opened.client.get("/metrics")).status == 200

    async def test_behind_a_trusted_proxy_the_forwarded_client_counts(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_guarded(
            aiohttp_server,
            aiohttp_client,
            sqlite_url,
            allow=("10.0.0.0/8",),
            trusted_proxies=("127.0.0.1",),
        )

        async def status(forwarded: str) -> int:
            response = await h.client.get("/metrics", headers={"X-Forwarded-For": forwarded})
            return response.status

        assert await status("10.1.2.3") == 200
        # The proxy appended the real peer last; what the sender wrote before it is not believed.
        assert await status("10.1.2.3, 192.0.2.7") == 403
        assert await status("192.0.2.7, 10.1.2.3") == 200
        assert await status("not-an-address") == 403  # falls back to the proxy itself

    async def test_bearer_token(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_guarded(
            aiohttp_server, aiohttp_client, sqlite_url, bearer_token_sha256=METRICS_DIGEST
        )
        missing = await h.client.get("/metrics")
        assert missing.status == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        for wrong in (f"Bearer {METRICS_TOKEN}x", f"Basic {METRICS_TOKEN}", METRICS_DIGEST):
            response = await h.client.get("/metrics", headers={"Authorization": wrong})
            assert response.status == 401, wrong
        right = await h.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert right.status == 200
        assert "gateway_http_requests_total" in await right.text()

    async def test_both_guards_must_pass(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_guarded(
            aiohttp_server,
            aiohttp_client,
            sqlite_url,
            allow=("10.0.0.0/8",),
            bearer_token_sha256=METRICS_DIGEST,
        )
        auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        assert (await h.client.get("/metrics", headers=auth)).status == 403


class TestConfig:
    def test_guard_settings_from_the_environment(self) -> None:
        settings = load_settings(
            path=None,
            env={
                "GATEWAY_METRICS_ALLOW": "10.0.0.0/8, 192.168.1.7",
                "GATEWAY_METRICS_BEARER_TOKEN_SHA256": METRICS_DIGEST,
                "GATEWAY_SERVER_TRUSTED_PROXIES": "127.0.0.1",
            },
        )
        assert settings.metrics.allow == ("10.0.0.0/8", "192.168.1.7")
        assert settings.server.trusted_proxies == ("127.0.0.1",)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("GATEWAY_METRICS_ALLOW", "10.0.0.0/33"),
            ("GATEWAY_METRICS_ALLOW", "example.org"),
            ("GATEWAY_SERVER_TRUSTED_PROXIES", "10.0.0.1/8x"),
            ("GATEWAY_METRICS_BEARER_TOKEN_SHA256", "not-a-digest"),
        ],
    )
    def test_a_wrong_value_stops_the_start_naming_the_key(self, name: str, value: str) -> None:
        with pytest.raises(ConfigError) as caught:
            load_settings(path=None, env={name: value})
        key = name.removeprefix("GATEWAY_").lower().replace("_", ".", 1)
        assert key in str(caught.value)
