"""``gateway mail list|show|retry|cancel``: the outbox on the command line (the admin API's
``/admin/api/mail`` operations, with the same JSON shapes: ``presenters.outbox_json``).

A message's body is never printed: it is built when it is sent. ``retry`` sends the message
at once, so the person who asked sees whether it went; a retry or cancel of a message about a
link is written to the link's audit trail, by ``cli``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from gateway.cli.common import (
    ACTOR,
    CommandFailed,
    cli_locale,
    print_fields,
    print_json,
    print_table,
)
from gateway.config import Settings
from gateway.domain.outbox import Kind, State
from gateway.domain.text import Text
from gateway.i18n import translate
from gateway.runtime import open_runtime
from gateway.services.email import EmailNotConfigured
from gateway.services.presenters import outbox_json


async def mail_list(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        outbox = rt.services.outbox
        if args.cursor:
            await outbox.get(args.cursor)  # not found: say so, rather than start from the top
        found = await outbox.list(
            state=args.state,
            kind=args.kind,
            link_id=args.link,
            limit=args.limit + 1,
            before=args.cursor,
        )
    page = [outbox_json(m) for m in found[: args.limit]]
    next_cursor = page[-1]["id"] if len(found) > args.limit else None
    if args.json:
        print_json({"messages": page, "limit": args.limit, "next_cursor": next_cursor})
        return
    locale = cli_locale(settings)
    print_table(
        [
            [
                m["id"],
                m["kind"],
                m["state"],
                m["recipient"],
                m["link_id"] or "",
                m["attempts"],
                (m["sent_at"] or m["next_attempt_at"] or "")[:19],
                _short(m["last_error"]),
            ]
            for m in page
        ],
        [
            translate(locale, "id"),
            translate(locale, "kind"),
            translate(locale, "state"),
            translate(locale, "to"),
            translate(locale, "link"),
            translate(locale, "tries"),
            translate(locale, "sent/next"),
            translate(locale, "last error"),
        ],
        locale=locale,
    )
    if next_cursor is not None:
        print(translate(locale, "(next page: --cursor %(cursor)s)") % {"cursor": next_cursor})


def _short(text: str | None, chars: int = 60) -> str:
    if not text:
        return ""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _print_message(locale: str, data: dict[str, Any]) -> None:
    print(f"{data['id']}  {data['kind']}  {data['state'].upper()}")
    fields = [
        (translate(locale, "to"), f"{data['recipient']} ({data['locale']})"),
        (translate(locale, "about"), data["subject"]),
    ]
    if data["link_id"]:
        fields.append((translate(locale, "link"), data["link_id"]))
    if data["order_id"]:
        fields.append((translate(locale, "order"), data["order_id"]))
    fields.append(("Message-ID", data["message_id"]))
    attempts = str(data["attempts"])
    if data["crash_resends"]:
        attempts += " " + translate(locale, "(sent again once after its sender died mid-send)")
    fields.append((translate(locale, "attempts"), attempts))
    fields.append((translate(locale, "created"), data["created_at"]))
    if data["sent_at"]:
        fields.append((translate(locale, "sent"), data["sent_at"]))
    elif data["state"] == State.PENDING:
        fields.append((translate(locale, "next try"), data["next_attempt_at"]))
    if data["last_error"]:
        fields.append((translate(locale, "last error"), data["last_error"]))
    print_fields(fields)
    if "payload" in data:
        print("  " + translate(locale, "payload"))
        payload = json.dumps(data["payload"], indent=2, sort_keys=True, default=str)
        print("    " + payload.replace("\n", "\n    "))


async def mail_show(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        data = outbox_json(await rt.services.outbox.get(args.id), payload=True)
    if args.json:
        print_json(data)
    else:
        _print_message(cli_locale(settings), data)


async def mail_retry(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        outbox = rt.services.outbox
        if not outbox.enabled:
            raise EmailNotConfigured
        await outbox.retry(args.id, actor=ACTOR)
        await outbox.send_one(args.id)
        data = outbox_json(await outbox.get(args.id))
    locale = cli_locale(settings)
    if args.json:
        print_json(data)
    elif data["state"] == State.SENT:
        sent = translate(locale, "%(id)s sent to %(email)s")
        print(sent % {"id": args.id, "email": data["recipient"]})
    elif data["state"] == State.PENDING:
        later = translate(
            locale, "%(id)s not sent yet: %(error)s; gateway serve tries again from %(time)s"
        )
        print(later % {"id": args.id, "error": data["last_error"], "time": data["next_attempt_at"]})
    if data["state"] in (State.FAILED, State.SKIPPED):
        raise CommandFailed(
            Text(
                "%(id)s %(state)s: %(error)s",
                id=args.id,
                state=data["state"],
                error=data["last_error"],
            )
        )


async def mail_cancel(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        data = outbox_json(await rt.services.outbox.cancel(args.id, actor=ACTOR))
    if args.json:
        print_json(data)
    else:
        canceled = translate(
            cli_locale(settings),
            "%(id)s canceled: it will not be sent ('gateway mail retry' sends it after all)",
        )
        print(canceled % {"id": args.id})


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gateway mail`` and its subcommands."""
    mail = sub.add_parser("mail", help="the outbox: messages owed to people").add_subparsers(
        dest="mail_command", required=True
    )
    p = mail.add_parser("list", help="list messages, newest first (never their bodies)")
    p.add_argument("--state", choices=[s.value for s in State])
    p.add_argument("--kind", choices=[k.value for k in Kind])
    p.add_argument("--link", help="a link id: its messages only")
    p.add_argument("--limit", type=int, default=50, choices=range(1, 201), metavar="1..200")
    p.add_argument("--cursor", help="the next page's cursor a previous page printed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=mail_list)

    p = mail.add_parser("show", help="one message with its payload")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=mail_show)

    p = mail.add_parser("retry", help="send a failed, canceled or skipped message again, now")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=mail_retry)

    p = mail.add_parser("cancel", help="never send a pending or failed message")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=mail_cancel)
