"""A gateway with admin keys and (optionally) SMTP pointed at a local aiosmtpd sink."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import unused_port

from gateway.app import create_app
from gateway.clock import FakeClock
from gateway.demo_mail import MailSink
from gateway.emulator import StripeEmulator, create_emulator_app
from tests.harness import WEBHOOK_SECRET, Harness, test_settings

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
    **checkout: Any,
) -> AdminHarness:
    clock = FakeClock()
    emulator = StripeEmulator(clock=clock, webhook_mode="manual", webhook_secret=WEBHOOK_SECRET)
    emulator_server = await aiohttp_server(create_emulator_app(emulator))
    emulator_url = str(emulator_server.make_url("")).rstrip("/")
    emulator.public_url = emulator_url
    port = unused_port()
    public = f"http://127.0.0.1:{port}"
    checkout.setdefault("contact_email", "treasurer@riverside.example")
    settings = test_settings(database_url, emulator_url, **checkout)
    settings = dataclasses.replace(
        settings,
        server=dataclasses.replace(settings.server, public_url=public),
        admin=dataclasses.replace(settings.admin, api_keys=api_keys),
    )
    if smtp_port is not None:
        settings = dataclasses.replace(
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
    emulator.webhooks.url = f"{public}/stripe/webhook"
    app = create_app(settings, clock=clock, background_tasks=False)
    client = await aiohttp_client(app, server_kwargs={"port": port, "host": "127.0.0.1"})
    return AdminHarness(clock, emulator, emulator_server, client)


@pytest.fixture
async def mail_sink() -> AsyncIterator[MailSink]:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives."""
    sink = MailSink()
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()
