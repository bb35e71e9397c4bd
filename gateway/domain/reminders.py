"""Payment reminders (issue 14 item 3): a link's due date, its schedule of steps, when each step
is owed and whether it may still be sent. Standard library only; the scheduler
(``services.reminders``) and the composer (``services.messages.reminders``) apply these rules.

- A **due date** is a day in the organisation's time zone, given as an ISO date (``2027-01-15``)
  or as a duration from now like ``valid_for`` (``14d``, ``36h``: the local day that moment falls
  on). It may not be in the past, nor after the day the link's validity ends (the payer could
  not pay on it).
- A **schedule** is at most :data:`MAX_STEPS` distinct whole numbers of days relative to the due
  date (``-3,1,7``: three days before, one and seven after), or ``none``. A link that names none
  follows the configured default (``reminders.schedule``).
- Each step is owed on its **local day** at ``reminders.send_from``: computed from the local date
  (not by adding 24-hour days to an instant), so a change to or from daylight-saving time never
  moves a reminder to another day or hour.
- At send time a step is skipped when nobody should get it (:func:`skip_reason`), and deferred
  to the next ``send_from`` outside ``send_from``..``send_until`` (:func:`next_window`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from gateway.domain.checkout import LinkState
from gateway.domain.text import Text

MAX_STEPS: Final = 3
# A step further than a year from the due date is surely a typo.
MAX_STEP_DAYS: Final = 366
# Not sooner than this after the link was created (the payer just got the link).
NEW_LINK_QUIET: Final = timedelta(hours=48)
# Not when the payer pressed Pay this recently (a payment may be on its way).
RECENT_PRESS: Final = timedelta(hours=24)
# A step this late is skipped (and logged), never sent late.
MISSED_AFTER: Final = timedelta(hours=48)
# How far back the scheduler looks for owed steps: a step further back is missed anyway.
LOOKBACK: Final = MISSED_AFTER

NONE: Final = "none"
# A unit is required: a bare "14" would be 14 seconds for valid_for, surely not what was meant.
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# How a refused address reads in a stored error (gateway.adapters.mail's MailError): the
# server answered 5xx to the recipient, for good.
_REFUSED = re.compile(r"SMTPRecipientRefused\(5\d\d\b")


class ReminderError(ValueError):
    """A due date or schedule that cannot be used; ``message`` is a Text for people."""

    def __init__(self, message: Text) -> None:
        super().__init__(message)
        self.message = message


# --- the schedule -------------------------------------------------------------------------


def parse_steps(value: str) -> tuple[int, ...]:
    """``"-3,1,7"`` -> ``(-3, 1, 7)`` (sorted); ``"none"`` or empty -> ``()``."""
    text = value.strip()
    if text.lower() in ("", NONE):
        return ()
    parts = [part.strip() for part in text.split(",")]
    steps: list[int] = []
    for part in parts:
        if not re.fullmatch(r"[+-]?\d{1,4}", part):
            raise ReminderError(
                Text(
                    "expected whole numbers of days relative to the due date, separated by "
                    'commas (e.g. "-3,1,7"), or "none"; got %(given)s',
                    given=repr(value),
                )
            )
        steps.append(int(part))
    if len(steps) > MAX_STEPS:
        raise ReminderError(Text("at most %(count)s reminders", count=MAX_STEPS))
    if len(set(steps)) != len(steps):
        raise ReminderError(Text("each reminder day may be given once (%(given)s)", given=value))
    if any(abs(step) > MAX_STEP_DAYS for step in steps):
        raise ReminderError(
            Text("a reminder must be within %(days)s days of the due date", days=MAX_STEP_DAYS)
        )
    return tuple(sorted(steps))


def steps_text(steps: tuple[int, ...]) -> str:
    """How a schedule is stored and shown: ``"-3,1,7"``, or ``"none"``."""
    return ",".join(str(step) for step in steps) if steps else NONE


def link_steps(stored: str | None, default: str) -> tuple[int, ...]:
    """A link's steps: its own (``reminder_steps``), else the configured default."""
    return parse_steps(default if stored is None else stored)


# --- the due date -------------------------------------------------------------------------


def parse_due(value: str, now: datetime, zone: ZoneInfo) -> date:
    """An ISO date, or a duration from ``now`` (``14d``, ``2w``, ``36h``): its local day."""
    text = value.strip()
    match = _DURATION.match(text)
    if match:
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
        try:
            return (now + timedelta(seconds=seconds)).astimezone(zone).date()
        except OverflowError:  # "99999999999d": no calendar has that day
            raise ReminderError(
                Text("the due date %(given)s is too far away", given=repr(value))
            ) from None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReminderError(
            Text(
                "expected a date like 2027-01-15 or a duration with its unit like 14d, got "
                "%(given)s",
                given=repr(value),
            )
        ) from None


def check_due(due: date, *, now: datetime, valid_until: datetime, zone: ZoneInfo) -> None:
    """A due date the payer can pay on: today or later, and not after the link's last day."""
    today = now.astimezone(zone).date()
    last_day = valid_until.astimezone(zone).date()
    if due < today:
        raise ReminderError(
            Text(
                "the due date %(due)s is in the past (today is %(today)s)",
                due=due.isoformat(),
                today=today.isoformat(),
            )
        )
    if due > last_day:
        raise ReminderError(
            Text(
                "the due date %(due)s is after the link stops working (%(last)s): give an "
                "earlier due date or a longer validity",
                due=due.isoformat(),
                last=last_day.isoformat(),
            )
        )


