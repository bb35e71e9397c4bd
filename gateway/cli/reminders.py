"""``gateway reminders preview|pause|resume`` (issue 14 item 3), and the ``--due`` and
``--reminders`` options of ``gateway links create``.

``preview --date YYYY-MM-DD``: every reminder step that falls on that day (organisation's time
zone), as of that day's ``reminders.send_from`` (or now, when that is past): who would get it,
and who would not and why (paid, paused, stopped by the payer, created less than 48 hours
before...), with the outbox row's state when the step was owed already. It reads only.

``pause ID`` / ``resume ID``: one link's reminders (the admin API's
``POST /admin/api/links/{id}/reminders``); ``reminders.paused`` in the config pauses them all.
"""

from __future__ import annotations

import argparse
import re
from datetime import date
from typing import Any

from gateway.cli.common import ACTOR, CliError, cli_locale, print_json, print_table
from gateway.config import Settings
from gateway.i18n import localize, translate
from gateway.i18n.catalogs import N_
from gateway.runtime import open_runtime
from gateway.services.reminders import PreviewRow

_STEPS_LIKE = re.compile(r"^-\d[\d,\s+-]*$")


def add_reminder_arguments(parser: argparse.ArgumentParser) -> None:
    """``links create``'s options (validated by gateway.domain.reminders)."""
    parser.add_argument(
        "--due",
        help="the day payment is due: 2027-01-15, or a duration from now like --valid-for (14d),"
        " in checkout.timezone; today or later, not after the link stops working. "
        "Without it, no reminders",
    )
    parser.add_argument(
        "--reminders",
        metavar='"-3,1,7"|none',
        help="reminder days relative to the due date (at most 3, distinct; -3 is three days "
        "before), or none. Default: reminders.schedule from the config",
    )
    # argparse reads "-3,1,7" as an unknown option (only "-3" looks like a number to it), so
    # `--reminders "-3,1,7"` would fail; this parser has no option that looks like a number.
    parser._negative_number_matcher = _STEPS_LIKE


# The labels of reminder_fields' lines, for the catalogs (callers translate them).
LABELS = (N_("due"), N_("reminders"))


def reminder_fields(locale: str, data: dict[str, Any], settings: Settings) -> list[tuple[str, str]]:
    """``links create``/``show``'s lines for the due date and the schedule, keyed ``due`` and
    ``reminders`` (none without a due date); with whether they are paused or stopped."""
    if not data.get("due"):
        return []
    steps = data.get("reminders")
    if steps is None:
        schedule = translate(locale, "%(steps)s (the configured default)") % {
            "steps": settings.reminders.schedule
        }
    else:
        schedule = steps
    if data.get("reminders_stopped_at"):
        schedule += "; " + translate(locale, "stopped by the payer on %(at)s") % {
            "at": data["reminders_stopped_at"]
        }
    elif data.get("reminders_paused"):
        schedule += "; " + translate(locale, "paused")
    return [("due", data["due"]), ("reminders", schedule)]


def preview_json(row: PreviewRow) -> dict[str, Any]:
    return {
        "link_id": row.link_id,
        "ref": row.ref,
        "email": row.email,
        "step": row.step,
        "due": row.due.isoformat(),
        "owed_at": row.owed_at.isoformat(timespec="seconds"),
        "send": row.skipped is None,
        "skipped": row.skipped,
        "row_state": row.row_state,
    }


async def reminders_preview(settings: Settings, args: argparse.Namespace) -> None:
    try:
        day = date.fromisoformat(args.date)
    except ValueError:
        raise CliError(f"--date: expected a date like 2027-01-15, got {args.date!r}") from None
    async with open_runtime(settings) as rt:
        rows = await rt.services.reminders.preview(day)
    if args.json:
        print_json({"date": day.isoformat(), "reminders": [preview_json(r) for r in rows]})
        return
    locale = cli_locale(settings)
    if settings.reminders.paused:
        print(translate(locale, "Reminders are paused (reminders.paused): none would be sent."))
    send = translate(locale, "send")
    print_table(
        [
            [
                r.link_id,
                r.ref,
                r.email,
                f"{r.step:+d}",
                r.due.isoformat(),
                send if r.skipped is None else translate(locale, "skip"),
                localize(locale, r.skipped) if r.skipped else "",
                r.row_state or "",
            ]
            for r in rows
        ],
        [
            translate(locale, "link"),
            translate(locale, "ref"),
            translate(locale, "email"),
            translate(locale, "step"),
            translate(locale, "due"),
            translate(locale, "action"),
            translate(locale, "why not"),
            translate(locale, "outbox"),
        ],
        locale=locale,
    )


async def reminders_pause(settings: Settings, args: argparse.Namespace) -> None:
    paused = args.reminders_command == "pause"
    async with open_runtime(settings) as rt:
        changed = await rt.services.reminders.set_paused(args.id, paused, actor=ACTOR)
    if args.json:
        print_json({"id": args.id, "reminders_paused": paused, "changed": changed})
        return
    locale = cli_locale(settings)
    if paused:
        message = (
            translate(locale, "%(id)s: reminders paused")
            if changed
            else translate(locale, "%(id)s: reminders were already paused")
        )
    else:
        message = (
            translate(locale, "%(id)s: reminders resumed")
            if changed
            else translate(locale, "%(id)s: reminders were not paused")
        )
    print(message % {"id": args.id})


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("reminders", help="payment reminders").add_subparsers(
        dest="reminders_command", required=True
    )
    p = group.add_parser(
        "preview", help="who would get which reminder on a day, and who would not and why"
    )
    p.add_argument("--date", required=True, help="YYYY-MM-DD, in checkout.timezone")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=reminders_preview)
    for name, text in (
        ("pause", "pause one link's reminders (reminders.paused pauses all)"),
        ("resume", "resume one link's reminders"),
    ):
        p = group.add_parser(name, help=text)
        p.add_argument("id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=reminders_pause)
