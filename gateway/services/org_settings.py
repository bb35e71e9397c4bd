"""The organisation's settings an admin changes in the console (issue 15 item 10), stored in the
``org_settings`` table (one row per key, a JSON value) and overriding ``config.toml``.

What can be changed (:data:`KEYS`), and the config value each overrides:

============================  =====================================================
``org_name``                  ``checkout.org_name``
``contact_email``             ``checkout.contact_email``
``timezone``                  ``checkout.timezone`` (an IANA zone, checked with zoneinfo)
``default_locale``            ``checkout.default_locale`` (one of ``domain.locales.OFFERED``)
``reminder_schedule``         ``reminders.schedule`` (read as ``domain.reminders.parse_steps``)
``receipts``                  ``email.receipts``
``season_start``              none: the month the organisation's season starts (1-12,
                              default :data:`DEFAULT_SEASON_START`, September), for the
                              overview's "this season" figures
============================  =====================================================

A key with no row takes the config's value; a row an admin wrote wins. Rows are never deleted:
setting a key back to the config's value writes that value.

:meth:`OrgSettings.current` is what every reader uses: the values as last loaded, without a
database round trip (config values until the first :meth:`OrgSettings.load`).
:meth:`OrgSettings.update` validates every change at once (:class:`ValidationFailed` naming each
field and changing nothing), writes the rows and one audit entry (action ``settings``, detail
``key: old → new`` per key changed) in one transaction, and takes effect in this process at
once. Another replica sees it at its next :meth:`OrgSettings.refresh` (the app's periodic task
calls it every :data:`REFRESH_INTERVAL`; :meth:`OrgSettings.fresh` refreshes when the last load
is older than that, for a page that wants to show what is stored).

At start a process builds its services from :func:`effective_settings` (``gateway serve`` from
:func:`stored_settings`, before the app exists, so the payer pages' name, contact, time zone and
language are the console's too): a change reaches what is read from ``Settings`` at the next
start. Which values reach their readers at once and which only after a restart is
:data:`TAKES_EFFECT` (the settings page says it next to each field).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import sqlalchemy as sa

from gateway.adapters.db.dialects import ByDialect, upsert
from gateway.adapters.db.engine import Database, create_database
from gateway.adapters.db.models import AuditEntry, OrgSetting
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.errors import ValidationFailed
from gateway.domain.links import text_problem
from gateway.domain.locales import OFFERED, offered
from gateway.domain.reminders import ReminderError, parse_steps, steps_text
from gateway.domain.text import Text

log = logging.getLogger(__name__)

KEYS: Final = (
    "org_name",
    "contact_email",
    "timezone",
    "default_locale",
    "reminder_schedule",
    "receipts",
    "season_start",
)
# The season runs from the first day of this month to the day before it a year later
# (September: 1 September to 31 August), in the organisation's time zone.
DEFAULT_SEASON_START: Final = 9
# How stale another replica's change may be here (the app's periodic refresh).
REFRESH_INTERVAL: Final = 30.0
MAX_NAME = 200
MAX_EMAIL = 320
AUDIT_ACTION: Final = "settings"

# When a change reaches each reader. "now": at once in this process (other replicas within
# REFRESH_INTERVAL); "restart": read once when the gateway starts. Kept in step with the
# wiring (gateway.wiring, gateway.app); the settings page shows it.
NOW: Final = "now"
RESTART: Final = "restart"
# At once in the console; payers' pages and emails (rendered from templates compiled at start,
# and cached) when the gateway restarts.
CONSOLE_NOW: Final = "console_now"
TAKES_EFFECT: Final[Mapping[str, str]] = {
    "org_name": CONSOLE_NOW,
    "contact_email": RESTART,
    "timezone": RESTART,
    "default_locale": CONSOLE_NOW,
    "reminder_schedule": NOW,  # ReminderRules reads it per decision
    "receipts": NOW,  # PayerNotices reads it per payment
    "season_start": NOW,
}

_EMAIL = re.compile(r"[^@\s<>,;\"]{1,64}@[^@\s<>,;\"]+\.[^@\s<>,;\"]{2,}")
_MONTH = re.compile(r"\s*(\d{1,2})\s*")

_UPSERT: ByDialect = upsert(
    OrgSetting.__table__,  # type: ignore[arg-type]
    index_elements=[OrgSetting.key],  # type: ignore[list-item]
    set_=lambda excluded: {
        "value": excluded.value,
        "updated_at": excluded.updated_at,
        "updated_by": excluded.updated_by,
    },
)


@dataclass(frozen=True, slots=True)
class OrgValues:
    """The effective values: a row an admin wrote, else the config's."""

    org_name: str
    contact_email: str
    timezone: str
    default_locale: str
    reminder_schedule: str  # canonical: "-3,1,7" or "none"
    receipts: bool
    season_start: int  # 1-12

    def get(self, key: str) -> Any:
        return getattr(self, key)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Stored:
    """Who last changed a key in the console, and when."""

    at: datetime
    by: str


