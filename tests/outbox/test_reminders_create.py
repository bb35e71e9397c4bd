"""A link's due date and schedule on create (issue 14 item 3), and ``gateway reminders
preview``: the API and bulk columns on SQLite and PostgreSQL (what is stored, what is shown
back, every refusal a 422 naming the field), the CLI's ``--due``/``--reminders``, ``reminders
pause|resume`` and ``preview``, and the rules' table of cases."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.cli import main
from gateway.config import ConfigError, load_settings
from gateway.domain.checkout import LinkState
from gateway.domain.errors import ValidationFailed
from gateway.domain.links import validate_new_link
from gateway.domain.reminders import (
    MISSED_AFTER,
    ReminderError,
    ReminderFacts,
    next_window,
    parse_clock,
    parse_steps,
    skip_reason,
)
from tests.harness import TOKEN_SECRET
from tests.outbox.reminder_support import ReminderHarness, start_reminder_harness
from tests.outbox.support import RefusingSink, sink

__all__ = ["sink"]

NEW = {"email": "a@example.com", "name": "A", "items": ["Fee=10.00"]}


@pytest.fixture
async def h(
    aiohttp_server: Any, aiohttp_client: Any, database_url: str, sink: RefusingSink
) -> ReminderHarness:
    return await start_reminder_harness(aiohttp_server, aiohttp_client, database_url, sink.port)


class TestApi:
    async def test_due_and_reminders_are_stored_and_shown_back(self, h: ReminderHarness) -> None:
        h.set_local(2027, 1, 4, 10)
        response = await h.api(
            "POST", "/links", json={**NEW, "ref": "r1", "due": "2027-01-15", "reminders": "7,-3"}
        )
        assert response.status == 201, await response.text()
        created = await response.json()
        assert (created["due"], created["reminders"]) == ("2027-01-15", "-3,7")
        shown = await (await h.api("GET", f"/links/{created['id']}")).json()
        assert shown["due"] == "2027-01-15" and shown["reminders"] == "-3,7"
        assert shown["reminders_paused"] is False and shown["reminders_stopped_at"] is None
        # A duration is read like valid_for, from now, on the organisation's calendar.
        relative = await h.api("POST", "/links", json={**NEW, "ref": "r2", "due": "14d"})
        assert (await relative.json())["due"] == "2027-01-18"
        assert (await relative.json())["reminders"] is None  # the configured default
        none = await h.api(
            "POST", "/links", json={**NEW, "ref": "r3", "due": "2027-01-15", "reminders": "none"}
        )
        assert (await none.json())["reminders"] == "none"

    @pytest.mark.parametrize(
        ("fields", "field", "says"),
        [
            ({"due": "2027-01-03"}, "due", "in the past"),
            ({"due": "2027-03-01"}, "due", "after the link stops working"),
            ({"due": "15/01/2027"}, "due", "expected a date"),
            ({"due": "14"}, "due", "with its unit"),
            ({"due": "99999999999d"}, "due", "too far away"),
            ({"due": "2027-01-15", "reminders": "-3,1,7,14"}, "reminders", "at most 3"),
            ({"due": "2027-01-15", "reminders": "1,1"}, "reminders", "once"),
            ({"due": "2027-01-15", "reminders": "1.5"}, "reminders", "whole numbers"),
            ({"due": "2027-01-15", "reminders": "30"}, "reminders", "after the link stops"),
            ({"reminders": "-3"}, "reminders", "need a due date"),
        ],
    )
    async def test_refusals_are_422_naming_the_field(
        self, h: ReminderHarness, fields: dict[str, str], field: str, says: str
    ) -> None:
        h.set_local(2027, 1, 4, 10)
        body = {**NEW, "ref": "r", "valid_for": "30d", **fields}
        response = await h.api("POST", "/links", json=body)
        assert response.status == 422
        problems = (await response.json())["error"]["fields"]
        assert says in problems[field], problems

    async def test_bulk_rows_take_due_and_reminders_columns(self, h: ReminderHarness) -> None:
        h.set_local(2027, 1, 4, 10)
        csv = (
            "email,name,ref,amount,due,reminders\n"
            "b@example.com,B,o/1,5,2027-01-20,-2\n"
            "c@example.com,C,o/2,5,,\n"
            "d@example.com,D,o/3,5,2027-01-20,none\n"
        )
        response = await h.api(
            "POST", "/links/bulk", data=csv, headers={"Content-Type": "text/csv"}
        )
        assert response.status in (200, 201), await response.text()
        page = await (await h.api("GET", "/links", params={"limit": 10})).json()
        by_ref = {link["ref"]: link for link in page["links"]}
        assert (by_ref["o/1"]["due"], by_ref["o/1"]["reminders"]) == ("2027-01-20", "-2")
        assert (by_ref["o/2"]["due"], by_ref["o/2"]["reminders"]) == (None, None)
        assert (by_ref["o/3"]["due"], by_ref["o/3"]["reminders"]) == ("2027-01-20", "none")
        bad = "email,name,ref,amount,due\ne@example.com,E,o/4,5,yesterday\n"
        refused = await h.api("POST", "/links/bulk", data=bad, headers={"Content-Type": "text/csv"})
        assert refused.status == 422
        assert "due" in json.dumps(await refused.json())


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The command in-process on a SQLite file, in English (tests/integration/test_cli.py)."""
    for name in ("GATEWAY_CONFIG", "LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATEWAY_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3")
    monkeypatch.setenv("GATEWAY_TOKENS_SECRET_KEYS", TOKEN_SECRET)
    monkeypatch.setenv("GATEWAY_SERVER_PUBLIC_URL", "https://pay.example.org")
    monkeypatch.setenv("GATEWAY_STRIPE_API_BASE", "http://127.0.0.1:9")
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


