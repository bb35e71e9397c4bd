"""The outbox's promises about processes, with real ``gateway serve`` processes, a real SMTP sink
and the production link composer (issue 14 item 5): a sender SIGKILLed between "SMTP accepted"
and "marked sent" leads to at most two deliveries, both with the row's Message-ID, the resend
counted; two ``serve`` processes sharing PostgreSQL send each message once.

The rows are written with ``Outbox.add`` (what every producer calls) for links made by
``gateway links bulk``; the processes build and send them (kind ``link``, the link email).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.adapters.db.engine import Database, create_database
from gateway.adapters.db.models import AuditEntry, Link, OutboxMessage
from gateway.adapters.mail import SmtpMailer
from gateway.clock import SystemClock
from gateway.config import EmailSettings
from gateway.domain.outbox import Kind, State
from gateway.services.outbox import Outbox
from tests.crash.support import Gateway, create_links
from tests.outbox.support import RefusingSink

pytestmark = pytest.mark.slow

# Nothing answers here: no test in this file reaches Stripe (the reconciler waits an hour).
NO_STRIPE = "http://127.0.0.1:9"
FROM = "treasurer@riverside.example"


def mail_env(sink: RefusingSink) -> dict[str, str]:
    return {
        "GATEWAY_EMAIL_HOST": "127.0.0.1",
        "GATEWAY_EMAIL_PORT": str(sink.port),
        "GATEWAY_EMAIL_FROM_ADDRESS": FROM,
        "GATEWAY_EMAIL_TIMEOUT": "30",
        "GATEWAY_EMAIL_SEND_INTERVAL": "0.2",
    }


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Database]:
    db = create_database(url)
    try:
        yield db
    finally:
        await db.dispose()


async def owe_link_emails(db: Database, port: int, link_ids: Sequence[str]) -> None:
    """One link email owed per link, in one transaction, as ``LinkMailer`` writes them."""
    mailer = SmtpMailer(EmailSettings(host="127.0.0.1", port=port, from_address=FROM))
    domain = FROM.rpartition("@")[2]
    writer = Outbox(db, SystemClock(), mailer=mailer, composers={}, domain=domain)
    async with db.write() as session:
        for link_id in link_ids:
            link = await session.get(Link, link_id)
            assert link is not None
            await writer.add(
                session,
                kind=Kind.LINK,
                subject=f"{link_id}/1",
                recipient=link.email,
                locale="en",
                link_id=link_id,
                payload={"actor": "treasurer"},
            )


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.read() as session:
        return list((await session.execute(sa.select(OutboxMessage))).scalars())


async def wait_for(
    db: Database, done: Any, what: str, timeout: float = 60.0
) -> list[OutboxMessage]:
    """Poll the rows until ``done(rows)`` (readiness polling, as ``wait_healthy`` does)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = await rows(db)
        if done(found):
            return found
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{what}: {[(r.id, r.state, r.last_error) for r in await rows(db)]}")


