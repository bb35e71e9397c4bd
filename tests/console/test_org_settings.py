"""The organisation's settings an admin changes in the console (issue 15 item 10), on SQLite and
PostgreSQL: effective values (a stored row wins over config.toml), validation that names every
problem and writes nothing, one audit entry per change naming old and new values, another
replica picking the change up on refresh."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.adapters.db.engine import Database, create_database
from gateway.adapters.db.models import AuditEntry, OrgSetting
from gateway.config import Settings
from gateway.dev.clock import FakeClock
from gateway.domain.errors import ValidationFailed
from gateway.services.org_settings import (
    DEFAULT_SEASON_START,
    KEYS,
    REFRESH_INTERVAL,
    TAKES_EFFECT,
    OrgSettings,
    configured,
    effective_settings,
    stored_settings,
    validate,
)
from tests.outbox.support import db

__all__ = ["db"]

ADMIN = "admin:ana@riverside.example"


def config() -> Settings:
    base = Settings()
    return base.replace(
        checkout=dataclasses.replace(
            base.checkout,
            org_name="Riverside Youth Basketball",
            contact_email="treasurer@riverside.example",
            timezone="Europe/Lisbon",
            default_locale="en",
        ),
        reminders=dataclasses.replace(base.reminders, schedule="7, 1,-3"),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def org(db: Database, clock: FakeClock) -> OrgSettings:
    return OrgSettings(db, clock, config())


async def rows(db: Database) -> dict[str, str]:
    async with db.read() as session:
        found = (await session.execute(sa.select(OrgSetting))).scalars().all()
        return {row.key: row.value for row in found}


async def trail(db: Database) -> list[AuditEntry]:
    async with db.read() as session:
        found = await session.execute(
            sa.select(AuditEntry).where(AuditEntry.action == "settings").order_by(AuditEntry.id)
        )
        return list(found.scalars())


class TestValidation:
    @pytest.mark.parametrize(
        ("key", "given", "stored"),
        [
            ("org_name", "  Riverside Hoops  ", "Riverside Hoops"),
            ("contact_email", "money@riverside.example", "money@riverside.example"),
            ("timezone", "America/Sao_Paulo", "America/Sao_Paulo"),
            ("timezone", "UTC", "UTC"),
            ("default_locale", "pt-br", "pt-BR"),
            ("default_locale", "es", "es"),
            # Read exactly as reminders.schedule is read (domain.reminders.parse_steps).
            ("reminder_schedule", "7,1, -3", "-3,1,7"),
            ("reminder_schedule", "none", "none"),
            ("reminder_schedule", "", "none"),
            ("receipts", "off", False),
            ("receipts", "on", True),
            ("receipts", True, True),
            ("season_start", "1", 1),
            ("season_start", 12, 12),
        ],
    )
    def test_a_good_value_is_stored_in_its_canonical_form(
        self, key: str, given: object, stored: object
    ) -> None:
        assert validate({key: given}) == {key: stored}

    @pytest.mark.parametrize(
        ("key", "given", "says"),
        [
            ("org_name", "   ", "enter the organisation's name"),
            ("org_name", "x" * 201, "at most 200 characters"),
            ("org_name", "Riverside\x00", "control characters"),
            ("contact_email", "", "enter the email address"),
            ("contact_email", "treasurer", "treasurer@example.org"),
            ("contact_email", "a@example.org\r\nBcc: x@example.org", "email address"),
            ("timezone", "Mars/Olympus_Mons", "Europe/Lisbon"),
            ("timezone", "../../etc/passwd", "time zone"),
            ("timezone", "", "time zone"),
            ("default_locale", "de", "en, es, pt-BR, fr"),
            ("reminder_schedule", "tomorrow", "whole numbers of days"),
            ("reminder_schedule", "1,2,3,4", "at most 3 reminders"),
            ("reminder_schedule", "1,1", "once"),
            ("receipts", "maybe", "on or off"),
            ("season_start", "13", "1 to 12"),
            ("season_start", "September", "1 to 12"),
        ],
    )
    def test_a_bad_value_is_named_with_what_is_expected(
        self, key: str, given: object, says: str
    ) -> None:
        with pytest.raises(ValidationFailed) as caught:
            validate({key: given})
        assert list(caught.value.errors) == [key]
        assert says in caught.value.errors[key]

    def test_every_problem_is_named_at_once_and_unknown_keys_too(self) -> None:
        with pytest.raises(ValidationFailed) as caught:
            validate({"timezone": "Nowhere", "receipts": "perhaps", "colour": "blue"})
        assert set(caught.value.errors) == {"timezone", "receipts", "colour"}

    def test_every_key_says_when_it_takes_effect(self) -> None:
        assert set(TAKES_EFFECT) == set(KEYS)
        assert set(TAKES_EFFECT.values()) <= {"now", "console_now", "restart"}


class TestStored:
    async def test_without_rows_the_config_values_are_in_effect(
        self, org: OrgSettings, db: Database
    ) -> None:
        assert org.current() == configured(config())
        await org.load()
        values = org.current()
        assert values.org_name == "Riverside Youth Basketball"
        assert values.reminder_schedule == "-3,1,7"
        assert values.receipts is True
        assert values.season_start == DEFAULT_SEASON_START
        assert org.view().stored == {}

    async def test_a_change_is_stored_audited_and_in_effect_at_once(
        self, org: OrgSettings, db: Database, clock: FakeClock
    ) -> None:
        await org.load()
        changed = await org.update(
            {
                "org_name": "Riverside Hoops",
                "timezone": "America/Sao_Paulo",
                "receipts": "off",
                # Unchanged: not written, not in the audit.
                "default_locale": "en",
                "reminder_schedule": "-3, 7, 1",
            },
            actor=ADMIN,
        )
        assert changed == ["org_name", "timezone", "receipts"]
        values = org.current()
        assert (values.org_name, values.timezone, values.receipts) == (
            "Riverside Hoops",
            "America/Sao_Paulo",
            False,
        )
        assert await rows(db) == {
            "org_name": '"Riverside Hoops"',
            "timezone": '"America/Sao_Paulo"',
            "receipts": "false",
        }
        (entry,) = await trail(db)
        assert entry.actor == ADMIN
        assert entry.link_id is None
        assert entry.at == datetime.fromtimestamp(clock.now(), UTC)
        assert entry.detail == (
            'org_name: "Riverside Youth Basketball" → "Riverside Hoops"; '
            'timezone: "Europe/Lisbon" → "America/Sao_Paulo"; receipts: on → off'
        )
        stored = org.view().stored
        assert set(stored) == {"org_name", "timezone", "receipts"}
        assert stored["receipts"].by == ADMIN

    async def test_a_refused_change_writes_nothing(self, org: OrgSettings, db: Database) -> None:
        await org.load()
        with pytest.raises(ValidationFailed) as caught:
            await org.update(
                {"org_name": "Riverside Hoops", "contact_email": "not-an-address"}, actor=ADMIN
            )
        assert list(caught.value.errors) == ["contact_email"]
        assert await rows(db) == {}
        assert await trail(db) == []
        assert org.current().org_name == "Riverside Youth Basketball"

    async def test_saving_the_same_values_again_writes_nothing(
        self, org: OrgSettings, db: Database
    ) -> None:
        await org.update({"season_start": "8"}, actor=ADMIN)
        assert (
            await org.update(
                {"season_start": 8, "org_name": "Riverside Youth Basketball"}, actor=ADMIN
            )
            == []
        )
        assert len(await trail(db)) == 1
        # Back to the configured value: stored (rows are never deleted), and audited.
        assert await org.update({"season_start": 9}, actor=ADMIN) == ["season_start"]
        assert (await rows(db))["season_start"] == "9"
        assert [e.detail for e in await trail(db)] == ["season_start: 9 → 8", "season_start: 8 → 9"]

    async def test_another_replica_sees_the_change_when_it_refreshes(
        self, org: OrgSettings, db: Database, clock: FakeClock
    ) -> None:
        other = OrgSettings(db, clock, config())
        await other.load()
        await org.update({"default_locale": "es"}, actor=ADMIN)
        assert other.current().default_locale == "en"  # not yet: no round trip per read
        await other.fresh()
        assert other.current().default_locale == "en"  # loaded less than a refresh ago
        clock.advance(REFRESH_INTERVAL)
        await other.fresh()
        assert other.current().default_locale == "es"
        await org.update({"default_locale": "fr"}, actor=ADMIN)
        await other.refresh()
        assert other.current().default_locale == "fr"

    async def test_a_row_written_by_hand_that_does_not_read_is_ignored(
        self, org: OrgSettings, db: Database, clock: FakeClock
    ) -> None:
        now = datetime.fromtimestamp(clock.now(), UTC)
        async with db.write() as session:
            for key, value in (
                ("timezone", '"Mars/Olympus"'),
                ("receipts", "not json"),
                ("someone_elses", '"x"'),
                ("org_name", '"By Hand FC"'),
            ):
                session.add(OrgSetting(key=key, value=value, updated_at=now, updated_by="psql"))
        values = await org.load()
        assert values.timezone == "Europe/Lisbon"
        assert values.receipts is True
        assert values.org_name == "By Hand FC"

    async def test_overlay_gives_the_effective_values_to_readers_of_settings(
        self, org: OrgSettings
    ) -> None:
        await org.update(
            {
                "contact_email": "money@riverside.example",
                "reminder_schedule": "1",
                "receipts": False,
                "default_locale": "fr",
                "timezone": "Asia/Tokyo",
            },
            actor=ADMIN,
        )
        settings = org.overlay(config())
        assert settings.checkout.contact_email == "money@riverside.example"
        assert settings.checkout.default_locale == "fr"
        assert settings.checkout.timezone == "Asia/Tokyo"
        assert settings.reminders.schedule == "1"
        assert settings.email.receipts is False
        assert settings.checkout.org_name == "Riverside Youth Basketball"


class TestAtStart:
    async def test_a_process_starting_builds_its_services_from_the_stored_values(
        self, org: OrgSettings, db: Database
    ) -> None:
        await org.update({"org_name": "Riverside Hoops", "receipts": "off"}, actor=ADMIN)
        settings = await effective_settings(db, config())
        assert settings.checkout.org_name == "Riverside Hoops"
        assert settings.email.receipts is False
        # What nobody changed in the console stays as configured.
        assert settings.checkout.timezone == "Europe/Lisbon"
        assert settings.reminders.schedule == "-3,1,7"
        assert settings.stripe == config().stripe

    async def test_without_stored_values_the_config_is_unchanged(self, db: Database) -> None:
        settings = await effective_settings(db, config())
        assert settings.checkout == config().checkout
        assert settings.email == config().email

    async def test_serve_reads_them_before_it_builds_the_app(
        self, org: OrgSettings, db: Database, database_url: str
    ) -> None:
        await org.update({"contact_email": "money@riverside.example"}, actor=ADMIN)
        base = config()
        base = base.replace(database=dataclasses.replace(base.database, url=database_url))
        settings = await stored_settings(base)
        assert settings.checkout.contact_email == "money@riverside.example"

    async def test_a_database_not_migrated_yet_gives_the_config(self, tmp_path: Path) -> None:
        base = config()
        url = f"sqlite+aiosqlite:///{tmp_path}/fresh.sqlite3"
        base = base.replace(database=dataclasses.replace(base.database, url=url))
        assert await stored_settings(base) == base

    async def test_a_runtime_on_a_database_not_migrated_gets_the_config(
        self, tmp_path: Path
    ) -> None:
        database = create_database(f"sqlite+aiosqlite:///{tmp_path}/bare.sqlite3")
        try:
            assert await effective_settings(database, config()) == config()
        finally:
            await database.dispose()
