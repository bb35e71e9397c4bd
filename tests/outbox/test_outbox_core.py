"""The outbox's rules (issue 14 item 1), on SQLite and PostgreSQL with a real SMTP sink: one row
per (kind, subject), written only with its transaction; a stable Message-ID; backoff on
transient refusals, failure on permanent ones; at most one resend after a sender dies mid-send,
and never a third; deferring and skipping; two senders never sending one row twice."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.db.engine import Database
from gateway.adapters.db.models import OutboxMessage
from gateway.dev.clock import FakeClock
from gateway.domain.errors import ValidationFailed
from gateway.domain.outbox import BACKOFF, LEASE, MAX_ATTEMPTS, Kind, State
from gateway.services.outbox import Defer, Outbox, SendReport, Skip
from tests.outbox.support import PayloadComposer, RefusingSink, db, outbox_for, sink

__all__ = ["db", "sink"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def composer(clock: FakeClock) -> PayloadComposer:
    return PayloadComposer(clock)


@pytest.fixture
def outbox(db: Database, clock: FakeClock, sink: RefusingSink, composer: PayloadComposer) -> Outbox:
    return outbox_for(db, clock, sink.port, composer)


async def owe(
    outbox: Outbox,
    db: Database,
    subject: str = "ord_1",
    recipient: str = "parent@example.com",
    **payload: Any,
) -> None:
    async with db.write() as session:
        await outbox.add(
            session,
            kind=Kind.RECEIPT,
            subject=subject,
            recipient=recipient,
            locale="en",
            payload=payload,
        )


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.read() as session:
        found = await session.execute(sa.select(OutboxMessage).order_by(OutboxMessage.created_at))
        return list(found.scalars())


async def only_row(db: Database) -> OutboxMessage:
    [row] = await rows(db)
    return row


class TestWriting:
    async def test_the_same_message_owed_again_is_one_row(
        self, outbox: Outbox, db: Database
    ) -> None:
        for _ in range(3):
            await owe(outbox, db, body="first")
        await owe(outbox, db, subject="ord_2")
        found = await rows(db)
        assert sorted(r.subject for r in found) == ["ord_1", "ord_2"]
        assert json.loads(found[0].payload) == {"body": "first"}

    async def test_nothing_is_owed_when_the_change_rolls_back(
        self, outbox: Outbox, db: Database
    ) -> None:
        async def change_that_fails() -> None:
            async with db.write() as session:
                await outbox.add(
                    session, kind=Kind.RECEIPT, subject="x", recipient="a@example.com", locale="en"
                )
                raise RuntimeError("the state change failed")

        with pytest.raises(RuntimeError):
            await change_that_fails()
        assert await rows(db) == []


class TestSending:
    async def test_a_message_goes_once_with_the_rows_message_id(
        self, outbox: Outbox, db: Database, sink: RefusingSink
    ) -> None:
        await owe(outbox, db, subject="ord_1", body="Thank you")
        report = await outbox.send_due()
        assert [d.outcome for d in report.deliveries] == ["sent"]
        row = await only_row(db)
        assert row.state == State.SENT and row.sent_at is not None and row.attempts == 1
        assert sink.message_ids() == [row.message_id]
        assert row.message_id == f"<{row.id}@example.com>"
        assert (await outbox.send_due()).deliveries == ()
        assert len(sink.messages) == 1

    async def test_an_hour_without_smtp_then_every_message_once(
        self, outbox: Outbox, db: Database, sink: RefusingSink, clock: FakeClock
    ) -> None:
        for n in range(3):
            await owe(outbox, db, subject=f"ord_{n}")
        port = sink.port
        await sink.stop()
        waited = timedelta()
        for backoff in BACKOFF[:3]:  # 1 m, 5 m, 30 m: 36 minutes of trying
            report = await outbox.send_due()
            assert {d.outcome for d in report.deliveries} == {"retry"}
            # Not a moment before the backoff is over.
            clock.advance(backoff.total_seconds() - 1)
            assert (await outbox.send_due()).deliveries == ()
            clock.advance(1)
            waited += backoff
        assert all(r.state == State.PENDING and r.attempts == 3 for r in await rows(db))
        clock.advance(3600 - waited.total_seconds())
        await sink.start(port=port)
        clock.advance(BACKOFF[3].total_seconds())
        report = await outbox.send_due()
        assert [d.outcome for d in report.deliveries] == ["sent"] * 3
        assert sorted(sink.message_ids()) == sorted(r.message_id for r in await rows(db))

    async def test_transient_refusals_end_in_failure_after_the_last_backoff(
        self, outbox: Outbox, db: Database, clock: FakeClock
    ) -> None:
        await owe(outbox, db, recipient="try-later@example.com")
        outcomes = []
        for _ in range(MAX_ATTEMPTS):
            outcomes += [d.outcome for d in (await outbox.send_due()).deliveries]
            clock.advance(13 * 3600)
        assert outcomes == ["retry"] * (MAX_ATTEMPTS - 1) + ["failed"]
        row = await only_row(db)
        assert row.state == State.FAILED and "451" in (row.last_error or "")

    async def test_an_address_the_server_refuses_fails_at_once_and_is_kept(
        self, outbox: Outbox, db: Database, sink: RefusingSink
    ) -> None:
        await owe(outbox, db, recipient="refused@example.com")
        report = await outbox.send_due()
        assert [d.outcome for d in report.deliveries] == ["failed"]
        row = await only_row(db)
        assert row.state == State.FAILED and "550" in (row.last_error or "")
        assert sink.messages == []
        retried = await outbox.retry(row.id)
        assert retried.state == State.PENDING and retried.attempts == 0

    async def test_a_header_injection_in_the_recipient_fails_without_losing_the_row(
        self, outbox: Outbox, db: Database, sink: RefusingSink
    ) -> None:
        await owe(outbox, db, recipient="a@example.com\r\nBcc: everyone@example.com")
        report = await outbox.send_due()
        assert [d.outcome for d in report.deliveries] == ["failed"]
        assert sink.messages == [] and (await only_row(db)).state == State.FAILED


class TestComposers:
    async def test_skip_defer_and_a_composer_bug(
        self, outbox: Outbox, db: Database, clock: FakeClock, sink: RefusingSink
    ) -> None:
        await owe(outbox, db, subject="skip", skip="the link was paid")
        await owe(outbox, db, subject="defer", defer=3600)
        await owe(outbox, db, subject="boom", boom=True)
        outcomes = {d.id: d.outcome for d in (await outbox.send_due()).deliveries}
        by_subject = {r.subject: r for r in await rows(db)}
        assert outcomes[by_subject["skip"].id] == "skipped"
        assert by_subject["skip"].last_error == "the link was paid"
        deferred = by_subject["defer"]
        assert outcomes[deferred.id] == "deferred" and deferred.state == State.PENDING
        assert deferred.attempts == 0  # deferring is not failing
        assert deferred.next_attempt_at == datetime.fromtimestamp(clock.now() + 3600, UTC)
        # A bug keeps the row and tries again later.
        assert outcomes[by_subject["boom"].id] == "retry"
        assert sink.messages == []


class TestCrashes:
    async def test_a_sender_that_died_mid_send_is_followed_by_one_resend_with_the_same_id(
        self,
        db: Database,
        clock: FakeClock,
        sink: RefusingSink,
        composer: PayloadComposer,
    ) -> None:
        dead = outbox_for(db, clock, sink.port, composer)
        alive = outbox_for(db, clock, sink.port, composer)
        await owe(dead, db)
        # The dead sender claimed it (and may have handed it to SMTP) but never marked it.
        _, [claimed] = await dead._claim(1, only=None)
        built = await composer.compose(claimed)
        assert not isinstance(built, Skip | Defer)
        built["Message-ID"] = claimed.message_id
        assert dead._mailer is not None
        await dead._mailer.send(built)  # SMTP accepted it; then the process died
        clock.advance(LEASE.total_seconds() - 1)
        assert (await alive.send_due()).deliveries == ()  # still the dead one's lease
        clock.advance(2)
        [delivery] = (await alive.send_due()).deliveries
        assert delivery.outcome == "sent" and delivery.resent_after_crash
        row = await only_row(db)
        assert row.state == State.SENT and row.crash_resends == 1
        # Two deliveries at most, both with the row's Message-ID.
        assert sink.message_ids() == [row.message_id, row.message_id]

    async def test_a_row_whose_sender_died_twice_is_never_sent_a_third_time(
        self, db: Database, clock: FakeClock, sink: RefusingSink, composer: PayloadComposer
    ) -> None:
        first, second, third = (outbox_for(db, clock, sink.port, composer) for _ in range(3))
        await owe(first, db)
        await first._claim(1, only=None)
        clock.advance(LEASE.total_seconds() + 1)
        await second._claim(1, only=None)  # the resend's sender dies too
        clock.advance(LEASE.total_seconds() + 1)
        report = await third.send_due()
        assert report.deliveries == () and len(report.abandoned) == 1
        row = await only_row(db)
        assert row.state == State.FAILED and "not sent a third time" in (row.last_error or "")
        assert sink.messages == []

    async def test_a_sender_that_lost_its_claim_does_not_overwrite_the_next_ones_mark(
        self, db: Database, clock: FakeClock, sink: RefusingSink, composer: PayloadComposer
    ) -> None:
        slow = outbox_for(db, clock, sink.port, composer)
        fast = outbox_for(db, clock, sink.port, composer)
        await owe(slow, db, recipient="refused@example.com")
        _, [claimed] = await slow._claim(1, only=None)
        clock.advance(LEASE.total_seconds() + 1)
        assert [d.outcome for d in (await fast.send_due()).deliveries] == ["failed"]
        late = await slow._deliver(claimed)
        assert late.outcome == "lost"
        assert (await only_row(db)).claimed_by == fast.sender_id


class TestSteering:
    async def test_cancel_and_retry_follow_the_states(self, outbox: Outbox, db: Database) -> None:
        await owe(outbox, db, subject="a")
        row = await only_row(db)
        assert (await outbox.cancel(row.id)).state == State.CANCELED
        assert (await outbox.send_due()).deliveries == ()
        with pytest.raises(ValidationFailed):
            await outbox.cancel(row.id)
        assert (await outbox.retry(row.id)).state == State.PENDING
        assert [d.outcome for d in (await outbox.send_due()).deliveries] == ["sent"]
        with pytest.raises(ValidationFailed):
            await outbox.retry(row.id)  # sent is sent


class TestReplicas:
    async def test_two_senders_at_once_send_each_message_once(
        self, db: Database, clock: FakeClock, sink: RefusingSink, composer: PayloadComposer
    ) -> None:
        one = outbox_for(db, clock, sink.port, composer)
        two = outbox_for(db, clock, sink.port, composer)
        for n in range(40):
            await owe(one, db, subject=f"ord_{n}")
        reports: list[SendReport] = []
        while True:
            batch = await asyncio.gather(one.send_due(5), two.send_due(5))
            if not any(r.deliveries for r in batch):
                break
            reports += batch
        sent = [d.id for r in reports for d in r.deliveries if d.outcome == "sent"]
        assert len(sent) == len(set(sent)) == 40
        assert len(sink.message_ids()) == len(set(sink.message_ids())) == 40
