"""What the outbox tests share: a database, an SMTP sink that can refuse, and a composer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.adapters.db.engine import Database, create_database
from gateway.adapters.db.migrate import upgrade
from gateway.adapters.db.models import OutboxMessage
from gateway.adapters.mail import SmtpMailer
from gateway.config import Duration, EmailSettings
from gateway.dev.clock import FakeClock
from gateway.dev.demo_mail import MailSink
from gateway.domain.outbox import Kind
from gateway.services.outbox import Composer, Defer, Outbox, Skip


class RefusingSink(MailSink):
    """The demo's sink, refusing addresses that ask for it: ``…refused@`` for good (550),
    ``…later@`` for now (451)."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if "refused@" in address:
            return "550 5.1.1 no such mailbox"
        if "later@" in address:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def message_ids(self) -> list[str]:
        return [str(sent.message["Message-ID"]) for sent in self.messages]


@pytest.fixture
async def sink() -> AsyncIterator[RefusingSink]:
    server = RefusingSink()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = create_database(database_url)
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


class PayloadComposer:
    """Builds a message from the row's payload; ``{"skip": …}`` and ``{"defer": seconds}`` and
    ``{"boom": true}`` ask for the other answers."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls = 0

    async def compose(self, message: OutboxMessage) -> EmailMessage | Skip | Defer:
        self.calls += 1
        payload = json.loads(message.payload)
        if "skip" in payload:
            return Skip(payload["skip"])
        if "defer" in payload:
            now = datetime.fromtimestamp(self.clock.now(), UTC)
            return Defer(now + timedelta(seconds=payload["defer"]), "outside sending hours")
        if payload.get("boom"):
            raise RuntimeError("a composer bug")
        built = EmailMessage()
        built["Subject"] = payload.get("subject", "hello")
        built["From"] = "club@example.com"
        built["To"] = message.recipient
        built.set_content(payload.get("body", "hello"))
        return built


def outbox_for(db: Database, clock: FakeClock, port: int, composer: Composer) -> Outbox:
    mailer = SmtpMailer(
        EmailSettings(
            host="127.0.0.1", port=port, from_address="club@example.com", timeout=Duration(5.0)
        )
    )
    return Outbox(
        db,
        clock,
        mailer=mailer,
        composers={kind.value: composer for kind in Kind},
        domain="example.com",
    )