@dataclass(frozen=True, slots=True)
class SettingsView:
    values: OrgValues
    # Keys whose value comes from the console (the rest: config.toml), with who changed them.
    stored: Mapping[str, Stored]
    # What config.toml says, for "the configured value is ...".
    configured: OrgValues


def configured(settings: Settings) -> OrgValues:
    """The values config.toml (and the environment) give."""
    return OrgValues(
        org_name=settings.checkout.org_name,
        contact_email=settings.checkout.contact_email,
        timezone=settings.checkout.timezone,
        default_locale=settings.checkout.default_locale,
        reminder_schedule=_canonical_schedule(settings.reminders.schedule),
        receipts=settings.email.receipts,
        season_start=DEFAULT_SEASON_START,
    )


def _canonical_schedule(value: str) -> str:
    try:
        return steps_text(parse_steps(value))
    except ReminderError:  # config.py checked it; a value that fails here is left as given
        return value


@cache
def known_zones() -> frozenset[str]:
    """Every IANA zone this system knows (read once: it lists the zone files)."""
    return frozenset(available_timezones()) | {"UTC"}


def zone_names() -> list[str]:
    """For the settings page's suggestions, sorted."""
    return sorted(known_zones())


# --- validation (pure: one value in, the stored value or a Text out) ------------------------


def _as_text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(Text("expected text"))
    return str(value).strip()


def _org_name(value: object) -> str:
    text = _as_text(value)
    if not text:
        raise ValueError(Text("enter the organisation's name"))
    if len(text) > MAX_NAME:
        raise ValueError(Text("at most %(count)s characters", count=MAX_NAME))
    problem = text_problem(text)
    if problem:
        raise ValueError(problem)
    return text


def _contact_email(value: object) -> str:
    text = _as_text(value)
    if not text:
        raise ValueError(Text("enter the email address payers can write to"))
    if len(text) > MAX_EMAIL or not _EMAIL.fullmatch(text) or text_problem(text):
        raise ValueError(
            Text(
                "enter an email address such as treasurer@example.org (got %(given)s)",
                given=repr(text[:80]),
            )
        )
    return text


def _timezone(value: object) -> str:
    text = _as_text(value)
    problem = Text(
        "expected a time zone name such as Europe/Lisbon or America/Sao_Paulo, got %(given)s",
        given=repr(text[:80]),
    )
    if not text or len(text) > 64 or text not in known_zones():
        raise ValueError(problem)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(problem) from None
    return text


def _default_locale(value: object) -> str:
    text = _as_text(value)
    found = offered(text)
    if found is None:
        raise ValueError(
            Text(
                "expected one of %(offered)s, got %(given)s",
                offered=", ".join(OFFERED),
                given=repr(text[:40]),
            )
        )
    return found


