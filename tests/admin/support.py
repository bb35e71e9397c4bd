"""A gateway with admin keys and (optionally) SMTP pointed at a local aiosmtpd sink."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse

from gateway.config import Settings
from gateway.dev.demo_mail import MailSink
from tests.harness import Harness, start_harness

ADMIN_KEY = "adm_treasurer_4f1c9e2a7b3d5e6f"
OTHER_KEY = "adm_auditor_0a9b8c7d6e5f4a3b"
ADMIN_KEYS = (
    # One stored as a SHA-256 digest (the recommended form), one as a plain key.
    "treasurer:" + hashlib.sha256(ADMIN_KEY.encode()).hexdigest(),
    "auditor:" + OTHER_KEY,
)
FROM_ADDRESS = "treasurer@riverside.example"


class AdminHarness(Harness):
    def auth(self, key: str = ADMIN_KEY) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def api(
        self, method: str, path: str, *, key: str | None = ADMIN_KEY, **kwargs: Any
    ) -> ClientResponse:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers.setdefault("Authorization", f"Bearer {key}")
        return await self.client.request(method, "/admin/api" + path, headers=headers, **kwargs)


async def start_admin_harness(
    aiohttp_server: Any,
    aiohttp_client: Any,
    database_url: str,
    *,
    smtp_port: int | None = None,
    api_keys: tuple[str, ...] = ADMIN_KEYS,
    email: dict[str, Any] | None = None,
    harness: type[AdminHarness] = AdminHarness,
    admin: dict[str, Any] | None = None,
    **checkout: Any,
) -> AdminHarness:
    def configure(settings: Settings) -> Settings:
        settings = dataclasses.replace(
            settings, admin=dataclasses.replace(settings.admin, api_keys=api_keys, **(admin or {}))
        )
        if smtp_port is None:
            return settings
        return dataclasses.replace(
            settings,
            email=dataclasses.replace(
                settings.email,
                host="127.0.0.1",
                port=smtp_port,
                from_address=FROM_ADDRESS,
                timeout=5.0,
                **(email or {}),
            ),
        )

    checkout.setdefault("contact_email", "treasurer@riverside.example")
    return await start_harness(
        aiohttp_server,
        aiohttp_client,
        database_url,
        harness=harness,
        configure=configure,
        **checkout,
    )


@pytest.fixture
async def mail_sink() -> AsyncIterator[MailSink]:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""
    sink = MailSink()
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()
