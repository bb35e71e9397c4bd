"""What the reminder tests share: a gateway with SMTP on the refusing sink, admin keys, a time
zone and a reminder schedule, a second replica's scheduler and sender on the same database, and
a clock set in local time."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, Link, OutboxMessage
from gateway.config import Settings
from gateway.dev.demo_mail import MailSink, SentMail
from gateway.domain.links import validate_new_link
from gateway.domain.outbox import Kind
from gateway.services.links import IssuedLink
from gateway.services.outbox import Outbox
from gateway.services.reminders import Reminders
from gateway.web.keys import CLOCK, DATABASE, LINKS, OUTBOX, REMINDERS, SETTINGS
from gateway.wiring import build_services
from tests.admin.support import ADMIN_KEYS, FROM_ADDRESS, AdminHarness
from tests.harness import start_harness

PARENT = "parent@example.com"


class ReminderHarness(AdminHarness):
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.app[SETTINGS].checkout.timezone)

    @property
    def reminders(self) -> Reminders:
        return self.app[REMINDERS]

    @property
    def outbox(self) -> Outbox:
        return self.app[OUTBOX]

    def set_local(self, y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> None:
        """Move the shared clock to a local wall-clock time of the organisation's zone."""
        self.clock.set(datetime(y, m, d, hh, mm, tzinfo=self.zone).timestamp())

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.zone)

    async def issue_due(
        self,
        due: str | None,
        reminders: str | None = None,
        *,
        ref: str = "2027/p1",
        email: str = PARENT,
        valid_for: float = 60 * 86400,
        locale: str | None = None,
    ) -> IssuedLink:
        new = validate_new_link(
            email=email,
            name="Sam Rivera",
            description="Spring season",
            currency="usd",
            items=["Spring fee=150.00"],
            ref=ref,
            valid_for=valid_for,
            max_valid_for=366 * 86400,
            locale=locale,
            due=due,
            reminders=reminders,
            now=datetime.fromtimestamp(self.app[CLOCK].now(), UTC),
            timezone=self.app[SETTINGS].checkout.timezone,
        )
        return await self.app[LINKS].issue(new, actor="test")

    async def tick(self, *replicas: tuple[Reminders, Outbox]) -> None:
        """One scheduler run and one sender run, on this app and on every other replica given."""
        for reminders, outbox in ((self.reminders, self.outbox), *replicas):
            await reminders.schedule()
            await outbox.send_due()

    async def rows(self, link: IssuedLink | None = None) -> list[OutboxMessage]:
        query = sa.select(OutboxMessage).where(OutboxMessage.kind == Kind.REMINDER.value)
        if link is not None:
            query = query.where(OutboxMessage.link_id == link.id)
        async with self.app[DATABASE].read() as session:
            found = await session.execute(query.order_by(OutboxMessage.subject))
            return list(found.scalars())

    async def link(self, link: IssuedLink) -> Link:
        async with self.app[DATABASE].read() as session:
            found = await session.get(Link, link.id)
            assert found is not None
            return found

    async def entries(self, link: IssuedLink) -> list[AuditEntry]:
        return await self.audit(link)

    @asynccontextmanager
    async def replica(self) -> AsyncIterator[tuple[Reminders, Outbox]]:
        """Another `serve` on the same database and clock: its own scheduler and sender."""
        async with aiohttp.ClientSession() as http:
            services = build_services(self.app[SETTINGS], self.app[CLOCK], self.app[DATABASE], http)
            yield services.reminders, services.outbox


async def start_reminder_harness(
    aiohttp_server: Any,
    aiohttp_client: Any,
    database_url: str,
    smtp_port: int,
    *,
    timezone: str = "Europe/Lisbon",
    schedule: str = "-3,1,7",
    paused: bool = False,
) -> ReminderHarness:
    def configure(settings: Settings) -> Settings:
        return dataclasses.replace(
            settings,
            admin=dataclasses.replace(settings.admin, api_keys=ADMIN_KEYS),
            email=dataclasses.replace(
                settings.email,
                host="127.0.0.1",
                port=smtp_port,
                from_address=FROM_ADDRESS,
                timeout=5.0,
            ),
            reminders=dataclasses.replace(settings.reminders, schedule=schedule, paused=paused),
        )

    return await start_harness(
        aiohttp_server,
        aiohttp_client,
        database_url,
        harness=ReminderHarness,
        configure=configure,
        timezone=timezone,
        contact_email="treasurer@riverside.example",
    )


def reminders_to(sink: MailSink, address: str | None = PARENT) -> list[SentMail]:
    """The reminders the sink received (receipts and other messages left out), to ``address``
    or to anyone."""
    return [
        m
        for m in sink.messages
        if "List-Unsubscribe" in m.message and (address is None or address in m.recipients)
    ]
