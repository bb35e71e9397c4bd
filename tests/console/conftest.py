"""Fixtures for the console's tests: a gateway with a mail sink (invitations are emailed), on
SQLite and PostgreSQL (``database_url``), and logged-in people per role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.dev.demo_mail import MailSink
from tests.admin.support import mail_sink, start_admin_harness
from tests.console.support import ConsoleClient, ConsoleHarness

__all__ = ["mail_sink"]


@pytest.fixture
async def console(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
) -> AsyncIterator[ConsoleHarness]:
    harness = await start_admin_harness(
        aiohttp_server,
        aiohttp_client,
        database_url,
        smtp_port=mail_sink.port,
        harness=ConsoleHarness,
    )
    assert isinstance(harness, ConsoleHarness)
    try:
        yield harness
    finally:
        await harness.close_clients()


@pytest.fixture
async def admin(console: ConsoleHarness) -> ConsoleClient:
    return await console.as_role("admin")


@pytest.fixture
async def treasurer(console: ConsoleHarness) -> ConsoleClient:
    return await console.as_role("treasurer")


@pytest.fixture
async def viewer(console: ConsoleHarness) -> ConsoleClient:
    return await console.as_role("viewer")