def check_fields(
    due: str | None,
    reminders: str | None,
    *,
    now: datetime | None,
    timezone: str,
    valid_for: float,
    errors: dict[str, str],
) -> tuple[date | None, str | None]:
    """A new link's ``due`` and ``reminders`` as given (None or empty: not given), checked;
    problems go into ``errors`` under those names. Returns the due date and the schedule to
    store (``"-3,1,7"``, ``"none"``, or None: the configured default).

    A schedule needs a due date (except ``none``). A step of the link's own schedule may not
    fall after the day the link stops working (the payer could not pay from that reminder);
    the configured default is not held to that (its late steps are simply not sent)."""
    due_date: date | None = None
    steps: tuple[int, ...] | None = None
    if reminders is not None and reminders.strip():
        try:
            steps = parse_steps(reminders)
        except ReminderError as exc:
            errors.setdefault("reminders", exc.message)
    if due is None or not due.strip():
        if steps:
            errors.setdefault("reminders", Text("reminders need a due date"))
        return None, None if steps is None else steps_text(steps)
    if now is None:
        raise TypeError("a due date is checked against the current time: pass now")
    zone = ZoneInfo(timezone)
    try:
        valid_until = now + timedelta(seconds=valid_for)
    except OverflowError:  # a validity no calendar holds: refused as valid_for already
        return None, None
    try:
        due_date = parse_due(due, now, zone)
        check_due(due_date, now=now, valid_until=valid_until, zone=zone)
    except ReminderError as exc:
        errors.setdefault("due", exc.message)
        return None, None
    last_day = valid_until.astimezone(zone).date()
    for step in steps or ():
        day = step_day(due_date, step)
        if day > last_day:
            signed = format(step, "+d")  # "+7": days after the due date
            errors.setdefault(
                "reminders",
                Text(
                    "the reminder on %(day)s (%(step)s days from the due date) comes after the "
                    "link stops working (%(last)s)",
                    day=day.isoformat(),
                    step=signed,
                    last=last_day.isoformat(),
                ),
            )
            break
    return due_date, None if steps is None else steps_text(steps)


# --- when a step is owed ------------------------------------------------------------------


def parse_clock(value: str) -> time:
    """``"09:00"`` -> 09:00 (24-hour ``HH:MM``)."""
    match = _CLOCK.match(value.strip())
    if not match:
        raise ValueError(f"expected a time of day like 09:00, got {value!r}")
    return time(int(match[1]), int(match[2]))


def step_day(due: date, step: int) -> date:
    return due + timedelta(days=step)


def local_moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``at`` on the local ``day`` (whatever that day's UTC offset), as an aware UTC instant."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def next_window(
    now: datetime, send_from: time, send_until: time, zone: ZoneInfo
) -> datetime | None:
    """None inside the sending hours (``send_from`` <= local time < ``send_until``); else the
    next ``send_from``: today's before it, tomorrow's after ``send_until``."""
    local = now.astimezone(zone)
    if send_from <= local.time() < send_until:
        return None
    day = local.date() if local.time() < send_from else local.date() + timedelta(days=1)
    return local_moment(day, send_from, zone)


def address_refused(error: str | None) -> bool:
    """Whether a stored send error says the server refused the address for good (a bounce)."""
    return bool(error) and _REFUSED.search(error or "") is not None


# --- whether a step may go ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReminderFacts:
    """What is known about a link when one of its steps is about to be sent (one read)."""

    state: LinkState
    created_at: datetime
    owed_at: datetime  # the step's local day at send_from
    now: datetime
    stopped: bool  # the payer pressed "stop reminders"
    paused: bool  # an admin paused this link's reminders
    paused_everywhere: bool  # reminders.paused
    bounced: bool  # the address was refused before
    refunded: bool  # a payment was made and refunded: nothing is owed that a reminder can ask
    last_press_at: datetime | None  # the newest order (a Pay press)


def skip_reason(facts: ReminderFacts) -> Text | None:
    """Why this step must not be sent (None: it may). Reasons are for the admin (the outbox
    row keeps the English, ``reminders preview`` shows them in the reader's language), in the
    order an admin would look for them."""
    if facts.state is not LinkState.PAYABLE:
        return Text("the link is %(state)s", state=facts.state.value)
    if facts.refunded:
        return Text("a payment for the link was refunded")
    if facts.stopped:
        return Text("the payer stopped reminders for this payment")
    if facts.paused:
        return Text("reminders are paused for this link")
    if facts.paused_everywhere:
        return Text("reminders are paused (reminders.paused)")
    if facts.bounced:
        return Text("the payer's address was refused before")
    if facts.now - facts.created_at < NEW_LINK_QUIET:
        return Text("the link was created less than 48 hours ago")
    if facts.last_press_at is not None and facts.now - facts.last_press_at < RECENT_PRESS:
        return Text("the payer pressed Pay in the last 24 hours")
    if facts.now - facts.owed_at > MISSED_AFTER:
        return Text("the reminder was missed by more than 48 hours")
    return None


def subject_of(link_id: str, step: int) -> str:
    """The outbox subject of a step: one row per (link, step), whoever schedules it."""
    return f"{link_id}:{step}"