async def lease_runs_out(db: Database) -> None:
    """Five minutes pass for the dead sender's claim (the lease is the outbox's; the processes
    run on the real clock, so the test moves the claim's end instead of waiting for it)."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with db.write() as session:
        await session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.state == State.SENDING.value)
            .values(lease_until=past)
        )


async def died(gateway: Gateway) -> int:
    """The exit status, awaited off the event loop (the SMTP sink runs on it)."""
    return await asyncio.get_running_loop().run_in_executor(None, gateway.wait_exit, 30.0)


async def metrics(gateway: Gateway) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/metrics") as response:
        assert response.status == 200
        return await response.text()


@pytest.fixture
async def sink() -> AsyncIterator[RefusingSink]:
    server = RefusingSink()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class TestSigkillAfterSmtpAccepted:
    async def test_the_next_sender_sends_it_once_more_with_the_same_message_id_and_counts_it(
        self, database_url: str, tmp_path: Path, sink: RefusingSink
    ) -> None:
        gateway = Gateway(database_url, NO_STRIPE, tmp_path, **mail_env(sink))
        [link] = create_links(gateway.env, 1, tmp_path, "crash")
        try:
            await gateway.start(failpoints="after_smtp_accepted")
            async with opened(database_url) as db:
                await owe_link_emails(db, sink.port, [link.id])
                assert await died(gateway) == -signal.SIGKILL, gateway.logs()
                [row] = await rows(db)
                # Accepted by SMTP, never marked: the dead sender's claim.
                assert row.state == State.SENDING and sink.message_ids() == [row.message_id]
                await lease_runs_out(db)
                await gateway.start()
                [row] = await wait_for(db, lambda r: r[0].state == State.SENT, "resend")
                assert row.crash_resends == 1 and row.attempts == 1
                # Two deliveries at most, both the row's message: a client may drop the copy.
                assert sink.message_ids() == [row.message_id, row.message_id]
                assert [m.recipients for m in sink.messages] == [("parent0@example.com",)] * 2
                assert link.token in sink.messages[1].text()
                text = await metrics(gateway)
                assert 'gateway_outbox_messages_total{kind="link",outcome="sent"} 1.0' in text
                assert (
                    'gateway_outbox_messages_total{kind="link",outcome="resent_after_crash"} 1.0'
                    in text
                )
                # The send the dead sender never marked is on the link once, by the resend.
                async with db.read() as session:
                    stored = await session.get(Link, link.id)
                    assert stored is not None and stored.sent_count == 1
                    emailed = await session.execute(
                        sa.select(AuditEntry.actor).where(
                            AuditEntry.link_id == link.id, AuditEntry.action == "link.emailed"
                        )
                    )
                    assert list(emailed.scalars()) == ["treasurer"]
        finally:
            gateway.stop()

    async def test_a_row_whose_senders_die_twice_is_never_sent_a_third_time(
        self, database_url: str, tmp_path: Path, sink: RefusingSink
    ) -> None:
        gateway = Gateway(database_url, NO_STRIPE, tmp_path, **mail_env(sink))
        [link] = create_links(gateway.env, 1, tmp_path, "twice")
        try:
            async with opened(database_url) as db:
                await gateway.start(failpoints="after_smtp_accepted")
                await owe_link_emails(db, sink.port, [link.id])
                assert await died(gateway) == -signal.SIGKILL, gateway.logs()
                await lease_runs_out(db)
                await gateway.start(failpoints="after_smtp_accepted")  # the resend dies too
                assert await died(gateway) == -signal.SIGKILL, gateway.logs()
                [row] = await rows(db)
                assert row.state == State.SENDING and row.crash_resends == 1
                await lease_runs_out(db)
                await gateway.start()
                [row] = await wait_for(db, lambda r: r[0].state == State.FAILED, "abandoned")
                assert "not sent a third time" in (row.last_error or "")
                assert sink.message_ids() == [row.message_id, row.message_id]
                text = await metrics(gateway)
                # (An abandoned row is counted without its kind: the claim that finds it reads
                # only its id.)
                assert 'gateway_outbox_messages_total{kind="other",outcome="abandoned"} 1.0' in text
                assert 'outcome="sent"' not in text
        finally:
            gateway.stop()


class GatedSink(RefusingSink):
    """Holds each message until two are in flight at once (one sender sends one at a time, so
    two at once are two senders sending together), then lets everything through."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.overlapped = asyncio.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.in_flight += 1
        if self.in_flight >= 2:
            self.overlapped.set()
        try:
            # Far below the senders' SMTP timeout (30 s): if the second sender never comes,
            # the test says so instead of hanging.
            await asyncio.wait_for(self.overlapped.wait(), 20)
        except TimeoutError:
            return "451 4.3.0 no second sender came"
        finally:
            self.in_flight -= 1
        return await super().handle_DATA(server, session, envelope)


class TestTwoServeProcesses:
    @pytest.mark.parametrize("backend", ["postgres"])
    async def test_two_senders_sharing_postgresql_send_each_message_once(
        self, database_url: str, tmp_path: Path
    ) -> None:
        sink = GatedSink()
        await sink.start()
        env = mail_env(sink)
        first = Gateway(database_url, NO_STRIPE, tmp_path / "first", **env)
        second = Gateway(database_url, NO_STRIPE, tmp_path / "second", **env)
        for gateway in (first, second):
            gateway.log_dir.mkdir()
        links = create_links(first.env, 100, tmp_path, "replicas")
        try:
            await first.start()
            await second.start()
            async with opened(database_url) as db:
                await owe_link_emails(db, sink.port, [link.id for link in links])
                sent = await wait_for(
                    db, lambda r: all(m.state == State.SENT for m in r), "all sent", timeout=120
                )
            assert sink.overlapped.is_set(), "the two senders never sent at the same moment"
            assert len(sent) == 100 and all(m.attempts == 1 for m in sent)
            assert len({m.claimed_by for m in sent}) == 2  # both sent some
            ids = sink.message_ids()
            assert len(ids) == len(set(ids)) == 100
            assert set(ids) == {m.message_id for m in sent}
            assert sorted(r for m in sink.messages for r in m.recipients) == sorted(
                f"parent{i}@example.com" for i in range(100)
            )
        finally:
            first.stop()
            second.stop()
            await sink.stop()
