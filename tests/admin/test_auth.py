"""Admin keys: no key, a wrong key, a key removed from the config, or a wrong scheme is a 401
that changes nothing; a valid key's name is the actor in the audit trail."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, Link
from gateway.config import ConfigError
from gateway.web.admin_auth import AdminKeys, parse_keys
from gateway.web.keys import DATABASE
from tests.admin.support import ADMIN_KEY, OTHER_KEY, AdminHarness, start_admin_harness

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
