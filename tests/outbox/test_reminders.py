"""Reminders (issue 14 items 3 and 5), on SQLite and PostgreSQL with the real SMTP sink and an
injected clock: each step sent once however many scheduler runs and replicas; never to a paid,
processing or revoked link; only within the sending hours, on the right local day across
daylight-saving changes; a step missed by more than 48 hours skipped and logged; the message
itself (language, pay link, due date, List-Unsubscribe one-click)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time
from typing import Any

import pytest

from gateway.domain.outbox import Kind, State
from gateway.web.keys import DATABASE, LINKS
from tests.harness import session_id_from
from tests.outbox.reminder_support import (
    PARENT,
    ReminderHarness,
    reminders_to,
    start_reminder_harness,
)
from tests.outbox.support import RefusingSink, sink

__all__ = ["sink"]


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, sink: RefusingSink
) -> ReminderHarness:
    return await start_reminder_harness(aiohttp_server, aiohttp_client, database_url, sink.port)


class TestEachStepOnce:
    async def test_any_number_of_runs_and_two_replicas_send_each_step_once(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        link = await h.issue_due("2027-01-15", "-3,1,7")
        async with h.replica() as other:
            # Every three hours for three weeks, both replicas schedule and send, at once.
            for _ in range(8 * 21):
                await asyncio.gather(h.tick(), h.tick(other))
                await h.tick(other)
                h.clock.advance(3 * 3600)
        mails = reminders_to(sink)
        assert len(mails) == 3
        rows = await h.rows(link)
        assert sorted(r.subject for r in rows) == [f"{link.id}:-3", f"{link.id}:1", f"{link.id}:7"]
        assert all(r.state == State.SENT for r in rows)
        assert sorted(str(m.message["Message-ID"]) for m in mails) == sorted(
            r.message_id for r in rows
        )
        # Each went on its local day, within the sending hours.
        sent = sorted(h.local(r.sent_at) for r in rows if r.sent_at)
        assert [s.date().isoformat() for s in sent] == ["2027-01-12", "2027-01-16", "2027-01-22"]
        assert all(time(9) <= s.time() < time(19) for s in sent)

    async def test_a_step_is_not_owed_before_its_day_nor_if_it_came_before_the_link(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        h.set_local(2027, 1, 10, 12)
        # Due tomorrow: its "-3" day (the 8th) was over before the link existed.
        link = await h.issue_due("2027-01-11", "-3,1")
        for _ in range(16):  # every three hours until the 12th, 09:00
            await h.tick()
            h.clock.advance(3 * 3600)
        assert [r.subject for r in await h.rows(link)] == [f"{link.id}:1"]
        # The "1" step (the 12th, 09:00 local) is owed, but the link is 45 hours old.
        row = (await h.rows(link))[0]
        assert row.state == State.SKIPPED
        assert row.last_error == "the link was created less than 48 hours ago"
        assert reminders_to(sink) == []


class TestNeverToSettledLinks:
    async def test_paid_processing_and_revoked_links_get_nothing(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        paid = await h.issue_due("2027-01-15", "1", ref="a", email="paid@example.com")
        processing = await h.issue_due("2027-01-15", "1", ref="b", email="bank@example.com")
        revoked = await h.issue_due("2027-01-15", "1", ref="c", email="gone@example.com")
        paid_late = await h.issue_due("2027-01-15", "1", ref="d", email="late@example.com")
        owed = await h.issue_due("2027-01-15", "1", ref="e", email="owes@example.com")
        await h.pay_flow(paid)
        response = await h.post(processing)
        h.emulator.pay(session_id_from(response.headers["Location"]), "async")
        await h.emulator.deliver_webhooks()
        assert [o.status for o in await h.orders(processing)] == ["processing"]
        await h.app[LINKS].revoke(revoked.id, actor="test")
        # The step's day: the scheduler owes it to the payable links only...
        h.set_local(2027, 1, 16, 9)
        await h.reminders.schedule()
        owed_to = {r.link_id for r in await h.rows()}
        assert owed_to == {paid_late.id, owed.id}
        # ...and one paid between then and the send is skipped at send time.
        await h.pay_flow(paid_late)
        await h.outbox.send_due()
        assert [m.recipients for m in reminders_to(sink, None)] == [("owes@example.com",)]
        [late_row] = await h.rows(paid_late)
        assert late_row.state == State.SKIPPED and late_row.last_error == "the link is paid"
        for _ in range(10):  # later runs change nothing
            h.clock.advance(3600)
            await h.tick()
        assert len(reminders_to(sink, None)) == 1


class TestThePayersSide:
    async def test_an_address_refused_once_gets_no_more_reminders(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        address = "refused@example.com"  # the sink answers 550 for it
        link = await h.issue_due("2027-01-15", "-3,1", email=address)
        h.set_local(2027, 1, 12, 9)
        await h.tick()
        first = (await h.rows(link))[0]
        assert first.state == State.FAILED and "550" in (first.last_error or "")
        h.set_local(2027, 1, 16, 9)
        await h.tick()
        rows = {r.subject: r for r in await h.rows(link)}
        second = rows[f"{link.id}:1"]
        assert second.state == State.SKIPPED
        assert second.last_error == "the payer's address was refused before"

    async def test_a_pay_press_in_the_last_24_hours_holds_the_reminder_back(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        link = await h.issue_due("2027-01-15", "1")
        h.set_local(2027, 1, 15, 18)
        response = await h.post(link)  # Pay pressed, the Stripe page left unpaid
        assert response.status == 303
        h.set_local(2027, 1, 16, 9)
        await h.tick()
        [row] = await h.rows(link)
        assert row.state == State.SKIPPED
        assert row.last_error == "the payer pressed Pay in the last 24 hours"
        assert reminders_to(sink) == []


class TestSendingHours:
    async def test_a_step_due_at_seven_waits_until_nine(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        link = await h.issue_due("2027-01-15", "1")
        # A row owed at 07:00 local (as one written while reminders.send_from was 07:00).
        seven = datetime(2027, 1, 16, 7, tzinfo=h.zone)
        async with h.app[DATABASE].write() as session:
            await h.outbox.add(
                session,
                kind=Kind.REMINDER,
                subject=f"{link.id}:1",
                recipient=PARENT,
                locale="en",
                link_id=link.id,
                payload={"step": 1, "owed_at": seven.isoformat()},
                not_before=seven,
            )
        h.set_local(2027, 1, 16, 7)
        report = await h.outbox.send_due()
        assert [d.outcome for d in report.deliveries] == ["deferred"]
        [row] = await h.rows(link)
        assert h.local(row.next_attempt_at) == datetime(2027, 1, 16, 9, tzinfo=h.zone)
        h.set_local(2027, 1, 16, 8, 59)
        await h.tick()
        assert reminders_to(sink) == []
        h.set_local(2027, 1, 16, 9)
        await h.tick()
        assert len(reminders_to(sink)) == 1

    async def test_a_step_first_tried_at_eight_pm_goes_the_next_morning_at_nine(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        link = await h.issue_due("2027-01-15", "1")
        h.set_local(2027, 1, 16, 20)  # nothing ran since before 09:00
        await h.tick()
        assert reminders_to(sink) == []
        [row] = await h.rows(link)
        assert row.state == State.PENDING
        assert h.local(row.next_attempt_at) == datetime(2027, 1, 17, 9, tzinfo=h.zone)
        h.set_local(2027, 1, 17, 8, 59)
        await h.tick()
        assert reminders_to(sink) == []
        h.set_local(2027, 1, 17, 9)
        await h.tick()
        assert len(reminders_to(sink)) == 1
        h.set_local(2027, 1, 17, 18)
        await h.tick()
        assert len(reminders_to(sink)) == 1


@pytest.mark.parametrize(
    ("timezone", "created", "due", "days"),
    [
        # Europe/Lisbon moves to summer time on 28 March 2027 (01:00 UTC).
        ("Europe/Lisbon", (2027, 3, 10), "2027-03-27", ["2027-03-24", "2027-03-28", "2027-04-03"]),
        # America/New_York goes back to standard time on 7 November 2027.
        (
            "America/New_York",
            (2027, 10, 20),
            "2027-11-06",
            ["2027-11-03", "2027-11-07", "2027-11-13"],
        ),
    ],
)
async def test_daylight_saving_moves_no_step_off_its_local_day_or_hour(
    aiohttp_server: Any,
    aiohttp_client: Any,
    database_url: str,
    sink: RefusingSink,
    timezone: str,
    created: tuple[int, int, int],
    due: str,
    days: list[str],
) -> None:
    h = await start_reminder_harness(
        aiohttp_server, aiohttp_client, database_url, sink.port, timezone=timezone
    )
    h.set_local(*created, 10)
    link = await h.issue_due(due, "-3,1,7")
    for n, value in enumerate(days, start=1):
        y, m, d = (int(part) for part in value.split("-"))
        h.set_local(y, m, d, 8, 59)
        await h.tick()
        assert len(reminders_to(sink)) == n - 1, value
        h.set_local(y, m, d, 9)
        await h.tick()
        assert len(reminders_to(sink)) == n, value
    rows = await h.rows(link)
    assert sorted(h.local(r.sent_at).isoformat() for r in rows if r.sent_at) == [
        datetime.fromisoformat(f"{value}T09:00").replace(tzinfo=h.zone).isoformat()
        for value in days
    ]


class TestMissed:
    async def test_a_step_missed_by_more_than_48_hours_is_skipped_and_logged(
        self, h: ReminderHarness, sink: RefusingSink, caplog: pytest.LogCaptureFixture
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        link = await h.issue_due("2027-01-15", "-3,1")
        # The scheduler was down from before the -3 step (the 12th) until the 14th, 10:00
        # (49 hours late), then from before the +1 step (the 16th) to the 18th, 08:00 (47 h).
        h.set_local(2027, 1, 14, 10)
        with caplog.at_level(logging.INFO, logger="gateway.services.messages.reminders"):
            await h.tick()
        [missed] = await h.rows(link)
        assert missed.state == State.SKIPPED
        assert missed.last_error == "the reminder was missed by more than 48 hours"
        assert any(
            r.getMessage() == "reminder skipped" and getattr(r, "step", None) == -3
            for r in caplog.records
        )
        assert reminders_to(sink) == []

    async def test_a_step_late_by_less_than_48_hours_still_goes_within_the_hours(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        link = await h.issue_due("2027-01-15", "1")
        # Nothing ran from before the step (the 16th, 09:00) until the 17th at 20:00 (35 h):
        # deferred to the 18th at 09:00, 48 hours late, not more: it goes then.
        h.set_local(2027, 1, 17, 20)
        await h.tick()
        assert reminders_to(sink) == []
        h.set_local(2027, 1, 18, 9)
        await h.tick()
        assert len(reminders_to(sink)) == 1
        [row] = await h.rows(link)
        assert row.state == State.SENT
