"""Fixtures shared by the email tests: the SMTP sink, and a gateway that sends through it."""

from typing import Any

import pytest

from gateway.dev.demo_mail import MailSink
from tests.admin.support import AdminHarness, mail_sink, start_admin_harness

__all__ = ["h", "mail_sink"]


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, mail_sink: MailSink
) -> AdminHarness:
    return await start_admin_harness(
        aiohttp_server, aiohttp_client, database_url, smtp_port=mail_sink.port
    )
