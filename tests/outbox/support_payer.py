"""What the payer-message tests share: a gateway wired to the emulator and a real SMTP sink,
and helpers that read the outbox and send what is due (no background task: the test sends)."""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa

from gateway.adapters.db.models import Link, OutboxMessage
from gateway.dev.demo_mail import MailSink, SentMail
from gateway.services.outbox import Delivery
from gateway.services.reconcile import ReconcileReport
from gateway.web.keys import DATABASE, OUTBOX, RECONCILER
from tests.admin.support import AdminHarness, start_admin_harness

PAYER = "parent@example.com"


async def payer_harness(
    aiohttp_server: Any,
    aiohttp_client: Any,
    database_url: str,
    sink: MailSink,
    *,
    email: dict[str, Any] | None = None,
    **checkout: Any,
) -> AdminHarness:
    return await start_admin_harness(
        aiohttp_server,
        aiohttp_client,
        database_url,
        smtp_port=sink.port,
        email=email,
        **checkout,
    )


async def rows(h: AdminHarness, kind: str | None = None) -> list[OutboxMessage]:
    query = sa.select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.id)
    if kind is not None:
        query = query.where(OutboxMessage.kind == kind)
    async with h.app[DATABASE].read() as session:
        return list((await session.execute(query)).scalars())


def payload(row: OutboxMessage) -> dict[str, Any]:
    found = json.loads(row.payload)
    assert isinstance(found, dict)
    return found


async def send_due(h: AdminHarness) -> list[Delivery]:
    report = await h.app[OUTBOX].send_due()
    return list(report.deliveries)


async def reconcile(h: AdminHarness) -> ReconcileReport:
    report = await h.app[RECONCILER].run()
    assert report.ran and not report.errors, report
    return report


async def link_row(h: AdminHarness, link_id: str) -> Link:
    async with h.app[DATABASE].read() as session:
        found = await session.get(Link, link_id)
    assert found is not None
    return found


def mails(sink: MailSink, address: str = PAYER) -> list[SentMail]:
    return sink.to(address)


def spaced(text: str) -> str:
    """Line breaks and runs of spaces as one space (a long sentence wraps in no part, but a
    test should not care where a template breaks its lines). No-break spaces stay: CLDR
    puts them in amounts and times."""
    return re.sub(r"[ \t\r\n]+", " ", text).strip()
