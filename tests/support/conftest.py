"""Fixtures for the support desk's tests: ``h``, a gateway with the emulator, admin keys and a
mail sink that really receives (so a receipt can be delivered); the console's people."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.dev.demo_mail import MailSink
from tests.admin.support import mail_sink, start_admin_harness
from tests.console.conftest import admin, console, treasurer, viewer
from tests.money.support import MoneyHarness

__all__ = ["admin", "console", "mail_sink", "treasurer", "viewer"]


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
) -> MoneyHarness:
    return await start_admin_harness(
        aiohttp_server,
        aiohttp_client,
        database_url,
        smtp_port=mail_sink.port,
        harness=MoneyHarness,
    )
