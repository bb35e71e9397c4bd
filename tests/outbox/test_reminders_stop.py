"""The reminder itself and its "stop reminders for this payment" link (issue 14 items 3 and 5),
on SQLite and PostgreSQL with the real SMTP sink: the message's language, pay link, amount,
due date and List-Unsubscribe headers (RFC 8058); GET of the stop page writes nothing; POST
stops reminders once, also as a mail provider's one-click POST without Origin; and stops
nothing else (a receipt still goes); pausing per link and everywhere."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from gateway.adapters.db.models import Link, OutboxMessage
from gateway.domain.outbox import Kind, State
from gateway.web.keys import DATABASE, SETTINGS
from tests.harness import BROWSER_HEADERS, forge
from tests.outbox.reminder_support import (
    PARENT,
    ReminderHarness,
    reminders_to,
    start_reminder_harness,
)
from tests.outbox.support import RefusingSink, sink

__all__ = ["sink"]

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, sink: RefusingSink
) -> ReminderHarness:
    return await start_reminder_harness(aiohttp_server, aiohttp_client, database_url, sink.port)


async def first_reminder(h: ReminderHarness, locale: str | None = None) -> Any:
    """A link due on the 15th, and its "-3" reminder as the sink received it."""
    h.set_local(2027, 1, 4, 10)
    link = await h.issue_due("2027-01-15", "-3,1", locale=locale)
    h.set_local(2027, 1, 12, 9, 30)
    await h.tick()
    return link


class TestTheMessage:
    async def test_it_carries_the_pay_link_amount_due_date_and_a_one_click_stop(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        link = await first_reminder(h)
        [mail] = reminders_to(sink)
        message = mail.message
        stop = f"{link.url}/reminders/stop"
        assert message["List-Unsubscribe"] == f"<{stop}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Content-Language"] == "en"
        assert message["Reply-To"] == "treasurer@riverside.example"
        assert "due on January 15, 2027" in mail.subject
        for part in (mail.text(), mail.html()):
            assert link.url in part and stop in part
            assert "$150.00" in part and "January 15, 2027" in part
        assert '<html lang="en">' in mail.html()
        [row] = [r for r in await h.rows(link) if r.state == State.SENT]
        assert message["Message-ID"] == row.message_id

    async def test_it_is_in_the_links_language(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        await first_reminder(h, locale="pt-BR")
        [mail] = reminders_to(sink)
        assert mail.message["Content-Language"] == "pt-BR"
        assert '<html lang="pt-BR">' in mail.html()
        text = mail.text()
        assert "Olá, Sam Rivera," in text  # a sentence the catalog has already
        assert "150,00" in text and "15 de janeiro de 2027" in text  # CLDR, whatever the catalog


class TestStopping:
    async def test_get_shows_a_button_and_writes_nothing(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        link = await first_reminder(h)
        before = await h.audit(link)
        response = await h.client.get(f"/pay/{link.token}/reminders/stop", headers=BROWSER_HEADERS)
        assert response.status == 200
        page = await response.text()
        assert f'action="/pay/{link.token}/reminders/stop"' in page
        assert page.count("<h1>") == 1
        assert (await h.link(link)).reminders_stopped_at is None
        assert len(await h.audit(link)) == len(before)

    async def test_a_mail_providers_one_click_post_without_origin_stops_reminders_once(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        link = await first_reminder(h)
        [mail] = reminders_to(sink)
        target = mail.message["List-Unsubscribe"].strip("<>")
        path = urlsplit(target).path
        for _ in range(2):  # a provider may POST again; the second changes nothing
            response = await h.client.post(
                path,
                data="List-Unsubscribe=One-Click",
                headers={**ONE_CLICK, "User-Agent": "Mozilla/5.0 (compatible; MailProvider)"},
            )
            assert response.status == 200
        assert (await h.link(link)).reminders_stopped_at is not None
        stops = [e for e in await h.audit(link) if e.action == "reminders.stopped"]
        assert len(stops) == 1 and stops[0].actor == "payer"
        # The "+1" step is not even owed now; and nothing else is sent.
        h.set_local(2027, 1, 16, 10)
        await h.tick()
        assert [r.subject for r in await h.rows(link)] == [f"{link.id}:-3"]
        assert len(reminders_to(sink)) == 1

    async def test_a_step_owed_before_the_stop_is_skipped_when_its_time_comes(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        link = await h.issue_due("2027-01-15", "1")
        h.set_local(2027, 1, 16, 9)
        await h.reminders.schedule()  # owed, not yet sent
        response = await h.client.post(
            f"/pay/{link.token}/reminders/stop", headers={**BROWSER_HEADERS, "Origin": "null"}
        )
        assert response.status == 200
        await h.outbox.send_due()
        [row] = await h.rows(link)
        assert row.state == State.SKIPPED
        assert row.last_error == "the payer stopped reminders for this payment"
        assert reminders_to(sink) == []

    async def test_stopping_touches_nothing_but_reminders_and_a_receipt_still_goes(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        link = await first_reminder(h)
        before = await h.link(link)
        async with h.app[DATABASE].read() as session:
            others_before = {
                (m.id, m.state, m.updated_at)
                for m in (
                    await session.execute(
                        sa.select(OutboxMessage).where(OutboxMessage.kind != Kind.REMINDER.value)
                    )
                ).scalars()
            }
        await h.client.post(
            f"/pay/{link.token}/reminders/stop",
            data="List-Unsubscribe=One-Click",
            headers=ONE_CLICK,
        )
        after = await h.link(link)
        columns = [c.key for c in sa.inspect(Link).columns if c.key != "reminders_stopped_at"]
        assert {c: getattr(after, c) for c in columns} == {c: getattr(before, c) for c in columns}
        async with h.app[DATABASE].read() as session:
            others_after = {
                (m.id, m.state, m.updated_at)
                for m in (
                    await session.execute(
                        sa.select(OutboxMessage).where(OutboxMessage.kind != Kind.REMINDER.value)
                    )
                ).scalars()
            }
        assert others_after == others_before
        # The payer pays after stopping reminders: the receipt (when receipts are on) still goes.
        await h.pay_flow(link)
        for _ in range(3):
            await h.outbox.send_due()
        async with h.app[DATABASE].read() as session:
            receipts = (
                await session.execute(
                    sa.select(OutboxMessage).where(
                        OutboxMessage.kind == Kind.RECEIPT.value,
                        OutboxMessage.link_id == link.id,
                    )
                )
            ).scalars()
            receipt_states = [r.state for r in receipts]
        if Kind.RECEIPT.value in h.outbox._composers:  # the receipt is built (item 2)
            assert h.app[SETTINGS].email.receipts
            assert receipt_states == [State.SENT]
            receipt = [m for m in sink.to(PARENT) if "List-Unsubscribe" not in m.message]
            assert len(receipt) == 1

    async def test_a_post_from_another_site_is_refused_and_changes_nothing(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        link = await first_reminder(h)
        response = await h.client.post(
            f"/pay/{link.token}/reminders/stop",
            headers={**BROWSER_HEADERS, "Origin": "https://evil.example"},
        )
        assert response.status == 403
        assert (await h.link(link)).reminders_stopped_at is None

    async def test_a_forged_token_is_a_404_and_changes_nothing(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        link = await first_reminder(h)
        for method in ("GET", "POST"):
            response = await h.client.request(
                method, f"/pay/{forge(link.token)}/reminders/stop", headers=BROWSER_HEADERS
            )
            assert response.status == 404
        assert (await h.link(link)).reminders_stopped_at is None


class TestPausing:
    async def test_the_admin_api_pauses_and_resumes_one_links_reminders(
        self, h: ReminderHarness, sink: RefusingSink
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        link = await h.issue_due("2027-01-15", "-3,1")
        response = await h.api("POST", f"/links/{link.id}/reminders", json={"paused": True})
        assert response.status == 200
        body = await response.json()
        assert body["changed"] is True and body["reminders_paused"] is True
        assert body["due"] == "2027-01-15" and body["reminders"] == "-3,1"
        h.set_local(2027, 1, 12, 10)
        await h.tick()
        assert await h.rows(link) == [] and reminders_to(sink) == []
        response = await h.api("POST", f"/links/{link.id}/reminders", json={"paused": False})
        assert (await response.json())["changed"] is True
        await h.tick()  # the -3 step, an hour late, goes now
        assert len(reminders_to(sink)) == 1
        actions = [e.action for e in await h.audit(link) if e.action.startswith("reminders.")]
        assert actions == ["reminders.paused", "reminders.resumed"]
        bad = await h.api("POST", f"/links/{link.id}/reminders", json={"paused": "yes"})
        assert bad.status == 422
        missing = await h.api("POST", "/links/lk_doesnotexist00/reminders", json={"paused": True})
        assert missing.status == 404


async def test_reminders_paused_in_the_config_sends_none(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, sink: RefusingSink
) -> None:
    h = await start_reminder_harness(
        aiohttp_server, aiohttp_client, database_url, sink.port, paused=True
    )
    h.set_local(2027, 1, 4, 10)
    link = await h.issue_due("2027-01-15", "-3,1,7")
    for _ in range(4 * 20):
        await h.tick()
        h.clock.advance(6 * 3600)
    assert await h.rows(link) == [] and reminders_to(sink) == []