def _reminder_schedule(value: object) -> str:
    text = _as_text(value)
    if len(text) > 64:
        raise ValueError(Text("at most %(count)s characters", count=64))
    try:
        return steps_text(parse_steps(text))
    except ReminderError as exc:
        raise ValueError(exc.message) from None


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _receipts(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(Text("expected on or off"))


def _season_start(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(Text("expected a month, 1 to 12"))
    if isinstance(value, int):
        month = value
    else:
        match = _MONTH.fullmatch(str(value)) if isinstance(value, str) else None
        if match is None:
            raise ValueError(Text("expected a month, 1 to 12"))
        month = int(match[1])
    if not 1 <= month <= 12:
        raise ValueError(Text("expected a month, 1 to 12"))
    return month


_PARSERS: Final = {
    "org_name": _org_name,
    "contact_email": _contact_email,
    "timezone": _timezone,
    "default_locale": _default_locale,
    "reminder_schedule": _reminder_schedule,
    "receipts": _receipts,
    "season_start": _season_start,
}


def validate(changes: Mapping[str, object]) -> dict[str, Any]:
    """Each given key's value as it is stored; raises :class:`ValidationFailed` naming every
    field that is wrong (an unknown key is wrong too), so nothing is half-applied."""
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for key, value in changes.items():
        parser = _PARSERS.get(key)
        if parser is None:
            errors[str(key)[:64]] = Text("not a setting (known: %(known)s)", known=", ".join(KEYS))
            continue
        try:
            parsed[key] = parser(value)
        except ValueError as exc:
            message = exc.args[0] if exc.args else Text("not a valid value")
            errors[key] = message if isinstance(message, str) else Text("not a valid value")
    if errors:
        raise ValidationFailed(errors)
    return parsed


def _shown(value: object) -> str:
    """A value as the audit detail writes it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return json.dumps(value, ensure_ascii=False)


def _from_rows(base: OrgValues, rows: Mapping[str, str]) -> OrgValues:
    """``base`` with each stored row that still reads as a valid value (a row written by hand
    that does not is logged and ignored, never a failed start)."""
    overrides: dict[str, Any] = {}
    for key, raw in rows.items():
        parser = _PARSERS.get(key)
        if parser is None:
            continue
        try:
            overrides[key] = parser(json.loads(raw))
        except (ValueError, TypeError):
            log.warning("ignoring an unreadable stored setting", extra={"key": key})
    return dataclasses.replace(base, **overrides)


async def effective_settings(db: Database, settings: Settings) -> Settings:
    """``settings`` with the stored values in place of the config's: what a process builds its
    services from at start (``gateway.app``'s service context, ``gateway.runtime``), so every
    reader of ``Settings`` follows the console's values from its next start."""
    try:
        async with db.read() as session:
            rows = (await session.execute(sa.select(OrgSetting.key, OrgSetting.value))).all()
    except (sa.exc.DBAPIError, OSError) as exc:
        # Not migrated yet (nothing was ever stored), or not reachable: what is wrong with the
        # database is for the start that follows to say.
        log.warning(
            "the console's settings could not be read; starting with config.toml's",
            extra={"error": type(exc).__name__},
        )
        return settings
    values = _from_rows(configured(settings), {row.key: row.value for row in rows})
    return _overlay(settings, values)


async def stored_settings(settings: Settings) -> Settings:
    """:func:`effective_settings` for a process that has no database open yet (``gateway
    serve``, before it builds the app: the payer pages' name, contact, time zone and language are
    set when the app is built). A database not migrated yet (no ``org_settings`` table: nothing
    was ever stored) or not reachable gives the config as it is; the app's start then migrates
    it, or says what is wrong with it."""
    db = create_database(settings.database.url, pool_size=1)
    try:
        return await effective_settings(db, settings)
    finally:
        await db.dispose()


def _overlay(settings: Settings, values: OrgValues) -> Settings:
    return settings.replace(
        checkout=dataclasses.replace(
            settings.checkout,
            org_name=values.org_name,
            contact_email=values.contact_email,
            timezone=values.timezone,
            default_locale=values.default_locale,
        ),
        reminders=dataclasses.replace(settings.reminders, schedule=values.reminder_schedule),
        email=dataclasses.replace(settings.email, receipts=values.receipts),
    )


class OrgSettings:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self._db = db
        self._clock = clock
        self._configured = configured(settings)
        self._values = self._configured
        self._stored: dict[str, Stored] = {}
        self._loaded_at: float | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def current(self) -> OrgValues:
        """The effective values as last loaded (no database round trip)."""
        return self._values

    def view(self) -> SettingsView:
        return SettingsView(self._values, dict(self._stored), self._configured)

    @property
    def loaded(self) -> bool:
        return self._loaded_at is not None

    async def load(self) -> OrgValues:
        """Read the stored settings (at start, and to pick up another replica's change)."""
        async with self._db.read() as session:
            rows = (await session.execute(sa.select(OrgSetting))).scalars().all()
        self._apply({row.key: row.value for row in rows}, rows)
        return self._values

    async def refresh(self) -> OrgValues:
        return await self.load()

    async def fresh(self) -> OrgValues:
        """The values, reloaded when the last load is older than :data:`REFRESH_INTERVAL`."""
        if self._loaded_at is None or self._clock.now() - self._loaded_at >= REFRESH_INTERVAL:
            return await self.load()
        return self._values

    def _apply(self, raw: Mapping[str, str], rows: Any) -> None:
        self._values = _from_rows(self._configured, raw)
        self._stored = {
            row.key: Stored(row.updated_at, row.updated_by) for row in rows if row.key in _PARSERS
        }
        self._loaded_at = self._clock.now()

    async def update(self, changes: Mapping[str, object], *, actor: str) -> list[str]:
        """Validate every change, then store those that change something and audit them (one
        entry). Returns the keys changed (empty: nothing to do, nothing written)."""
        parsed = validate(changes)
        now = self.now()
        async with self._db.write() as session:
            rows = (await session.execute(sa.select(OrgSetting))).scalars().all()
            raw = {row.key: row.value for row in rows}
            before = _from_rows(self._configured, raw)
            changed: list[str] = [
                key for key in KEYS if key in parsed and parsed[key] != before.get(key)
            ]
            if changed:
                await session.execute(
                    _UPSERT.pick(session),
                    [
                        {
                            "key": key,
                            "value": json.dumps(parsed[key], ensure_ascii=False),
                            "updated_at": now,
                            "updated_by": actor,
                        }
                        for key in changed
                    ],
                )
                session.add(
                    AuditEntry(
                        at=now,
                        link_id=None,
                        action=AUDIT_ACTION,
                        actor=actor,
                        detail="; ".join(
                            f"{key}: {_shown(before.get(key))} → {_shown(parsed[key])}"
                            for key in changed
                        ),
                    )
                )
        if changed:
            log.info("settings changed", extra={"keys": ",".join(changed)})
        await self.load()
        return changed

    def overlay(self, settings: Settings) -> Settings:
        """``settings`` with the effective values in place of the config's (for a reader built
        from a ``Settings``: the checkout, reminders and email sections)."""
        return _overlay(settings, self._values)