class TestPreview:
    async def test_who_gets_which_step_and_who_is_skipped_and_why(self, h: ReminderHarness) -> None:
        h.set_local(2027, 1, 4, 10)
        owes = await h.issue_due("2027-01-15", "1", ref="owes")
        paid = await h.issue_due("2027-01-15", "1", ref="paid", email="paid@example.com")
        paused = await h.issue_due("2027-01-15", "1", ref="paused", email="p@example.com")
        stopped = await h.issue_due("2027-01-15", "1", ref="stopped", email="s@example.com")
        other_day = await h.issue_due("2027-01-20", "1", ref="later", email="l@example.com")
        h.set_local(2027, 1, 15, 10)
        fresh = await h.issue_due("2027-01-15", "1", ref="fresh", email="f@example.com")
        await h.pay_flow(paid)
        await h.reminders.set_paused(paused.id, True, actor="test")
        await h.reminders.stop(stopped.id)
        rows = {r.ref: r for r in await h.reminders.preview(date(2027, 1, 16))}
        assert set(rows) == {"owes", "paid", "paused", "stopped", "fresh"}
        assert other_day.id not in {r.link_id for r in rows.values()}
        assert rows["owes"].skipped is None and rows["owes"].step == 1
        assert rows["paid"].skipped == "the link is paid"
        assert rows["paused"].skipped == "reminders are paused for this link"
        assert rows["stopped"].skipped == "the payer stopped reminders for this payment"
        assert rows["fresh"].skipped == "the link was created less than 48 hours ago"
        assert rows["owes"].link_id == owes.id and rows["fresh"].link_id == fresh.id


