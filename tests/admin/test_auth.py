"""Admin keys: no key, a wrong key, a key removed from the config, or a wrong scheme is a 401
that changes nothing; a valid key's name is the actor in the audit trail."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from multidict import CIMultiDict

from gateway.adapters.db.models import AuditEntry, Link
from gateway.config import ConfigError, Settings
from gateway.dev.clock import FakeClock
from gateway.web.admin_auth import LOG_LINES_PER_MINUTE, AdminKeys, FailureBrake, parse_keys
from gateway.web.clients import ClientResolver
from gateway.web.keys import DATABASE, SETTINGS
from tests.admin.support import (
    ADMIN_KEY,
    ADMIN_KEYS,
    OTHER_KEY,
    AdminHarness,
    start_admin_harness,
)
from tests.harness import start_harness

NEW_LINK = {"email": "sam@example.com", "name": "Sam Rivera", "items": ["Fee=10.00"]}


def endpoints(link_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", "/links", {"json": NEW_LINK}),
        ("POST", "/links/bulk", {"json": [{**NEW_LINK, "ref": "r/1"}]}),
        ("GET", "/links", {}),
        ("GET", f"/links/{link_id}", {}),
        ("POST", f"/links/{link_id}/revoke", {"json": {"reason": "x"}}),
        ("POST", f"/links/{link_id}/resend", {}),
        ("GET", "/orders", {}),
        ("POST", "/reconcile", {}),
    ]


async def snapshot(h: AdminHarness) -> tuple[int, int, list[Any]]:
    async with h.app[DATABASE].read() as session:
        links = (await session.execute(sa.select(sa.func.count()).select_from(Link))).scalar_one()
        entries = (
            await session.execute(sa.select(sa.func.count()).select_from(AuditEntry))
        ).scalar_one()
        revoked = list((await session.execute(sa.select(Link.revoked_at))).scalars())
    return links, entries, revoked


class TestRefused:
    @pytest.mark.parametrize(
        "authorization",
        [
            None,
            "Bearer wrong-key",
            f"Bearer {ADMIN_KEY}x",
            f"Basic {ADMIN_KEY}",
            f"{ADMIN_KEY}",
            "Bearer ",
            f"Bearer {hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}",  # the digest is no key
        ],
    )
    async def test_every_endpoint_is_401_and_changes_nothing(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str, authorization: str | None
    ) -> None:
        h = await start_admin_harness(aiohttp_server, aiohttp_client, database_url)
        link = await h.issue()
        before = await snapshot(h)
        headers = {"Authorization": authorization} if authorization is not None else {}
        for method, path, kwargs in endpoints(link.id):
            response = await h.api(method, path, key=None, headers=headers, **kwargs)
            assert response.status == 401, (method, path, await response.text())
            body = await response.json()
            assert body["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert await snapshot(h) == before
        assert h.emulator.request_log == []  # not even the reconciler ran

    async def test_a_key_removed_from_the_config_no_longer_works(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str
    ) -> None:
        # The auditor's key worked while configured...
        h = await start_admin_harness(aiohttp_server, aiohttp_client, database_url)
        assert (await h.api("GET", "/links", key=OTHER_KEY)).status == 200
        # ...and the same database served by a gateway without it refuses it.
        only_treasurer = ("treasurer:" + hashlib.sha256(ADMIN_KEY.encode()).hexdigest(),)
        h2 = await start_admin_harness(
            aiohttp_server, aiohttp_client, database_url, api_keys=only_treasurer
        )
        link = await h2.issue()
        before = await snapshot(h2)
        for method, path, kwargs in endpoints(link.id):
            response = await h2.api(method, path, key=OTHER_KEY, **kwargs)
            assert response.status == 401, (method, path)
        assert await snapshot(h2) == before
        assert (await h2.api("GET", "/links", key=ADMIN_KEY)).status == 200

    async def test_no_keys_configured_means_the_api_is_closed(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url, api_keys=())
        assert (await h.api("GET", "/links", key=ADMIN_KEY)).status == 401
        assert (await h.api("POST", "/links", key="", json=NEW_LINK)).status == 401


class TestAccepted:
    async def test_the_key_name_is_the_actor(
        self, aiohttp_server: Any, aiohttp_client: Any, database_url: str
    ) -> None:
        h = await start_admin_harness(aiohttp_server, aiohttp_client, database_url)
        created = await (await h.api("POST", "/links", json=NEW_LINK)).json()
        await h.api("POST", f"/links/{created['id']}/revoke", key=OTHER_KEY, json={})
        detail = await (await h.api("GET", f"/links/{created['id']}")).json()
        actors = [(a["action"], a["actor"]) for a in detail["audit"]]
        assert actors == [("link.issued", "admin:treasurer"), ("link.revoked", "admin:auditor")]
        assert detail["created_by"] == "admin:treasurer"

    async def test_the_openapi_document_needs_no_key(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url)
        response = await h.api("GET", "/openapi.json", key=None)
        assert response.status == 200
        assert (await response.json())["openapi"].startswith("3.")


class TestKeyParsing:
    def test_digest_and_plain_entries_both_verify(self) -> None:
        keys = AdminKeys(
            parse_keys(["a:" + hashlib.sha256(b"alpha").hexdigest(), "b:beta-plain-key"])
        )
        assert keys.actor_for("Bearer alpha") == "admin:a"
        assert keys.actor_for("bearer beta-plain-key") == "admin:b"
        assert keys.actor_for("Bearer beta") is None
        assert keys.actor_for(None) is None

    @pytest.mark.parametrize("entry", ["nokey", ":secret", "bad name:secret", "a:"])
    def test_malformed_entries_stop_the_start(self, entry: str) -> None:
        with pytest.raises(ConfigError, match=r"admin\.api_keys"):
            parse_keys([entry])

    def test_two_keys_with_one_name_are_refused(self) -> None:
        with pytest.raises(ConfigError, match="same name"):
            parse_keys(["a:one", "a:two"])

    @pytest.mark.parametrize(
        "entry",
        [
            "treasurer:<sha256 hex of the key>",
            "treasurer:<key>",
            "treasurer:" + hashlib.sha256(b"test").hexdigest(),  # the README's old example
        ],
    )
    def test_placeholders_and_published_examples_stop_the_start(self, entry: str) -> None:
        with pytest.raises(ConfigError, match=r"admin\.api_keys: the key of 'treasurer'"):
            parse_keys([entry])

    def test_the_readmes_example_cannot_be_used_as_it_is(self) -> None:
        readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
        examples = re.findall(r"^api_keys = \[(.*?)\]", readme, flags=re.M)
        assert examples
        for example in examples:
            entries = [e.strip().strip('"') for e in example.split(",")]
            with pytest.raises(ConfigError):
                parse_keys(entries)


# --- the brake on refused keys (issue 10 item 8) ---------------------------------------------


async def start_behind_proxy(
    aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str, trusted_proxies: tuple[str, ...]
) -> AdminHarness:
    def configure(settings: Settings) -> Settings:
        server = dataclasses.replace(settings.server, trusted_proxies=trusted_proxies)
        admin = dataclasses.replace(settings.admin, api_keys=ADMIN_KEYS)
        return dataclasses.replace(settings, server=server, admin=admin)

    return await start_harness(
        aiohttp_server, aiohttp_client, sqlite_url, harness=AdminHarness, configure=configure
    )


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "admin requests refused"]


class TestBrake:
    async def test_repeated_failures_get_429_with_retry_after_even_for_the_right_key(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url)
        link = await h.issue()
        before = await snapshot(h)
        settings = h.app[SETTINGS].admin
        for _ in range(settings.max_failures):
            assert (await h.api("GET", "/links", key="guess")).status == 401
        h.clock.advance(10)
        for key in ("guess", ADMIN_KEY):  # a right key now would tell the guesser it is right
            response = await h.api("POST", f"/links/{link.id}/revoke", key=key, json={})
            assert response.status == 429
            assert (await response.json())["error"]["code"] == "too_many_failures"
            retry = int(response.headers["Retry-After"])
            assert retry == settings.failure_window - 10
        assert await snapshot(h) == before
        assert h.emulator.request_log == []
        metrics = await (await h.client.get("/metrics")).text()
        assert 'gateway_admin_requests_total{outcome="throttled"} 2.0' in metrics
        # When the window is over, the right key works again.
        h.clock.advance(retry)
        assert (await h.api("GET", "/links")).status == 200
        assert (await h.api("GET", "/links", key="guess")).status == 401

    async def test_openapi_stays_public_and_uncounted(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url)
        for _ in range(30):
            assert (await h.api("GET", "/openapi.json", key="guess")).status == 200
        assert (await h.api("GET", "/links")).status == 200

    async def test_a_flood_logs_one_line_a_minute_with_a_count(
        self,
        aiohttp_server: Any,
        aiohttp_client: Any,
        sqlite_url: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        h = await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url)
        caplog.set_level(logging.WARNING)
        for _ in range(200):
            await h.api("GET", "/links", key="guess")
        lines = refusal_lines(caplog)
        assert len(lines) == 1  # the first refusal, at once
        assert lines[0].refused == 1 and lines[0].client == "127.0.0.1"  # type: ignore[attr-defined]
        h.clock.advance(60)
        await h.api("GET", "/links", key="guess")
        lines = refusal_lines(caplog)
        assert len(lines) == 2
        # Everything since the first line: 9 more refusals, then 190 throttled, then this one
        # (a new window: refused again).
        assert lines[1].refused == 9 + 1  # type: ignore[attr-defined]
        assert lines[1].throttled == 190  # type: ignore[attr-defined]
        assert not any("guess" in r.getMessage() or "guess" in str(r.__dict__) for r in lines)

    async def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url)
        for i in range(h.app[SETTINGS].admin.max_failures):
            forwarded = {"X-Forwarded-For": f"192.0.2.{i}"}
            await h.api("GET", "/links", key="guess", headers=forwarded)
        other = {"X-Forwarded-For": "198.51.100.1"}
        assert (await h.api("GET", "/links", headers=other)).status == 429

    async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_brake(
        self, aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str
    ) -> None:
        h = await start_behind_proxy(
            aiohttp_server, aiohttp_client, sqlite_url, trusted_proxies=("127.0.0.1/32",)
        )
        attacker = {"X-Forwarded-For": "192.0.2.66"}
        for _ in range(h.app[SETTINGS].admin.max_failures):
            await h.api("GET", "/links", key="guess", headers=attacker)
        assert (await h.api("GET", "/links", headers=attacker)).status == 429
        # What the attacker writes left of the proxy's own entry changes nothing...
        spoofed = {"X-Forwarded-For": "203.0.113.9, 192.0.2.66"}
        assert (await h.api("GET", "/links", headers=spoofed)).status == 429
        # ...and the treasurer, elsewhere, is not locked out by it.
        treasurer = {"X-Forwarded-For": "198.51.100.7"}
        assert (await h.api("GET", "/links", headers=treasurer)).status == 200


class TestBrakeState:
    def test_memory_is_bounded_however_many_clients_an_attacker_has(self) -> None:
        brake = FailureBrake(FakeClock(), max_failures=3, max_clients=1000)
        for i in range(50_000):
            brake.refused(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "admin_list_links")
        assert len(brake) == 1000
        # The most recent ones are the ones kept, and still counted.
        for _ in range(2):
            brake.refused("10.0.195.79", "admin_list_links")
        assert brake.retry_after("10.0.195.79") is not None

    def test_log_lines_are_bounded_in_all_and_forgotten_counts_are_reported(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING)
        clock = FakeClock()
        brake = FailureBrake(clock, max_clients=50)
        for i in range(5000):
            brake.refused(f"client-{i}", None)
        lines = refusal_lines(caplog)
        assert len(lines) == LOG_LINES_PER_MINUTE
        clock.advance(60)
        brake.refused("client-4999", None)
        last = refusal_lines(caplog)[-1]
        assert last.client == "client-4999" and last.refused == 2  # type: ignore[attr-defined]
        # Clients forgotten (50 are remembered) before a line could be written for them.
        forgotten = 5000 - LOG_LINES_PER_MINUTE - 50
        assert last.refused_by_forgotten_clients == forgotten  # type: ignore[attr-defined]

    def test_a_window_is_measured_on_the_injected_clock(self) -> None:
        clock = FakeClock()
        brake = FailureBrake(clock, max_failures=2, window=60)
        brake.refused("c", None)
        clock.advance(59)
        brake.refused("c", None)
        assert brake.retry_after("c") == 1
        clock.advance(1)
        assert brake.retry_after("c") is None
        brake.refused("c", None)  # a new window: one failure so far
        assert brake.retry_after("c") is None


class FakeRequest:
    def __init__(self, remote: str, forwarded: str | None = None) -> None:
        self.remote = remote
        self.headers = CIMultiDict({"X-Forwarded-For": forwarded} if forwarded else {})


class TestClientKey:
    @pytest.mark.parametrize(
        ("remote", "forwarded", "trusted", "key"),
        [
            ("192.0.2.1", "10.9.9.9", (), "192.0.2.1"),
            ("::ffff:192.0.2.1", None, (), "192.0.2.1"),
            ("2001:db8:1:2:aaaa::1", None, (), "2001:db8:1:2::/64"),
            ("2001:db8:1:2:bbbb::9", None, (), "2001:db8:1:2::/64"),
            ("10.0.0.5", "192.0.2.1", ("10.0.0.0/8",), "192.0.2.1"),
            ("10.0.0.5", "192.0.2.1, 10.0.0.4", ("10.0.0.0/8",), "192.0.2.1"),
            ("10.0.0.5", "192.0.2.9, 192.0.2.1", ("10.0.0.0/8",), "192.0.2.1"),
            ("10.0.0.5", "192.0.2.1:5678", ("10.0.0.0/8",), "192.0.2.1"),
            ("10.0.0.5", "[2001:db8::7]:443", ("10.0.0.0/8",), "2001:db8::/64"),
            ("10.0.0.5", "unknown", ("10.0.0.0/8",), "10.0.0.5"),
            ("10.0.0.5", None, ("10.0.0.0/8",), "10.0.0.5"),
            ("", None, (), "unknown"),
        ],
    )
    def test_who_the_client_is(
        self, remote: str, forwarded: str | None, trusted: tuple[str, ...], key: str
    ) -> None:
        request: Any = FakeRequest(remote, forwarded)
        assert ClientResolver(trusted).key(request) == key
