"""The settings page (issue 15 item 10) through the real app, on SQLite and PostgreSQL: admins
only (the page and the POST), every problem named next to its field with nothing saved, a save
stored, audited with the admin as actor and shown, and what takes effect when said."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from gateway.adapters.db.models import AuditEntry, OrgSetting
from gateway.web.keys import DATABASE, ORG_SETTINGS
from tests.console.support import ConsoleClient, ConsoleHarness

GOOD = {
    "org_name": "Riverside Hoops",
    "contact_email": "money@riverside.example",
    "timezone": "America/Sao_Paulo",
    "default_locale": "es",
    "reminder_schedule": "7,-3",
    "receipts": "off",
    "season_start": "8",
}


async def stored(console: ConsoleHarness) -> dict[str, str]:
    async with console.app[DATABASE].read() as session:
        rows = (await session.execute(sa.select(OrgSetting))).scalars().all()
        return {row.key: row.value for row in rows}


async def settings_audit(console: ConsoleHarness) -> list[AuditEntry]:
    async with console.app[DATABASE].read() as session:
        found = await session.execute(
            sa.select(AuditEntry).where(AuditEntry.action == "settings").order_by(AuditEntry.id)
        )
        return list(found.scalars())


def value_of(html: str, name: str) -> str:
    found = re.search(rf'<input id="{name}" name="{name}" type="\w+" value="([^"]*)"', html)
    assert found, name
    return found.group(1)


def selected(html: str, name: str) -> str:
    block = html.split(f'<select id="{name}"', 1)[1].split("</select>", 1)[0]
    found = re.search(r'<option value="([^"]+)"[^>]*selected', block)
    assert found, name
    return found.group(1)


class TestWhoMay:
    async def test_only_an_admin_sees_the_page(
        self, console: ConsoleHarness, treasurer: ConsoleClient, viewer: ConsoleClient
    ) -> None:
        for person in (treasurer, viewer):
            response = await person.get("/settings")
            assert response.status == 403
            assert "Your role does not allow this" in await response.text()
            assert 'href="/admin/settings"' not in await person.page("/")

    async def test_a_treasurers_post_is_refused_and_changes_nothing(
        self, console: ConsoleHarness, treasurer: ConsoleClient
    ) -> None:
        response = await treasurer.post("/settings", GOOD)
        assert response.status == 403
        assert await stored(console) == {}
        assert await settings_audit(console) == []

    async def test_a_post_without_the_csrf_token_is_refused(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        response = await admin.post("/settings", GOOD, csrf=False)
        assert response.status == 403
        assert await stored(console) == {}


class TestForm:
    async def test_the_form_shows_the_configured_values_and_when_each_takes_effect(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        html = await admin.page("/settings")
        settings = console.app[ORG_SETTINGS].current()
        assert value_of(html, "org_name") == settings.org_name
        assert value_of(html, "contact_email") == "treasurer@riverside.example"
        assert value_of(html, "reminder_schedule") == "-3,1,7"
        assert selected(html, "default_locale") == settings.default_locale
        assert selected(html, "season_start") == "9"
        assert 'id="receipts" name="receipts" value="on" checked' in html
        assert html.count("From the configuration file (config.toml).") == 7
        # receipts, reminder schedule, season: at once; organisation name and language: in
        # the console at once, payer pages at restart; contact and time zone: at restart.
        assert html.count("A change takes effect at once.") == 3
        assert html.count("A change shows in the console at once") == 2
        assert html.count("A change takes effect when the gateway restarts.") == 2
        assert '<option value="Europe/Lisbon">' in html  # the time zones offered

    async def test_a_save_is_stored_audited_and_shown(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        response = await admin.post("/settings", GOOD)
        assert response.status == 303
        assert response.headers["Location"] == "/admin/settings?notice=settings_saved"
        assert await stored(console) == {
            "org_name": '"Riverside Hoops"',
            "contact_email": '"money@riverside.example"',
            "timezone": '"America/Sao_Paulo"',
            "default_locale": '"es"',
            "reminder_schedule": '"-3,7"',
            "receipts": "false",
            "season_start": "8",
        }
        (entry,) = await settings_audit(console)
        assert entry.actor == "admin:admin@riverside.example"
        assert 'timezone: "UTC" → "America/Sao_Paulo"' in (entry.detail or "")
        assert "receipts: on → off" in (entry.detail or "")

        # The console now speaks the new default language to an account without its own.
        html = await admin.page("/settings?notice=settings_saved")
        assert '<html lang="es">' in html
        english = await admin.get(
            "/settings?notice=settings_saved", headers={"Accept-Language": "en"}
        )
        html = await english.text()
        assert "The settings have been saved." in html
        assert value_of(html, "org_name") == "Riverside Hoops"
        assert value_of(html, "reminder_schedule") == "-3,7"
        assert selected(html, "default_locale") == "es"
        assert selected(html, "season_start") == "8"
        assert 'id="receipts-off" name="receipts" value="off" checked' in html
        assert html.count("Set in the console by admin@riverside.example") == 7

    async def test_every_problem_is_named_next_to_its_field_and_nothing_is_saved(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        bad: dict[str, Any] = {
            **GOOD,
            "contact_email": "not an address",
            "timezone": "Mars/Olympus_Mons",
            "reminder_schedule": "soon",
            "receipts": "",
        }
        response = await admin.post("/settings", bad)
        assert response.status == 422
        html = await response.text()
        summary = html.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
        for name in ("contact_email", "timezone", "reminder_schedule", "receipts"):
            assert f'href="#{name}"' in summary
            assert f'id="{name}-error"' in html
        assert 'href="#org_name"' not in summary
        assert "Europe/Lisbon" in summary
        assert "<title>Error: Settings" in html
        # What was typed comes back, so it can be corrected.
        assert value_of(html, "timezone") == "Mars/Olympus_Mons"
        assert value_of(html, "org_name") == "Riverside Hoops"
        assert await stored(console) == {}
        assert await settings_audit(console) == []

    async def test_problems_are_named_in_the_admins_language(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        response = await admin.post(
            "/settings", {**GOOD, "org_name": ""}, headers={"Accept-Language": "es"}
        )
        assert response.status == 422
        assert response.headers["Content-Language"] == "es"

    async def test_a_field_missing_from_the_post_is_named(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        response = await admin.post("/settings", {"org_name": "Riverside Hoops"})
        assert response.status == 422
        html = await response.text()
        assert 'id="contact_email-error"' in html
        assert await stored(console) == {}

    async def test_the_overview_follows_the_season_at_once(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        saved = {**GOOD, "season_start": "1", "default_locale": "en"}
        assert (await admin.post("/settings", saved)).status == 303
        html = await admin.page("/")
        # FakeClock's today is 15 January 2027: a season from January is this calendar year.
        assert "January 1, 2027 to December 31, 2027" in html


class TestTakingEffect:
    async def test_receipts_and_the_reminder_schedule_follow_a_save_at_once(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        from gateway.web.keys import REMINDERS

        org = console.app[ORG_SETTINGS]
        await org.update(
            {"receipts": False, "reminder_schedule": "-1,2"}, actor="admin:admin@riverside.example"
        )

        rules = console.app[REMINDERS].rules
        assert rules._schedule() == "-1,2"
        assert org.current().receipts is False  # PayerNotices reads org.current().receipts

    async def test_the_console_shows_a_new_organisation_name_at_once(
        self, console: ConsoleHarness, admin: ConsoleClient
    ) -> None:
        await console.app[ORG_SETTINGS].update(
            {"org_name": "Riverside Hoops"}, actor="admin:admin@riverside.example"
        )

        html = await admin.page("/account")

        assert "<title>" in html and "- Riverside Hoops</title>" in html