def test_cli_create_pause_and_preview(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    create = ["links", "create", "--email", "sam@example.com", "--name", "Sam Rivera"]
    create += ["--item", "Fee=10.00", "--ref", "p/1", "--valid-for", "30d"]
    code, out, err = run(capsys, *create, "--due", "10d", "--reminders", "-3,1", "--json")
    assert code == 0, err
    created = json.loads(out)
    due = date.fromisoformat(created["due"])
    assert created["reminders"] == "-3,1"
    code, out, err = run(capsys, "reminders", "preview", "--date", str(due - timedelta(days=3)))
    assert code == 0, err
    assert created["id"] in out and "send" in out and "-3" in out
    code, out, _ = run(capsys, "reminders", "pause", created["id"])
    assert code == 0 and "paused" in out
    code, out, _ = run(capsys, "links", "show", created["id"])
    assert code == 0 and created["due"] in out and "-3,1; paused" in out
    code, out, _ = run(
        capsys, "reminders", "preview", "--date", str(due + timedelta(days=1)), "--json"
    )
    [row] = json.loads(out)["reminders"]
    assert (row["link_id"], row["step"], row["send"]) == (created["id"], 1, False)
    assert row["skipped"] == "reminders are paused for this link"
    code, out, _ = run(capsys, "reminders", "resume", created["id"])
    assert code == 0 and "resumed" in out
    # Text output: a create shows the due date and the schedule back.
    code, out, _ = run(capsys, *create[:6], "--item", "Fee=10.00", "--ref", "p/2", "--due", "5d")
    assert code == 0 and "due" in out and "the configured default" in out
    code, _, err = run(capsys, *create[:6], "--item", "Fee=1.00", "--ref", "p/3", "--due", "99d")
    assert code == 2 and "due" in err
    code, _, err = run(capsys, "reminders", "preview", "--date", "tomorrow")
    assert code == 2 and "--date" in err


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"GATEWAY_REMINDERS_SCHEDULE": "-3,1,7,14"}, "reminders.schedule: at most 3"),
        ({"GATEWAY_REMINDERS_SCHEDULE": "soon"}, "reminders.schedule: expected whole numbers"),
        ({"GATEWAY_REMINDERS_SEND_FROM": "9am"}, "reminders.send_from: expected a time of day"),
        ({"GATEWAY_REMINDERS_SEND_UNTIL": "24:00"}, "reminders.send_until: expected a time"),
        (
            {"GATEWAY_REMINDERS_SEND_FROM": "19:00", "GATEWAY_REMINDERS_SEND_UNTIL": "09:00"},
            "must be earlier in the day",
        ),
    ],
)
def test_the_reminders_settings_are_checked_at_start_up(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_settings(path=None, env=env)
    settings = load_settings(path=None, env={"GATEWAY_REMINDERS_SCHEDULE": "none"})
    assert settings.reminders.schedule == "none"


class TestRules:
    def test_schedules(self) -> None:
        assert parse_steps("7, -3,1") == (-3, 1, 7)
        assert parse_steps("none") == parse_steps("") == ()
        for bad in ("1,2,3,4", "1,1", "a", "1.5", "400", "-3;1"):
            with pytest.raises(ReminderError):
                parse_steps(bad)

    def test_a_due_date_is_checked_in_the_organisations_zone(self) -> None:
        # 23:30 on 4 January in New York is already the 5th in UTC.
        now = datetime(2027, 1, 5, 4, 30, tzinfo=UTC)
        base: dict[str, Any] = {
            "email": "a@example.com",
            "name": "A",
            "description": "",
            "currency": "usd",
            "items": ["Fee=10.00"],
            "ref": "",
            "valid_for": 86400.0,
            "max_valid_for": 366 * 86400,
            "now": now,
            "timezone": "America/New_York",
        }
        assert validate_new_link(**base, due="2027-01-04").due_date == date(2027, 1, 4)
        assert validate_new_link(**base, due="1d").due_date == date(2027, 1, 5)
        with pytest.raises(ValidationFailed) as refused:
            validate_new_link(**base, due="2027-01-06")  # the link ends on the 5th, local
        assert "due" in refused.value.errors

    def test_sending_hours(self) -> None:
        zone = ZoneInfo("Europe/Lisbon")
        nine, seven_pm = parse_clock("09:00"), parse_clock("19:00")

        def at(hour: int, minute: int = 0) -> datetime:
            return datetime(2027, 6, 1, hour, minute, tzinfo=zone)

        assert next_window(at(9), nine, seven_pm, zone) is None
        assert next_window(at(18, 59), nine, seven_pm, zone) is None
        assert next_window(at(7), nine, seven_pm, zone) == at(9)
        assert next_window(at(19), nine, seven_pm, zone) == at(9) + timedelta(days=1)
        with pytest.raises(ValueError, match="09:00"):
            parse_clock("9am")

    def test_why_a_step_is_skipped(self) -> None:
        now = datetime(2027, 1, 16, 10, tzinfo=UTC)
        fine = ReminderFacts(
            state=LinkState.PAYABLE,
            created_at=now - timedelta(days=10),
            owed_at=now - timedelta(hours=1),
            now=now,
            stopped=False,
            paused=False,
            paused_everywhere=False,
            bounced=False,
            refunded=False,
            last_press_at=None,
        )
        assert skip_reason(fine) is None
        cases = {
            "the link is paid": {"state": LinkState.PAID},
            "the link is processing": {"state": LinkState.PROCESSING},
            "the link is revoked": {"state": LinkState.REVOKED},
            "the link is expired": {"state": LinkState.EXPIRED},
            "a payment for the link was refunded": {"refunded": True},
            "the payer stopped reminders for this payment": {"stopped": True},
            "reminders are paused for this link": {"paused": True},
            "reminders are paused (reminders.paused)": {"paused_everywhere": True},
            "the payer's address was refused before": {"bounced": True},
            "the link was created less than 48 hours ago": {
                "created_at": now - timedelta(hours=47)
            },
            "the payer pressed Pay in the last 24 hours": {
                "last_press_at": now - timedelta(hours=23)
            },
            "the reminder was missed by more than 48 hours": {
                "owed_at": now - MISSED_AFTER - timedelta(seconds=1)
            },
        }
        for reason, change in cases.items():
            facts = dataclasses.replace(fine, **change)
            assert skip_reason(facts) == reason
