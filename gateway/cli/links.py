"""``gateway links create|list|show|revoke|bulk|resend``: the admin API's operations on the
command line, with the same JSON shapes (:mod:`gateway.services.presenters`)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.cli.common import (
    ACTOR,
    CliError,
    CommandFailed,
    cli_locale,
    pad,
    print_fields,
    print_json,
    print_table,
    width,
)
from gateway.cli.reminders import add_reminder_arguments, reminder_fields
from gateway.config import ConfigError, Settings, parse_duration
from gateway.domain.errors import ValidationFailed
from gateway.domain.links import validate_new_link
from gateway.domain.locales import OFFERED
from gateway.domain.money import format_minor
from gateway.domain.text import Text, message_of
from gateway.i18n import localize, translate
from gateway.runtime import open_runtime
from gateway.services.bulk_files import (
    MAX_BODY_BYTES,
    BulkFile,
    BulkFormatError,
    load_json,
    parse_csv,
    parse_json,
)
from gateway.services.bulk_issue import BulkInterrupted, BulkInvalid
from gateway.services.email import EmailNotConfigured
from gateway.services.link_listing import STATUSES, LinkFilter, date_bound
from gateway.services.presenters import detail_json, page_json


async def links_create(settings: Settings, args: argparse.Namespace) -> None:
    try:
        valid_for = parse_duration(
            args.valid_for or settings.checkout.default_valid_for, "--valid-for"
        )
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    new = validate_new_link(
        email=args.email,
        name=args.name,
        description=args.description or "",
        currency=args.currency or settings.checkout.default_currency,
        items=list(args.item or []),
        ref=args.ref or "",
        valid_for=valid_for,
        max_valid_for=settings.tokens.max_age,
        locale=args.locale,
        due=args.due,
        reminders=args.reminders,
        now=datetime.now(UTC),
        timezone=settings.checkout.timezone,
    )
    async with open_runtime(settings) as rt:
        if args.send and not rt.mailer.enabled:
            raise EmailNotConfigured
        created = await rt.admin.create(
            new, actor="cli", send=args.send, allow_duplicate_ref=args.allow_duplicate_ref
        )
    data = created.as_dict()
    locale = cli_locale(settings)
    if args.json:
        print_json(data)
    else:
        if created.existing:
            print(
                translate(
                    locale,
                    "Ref %(ref)s already has a live link, so none was created: %(id)s (pass "
                    "--allow-duplicate-ref to issue another, or revoke that one first)",
                )
                % {"ref": created.ref, "id": created.id}
            )
            if created.differs:
                differs = translate(locale, "it differs from what you typed in: %(fields)s")
                print("  " + differs % {"fields": ", ".join(created.differs)})
        else:
            print(translate(locale, "Link %(id)s created") % {"id": created.id})
        fields = [(translate(locale, "payer"), f"{data['name']} <{data['payer_email']}>")]
        for item in data["items"]:
            qty = f" x{item['quantity']}" if item["quantity"] > 1 else ""
            value = f"{item['description']}: {item['amount_display']}{qty}"
            fields.append((translate(locale, "item"), value))
        fields.append((translate(locale, "total"), data["total"]))
        fields.append((translate(locale, "locale"), _locale_cell(locale, data["locale"])))
        fields += [(translate(locale, k), v) for k, v in reminder_fields(locale, data, settings)]
        fields.append((translate(locale, "url"), created.url))
        print_fields(fields)
        if created.email is not None and created.email.ok:
            emailed = translate(locale, "emailed to %(email)s")
            print("  " + emailed % {"email": data["payer_email"]})
        elif created.email_skipped:
            skipped = translate(locale, "not emailed: %(reason)s")
            print("  " + skipped % {"reason": localize(locale, created.email_skipped)})
    if created.email is not None and not created.email.ok:
        raise CommandFailed(
            Text(
                "%(id)s: email not sent: %(error)s; the link exists: "
                "'gateway links resend %(id)s' tries again",
                id=created.id,
                error=created.email.error,
            )
        )


async def links_revoke(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        changed = await rt.links.revoke(
            args.id, actor="cli", reason=args.reason or "", provider=rt.payments
        )
    if args.json:
        print_json({"id": args.id, "revoked": True, "changed": changed})
    else:
        locale = cli_locale(settings)
        if changed:
            message = translate(locale, "%(id)s revoked")
        else:
            message = translate(locale, "%(id)s was already revoked")
        print(message % {"id": args.id})


def _date(value: str, *, end: bool) -> datetime:
    try:
        return date_bound(value, end=end)
    except ValueError:
        raise ValidationFailed(
            {"date": Text("expected 2026-04-01 or an ISO date-time: %(given)s", given=repr(value))}
        ) from None


# --- links bulk ---------------------------------------------------------------------------


def _read_rows(path: str) -> BulkFile:
    """The file's rows, read by the same rules as the API's (:mod:`gateway.services.bulk_files`)."""
    if path == "-":
        body = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
    else:
        with Path(path).open("rb") as handle:
            body = handle.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        size = MAX_BODY_BYTES // (1024 * 1024)
        raise BulkFormatError(Text("the file is larger than %(size)s MB", size=size))
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if path.lower().endswith(".json") or stripped.startswith((b"[", b"{")):
        return parse_json(load_json(body))
    return parse_csv(body)


async def links_bulk(settings: Settings, args: argparse.Namespace) -> None:
    try:
        rows = _read_rows(args.file)
    except OSError as exc:
        unreadable = Text("cannot read %(file)s: %(reason)s", file=args.file, reason=exc.strerror)
        raise ValidationFailed({"file": unreadable}) from None
    except BulkFormatError as exc:
        raise ValidationFailed({"file": message_of(exc)}) from None
    locale = cli_locale(settings)
    for warning in rows.warnings:
        line = translate(locale, "warning: %(warning)s") % {"warning": localize(locale, warning)}
        print(f"gateway: {line}", file=sys.stderr)
    async with open_runtime(settings) as rt:
        try:
            report = await rt.admin.bulk(
                rows,
                actor=ACTOR,
                dry_run=args.dry_run,
                skip_invalid=args.skip_invalid,
                send=args.send,
                resend=args.resend,
            )
        except BulkInvalid as exc:
            if args.json:
                print_json(exc.report.as_dict())
            for row in exc.report.invalid:
                for field, problem in row.errors.items():
                    line = translate(locale, "row %(row)s (%(ref)s): %(field)s: %(problem)s") % {
                        "row": row.row,
                        "ref": row.ref or translate(locale, "no ref"),
                        "field": field,
                        "problem": localize(locale, problem),
                    }
                    print(f"gateway: {line}", file=sys.stderr)
            raise ValidationFailed({"file": message_of(exc)}) from None
        except BulkInterrupted as exc:
            raise CommandFailed(message_of(exc)) from None
    data = report.as_dict()
    if args.json:
        print_json(data)
    else:
        # The same rows with their messages in the reader's language.
        report_rows = report.as_dict(locale)["rows"]
        print_table(
            [
                [
                    r["row"],
                    r["ref"],
                    r["status"],
                    r.get("name", ""),
                    r.get("payer_email", ""),
                    _items_cell(r.get("items")),
                    r.get("total", ""),
                    r.get("locale") or "",
                    r.get("id", ""),
                    _email_cell(locale, r.get("email")),
                    _notes_cell(locale, r.get("errors"), r.get("differs")),
                ]
                for r in report_rows
            ],
            [
                translate(locale, "row"),
                translate(locale, "ref"),
                translate(locale, "status"),
                translate(locale, "name"),
                translate(locale, "email"),
                translate(locale, "items"),
                translate(locale, "total"),
                translate(locale, "locale"),
                translate(locale, "id"),
                translate(locale, "sent"),
                translate(locale, "notes"),
            ],
            locale=locale,
        )
        if report.dry_run:
            summary = translate(
                locale,
                "%(count)s would create, %(existing)s existing, %(invalid)s invalid, "
                "%(sent)s emailed, %(failed)s email(s) failed",
            )
        else:
            summary = translate(
                locale,
                "%(count)s created, %(existing)s existing, %(invalid)s invalid, "
                "%(sent)s emailed, %(failed)s email(s) failed",
            )
        print(
            summary
            % {
                "count": data["would_create"] if report.dry_run else data["created"],
                "existing": data["existing"],
                "invalid": data["invalid"],
                "sent": data["emails_sent"],
                "failed": data["emails_failed"],
            }
        )
    if data["emails_failed"]:
        raise CommandFailed(
            Text(
                "%(count)s email(s) not sent; the links exist: run the same command again "
                "(links never sent are retried) or 'gateway links resend ID'",
                count=data["emails_failed"],
            )
        )


def _locale_cell(reader: str, locale: str | None) -> str:
    return locale or translate(reader, "- (the payer's browser; emails: the configured default)")


def _notes_cell(locale: str, errors: dict[str, str] | None, differs: list[str] | None) -> str:
    if errors:
        return "; ".join(f"{field}: {problem}" for field, problem in errors.items())
    if differs:
        return translate(locale, "differs: %(fields)s") % {"fields": ", ".join(differs)}
    return ""


def _items_cell(items: list[dict[str, Any]] | None) -> str:
    return "; ".join(
        f"{i['description']} {i['amount_display']}"
        + (f" x{i['quantity']}" if i["quantity"] > 1 else "")
        for i in items or []
    )


def _email_cell(locale: str, email: dict[str, Any] | None) -> str:
    if email is None:
        return ""
    return translate(locale, "sent") if email["sent"] else translate(locale, "FAILED")


# --- links resend -------------------------------------------------------------------------


async def links_resend(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        result = await rt.admin.resend(args.id, actor=ACTOR)
    if args.json:
        print_json(result.as_dict())
    elif result.ok:
        done = translate(cli_locale(settings), "%(id)s emailed to the payer's address on file")
        print(done % {"id": args.id})
    if not result.ok:
        raise CommandFailed(
            Text("%(id)s: email not sent: %(error)s", id=args.id, error=result.error)
        )


# --- links list / show --------------------------------------------------------------------


async def links_list(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        page = await rt.listing.list(
            LinkFilter(
                status=args.status,
                ref_prefix=args.ref_prefix,
                created_from=_date(args.created_from, end=False) if args.created_from else None,
                created_to=_date(args.created_to, end=True) if args.created_to else None,
                limit=args.limit,
                offset=args.offset,
                cursor=args.cursor,
            )
        )
    data = page_json(page)
    if args.json:
        print_json(data if args.page else data["links"])
        return
    locale = cli_locale(settings)
    duplicate = " " + translate(locale, "DUPLICATE")
    print_table(
        [
            [
                r["id"],
                r["ref"],
                r["name"],
                r["amount_display"],
                r["state"],
                r["status"] + (duplicate if r["duplicate_payment"] else ""),
                r["opens"]["count"],
                ", ".join(f"{k} x{v}" for k, v in r["previews"].items()),
                _sent_cell(locale, r["email_delivery"]),
                (r["created_at"] or "")[:10],
            ]
            for r in data["links"]
        ],
        [
            translate(locale, "id"),
            translate(locale, "ref"),
            translate(locale, "name"),
            translate(locale, "amount"),
            translate(locale, "state"),
            translate(locale, "status"),
            translate(locale, "opens"),
            translate(locale, "previews"),
            translate(locale, "sent"),
            translate(locale, "created"),
        ],
        locale=locale,
    )
    if page.next_cursor is not None:
        total = f"{page.total}" if page.total_exact else f"{page.total}+"
        more = translate(locale, "(showing %(shown)s of %(total)s; next page: --cursor %(cursor)s)")
        print(more % {"shown": len(page.links), "total": total, "cursor": page.next_cursor})


def _sent_cell(locale: str, delivery: dict[str, Any]) -> str:
    if delivery["last_error"]:
        return translate(locale, "FAILED")
    return f"x{delivery['sent_count']}" if delivery["sent_count"] else "-"


async def links_show(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        data = detail_json(await rt.links.show(args.id))
    if args.json:
        print_json(data)
        return
    locale = cli_locale(settings)
    labels = {
        "payer": translate(locale, "payer"),
        "for": translate(locale, "for"),
        "total": translate(locale, "total"),
        "valid to": translate(locale, "valid to"),
        "locale": translate(locale, "locale"),
        "opened": translate(locale, "opened"),
        "previews": translate(locale, "previews"),
        "emailed": translate(locale, "emailed"),
        "replaces": translate(locale, "replaces"),
        "url": translate(locale, "url"),
    }
    reminders = reminder_fields(locale, data, settings)
    labels.update({name: translate(locale, name) for name, _ in reminders})
    columns = max(width(label) for label in labels.values())

    def field(name: str, value: str) -> None:
        print(f"  {pad(labels[name], columns)}  {value}".rstrip())

    flag = "  " + translate(locale, "DUPLICATE PAYMENT") if data["duplicate_payment"] else ""
    print(f"{data['id']}  {data['status'].upper()}  {data['ref']}{flag}")
    field("payer", f"{data['name']} <{data['email']}>")
    field("for", data["description"])
    for item in data["items"]:
        qty = f" x{item['quantity']}" if item["quantity"] > 1 else ""
        print(f"    - {item['description']}{qty}: {format_minor(item['amount'], data['currency'])}")
    field("total", data["amount_display"])
    field("valid to", data["valid_until"])
    field("locale", _locale_cell(locale, data["locale"]))
    for name, value in reminders:
        field(name, value)
    opens = data["opens"]
    opened = translate(locale, "%(count)s time(s) by the payer; first %(first)s, last %(last)s")
    field(
        "opened",
        opened
        % {
            "count": opens["count"],
            "first": opens["first_at"] or "-",
            "last": opens["last_at"] or "-",
        },
    )
    if data["previews"]:
        field("previews", ", ".join(f"{k} x{v}" for k, v in data["previews"].items()))
    delivery = data["email_delivery"]
    sent = {"count": delivery["sent_count"], "last": delivery["last_sent_at"] or "-"}
    if delivery["last_error"]:
        emailed = translate(
            locale, "%(count)s time(s); last %(last)s; LAST ATTEMPT FAILED: %(error)s"
        )
        field("emailed", emailed % {**sent, "error": delivery["last_error"]})
    else:
        field("emailed", translate(locale, "%(count)s time(s); last %(last)s") % sent)
    if data["replaces_id"]:
        field("replaces", data["replaces_id"])
    field("url", data["url"])
    if data["orders"]:
        print("  " + translate(locale, "orders:"))
        duplicate_of = translate(locale, "DUPLICATE of %(id)s")
        for o in data["orders"]:
            dup = "  " + duplicate_of % {"id": o["duplicate_of"]} if o["duplicate_of"] else ""
            print(
                f"    {o['id']}  {o['status']:<10} {o['created_at']}  "
                f"{o['cancel_reason'] or ''}{dup}"
            )
    print("  " + translate(locale, "audit:"))
    by = translate(locale, "by %(actor)s")
    for entry in data["audit"]:
        move = f" {entry['from'] or ''}->{entry['to']}" if entry["to"] else ""
        actor = by % {"actor": entry["actor"]}
        print(
            f"    {entry['at']}  {entry['action']}{move}  {actor}  {entry['detail'] or ''}".rstrip()
        )


# --- registration -------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gateway links`` and its subcommands."""
    links = sub.add_parser("links", help="payment links").add_subparsers(
        dest="links_command", required=True
    )
    p = links.add_parser("create", help="issue a link")
    p.add_argument("--email", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--description", default="")
    p.add_argument(
        "--item",
        action="append",
        metavar='"DESCRIPTION=AMOUNT[xQTY]"',
        help='a line item in major units, e.g. "Spring fee=150.00" or "Kit=1,250.00x2" '
        "(a dot for decimals; repeatable)",
    )
    p.add_argument("--currency")
    p.add_argument(
        "--ref",
        default="",
        help="your reference (e.g. 2026-04/family-7); a ref with a live link is not issued again",
    )
    p.add_argument("--valid-for", help="e.g. 30d (default from config)")
    add_reminder_arguments(p)
    p.add_argument(
        "--locale",
        help=f"the payer's language: one of {', '.join(OFFERED)} (any case, pt_br or pt-BR). "
        "Without it the link has none: its pages follow the payer's browser, else "
        "checkout.default_locale; emails and link previews use checkout.default_locale",
    )
    p.add_argument("--send", action="store_true", help="email the link to the payer now")
    p.add_argument(
        "--allow-duplicate-ref",
        action="store_true",
        help="issue a second live link for a ref that already has one",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=links_create)

    p = links.add_parser("list", help="list links, newest first")
    p.add_argument("--ref-prefix")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0, help="rows to skip (slow when deep)")
    p.add_argument("--cursor", help="the next_cursor a previous page printed")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--status",
        choices=STATUSES,
        help="failed: a delayed payment (bank debit) failed and nothing was paid since",
    )
    p.add_argument("--created-from", help="ISO date or date-time (inclusive)")
    p.add_argument("--created-to", help="ISO date (that whole day) or date-time (exclusive)")
    p.add_argument(
        "--page", action="store_true", help="with --json: the API's page object, with totals"
    )
    p.set_defaults(func=links_list)

    p = links.add_parser("show", help="one link with its orders and audit trail")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=links_show)

    p = links.add_parser("revoke", help="withdraw a link")
    p.add_argument("id")
    p.add_argument("--reason")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=links_revoke)
    p = links.add_parser(
        "bulk",
        help="issue links from a CSV or JSON file (one transaction; rows keyed by ref)",
        description=(
            "Columns: email, name, ref, and items ('Desc=150.00 | Kit=25x2') or amount; "
            "optional description, currency, valid_for, locale (one of "
            f"{', '.join(OFFERED)}; empty: the payer's browser decides). CSV in UTF-8 (or "
            "Windows-1252), separated by commas, semicolons or tabs; up to 100,000 rows. A ref "
            "that already has a link (not revoked) is reported as existing and not created "
            "again; --send emails links never sent successfully, --resend existing ones too. Any "
            "invalid row stops the run with nothing created, unless --skip-invalid. Row numbers "
            "are the spreadsheet's (header = row 1)."
        ),
    )
    p.add_argument("file", help="CSV (with a header) or JSON file; - for standard input")
    p.add_argument("--send", action="store_true", help="email links not yet sent")
    p.add_argument("--resend", action="store_true", help="with --send: email existing ones again")
    p.add_argument("--dry-run", action="store_true", help="validate and report, create nothing")
    p.add_argument("--skip-invalid", action="store_true", help="create the valid rows anyway")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=links_bulk)

    p = links.add_parser(
        "resend", aliases=["send"], help="email a link to the payer's address on file"
    )
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=links_resend)
