"""``gateway links list|show|bulk|resend``: the admin API's operations on the command line,
with the same JSON shapes (``gateway.web.admin_json``), and the two printers every ``gateway``
command writes with (:func:`print_json`, :func:`print_table`).

Added to :func:`gateway.cli.build_parser` by :func:`add_list_and_show` and
:func:`add_bulk_and_resend`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.adapters.mail import SmtpMailer
from gateway.config import Settings
from gateway.domain.errors import GatewayError, ValidationFailed
from gateway.domain.money import format_minor
from gateway.runtime import Runtime, open_runtime
from gateway.services.admin_links import (
    STATUSES,
    AdminLinks,
    BulkInterrupted,
    BulkInvalid,
    LinkFilter,
)
from gateway.services.bulk_files import (
    MAX_BODY_BYTES,
    BulkFile,
    BulkFormatError,
    load_json,
    parse_csv,
    parse_json,
)
from gateway.services.email import LinkMailer
from gateway.web.admin_json import detail_json, page_json
from gateway.web.pages import resource_dir

ACTOR = "cli"


class CommandFailed(GatewayError):
    """Something did not work (an email not sent); exit status 1."""


@dataclass(frozen=True, slots=True)
class AdminRuntime:
    rt: Runtime
    mailer: LinkMailer
    admin: AdminLinks


@asynccontextmanager
async def open_admin(settings: Settings) -> AsyncIterator[AdminRuntime]:
    async with open_runtime(settings) as rt:
        smtp = SmtpMailer(settings.email) if settings.email.enabled else None
        mailer = LinkMailer(
            rt.db, rt.links, smtp, settings, rt.clock, str(resource_dir("templates"))
        )
        admin = AdminLinks(rt.db, rt.links, mailer, rt.payments, settings, rt.clock)
        yield AdminRuntime(rt, mailer, admin)


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    text = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in text:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    if not rows:
        print("(none)")


def _date(value: str, *, end: bool) -> datetime:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            {"date": f"expected 2026-04-01 or an ISO date-time: {value!r}"}
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- links bulk ---------------------------------------------------------------------------


def _read_rows(path: str) -> BulkFile:
    """The file's rows, read by the same rules as the API's (:mod:`gateway.services.bulk_files`)."""
    if path == "-":
        body = sys.stdin.buffer.read(MAX_BODY_BYTES + 1)
    else:
        with Path(path).open("rb") as handle:
            body = handle.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise BulkFormatError(f"the file is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if path.lower().endswith(".json") or stripped.startswith((b"[", b"{")):
        return parse_json(load_json(body))
    return parse_csv(body)


async def links_bulk(settings: Settings, args: argparse.Namespace) -> None:
    try:
        rows = _read_rows(args.file)
    except OSError as exc:
        raise ValidationFailed({"file": f"cannot read {args.file}: {exc.strerror}"}) from None
    except BulkFormatError as exc:
        raise ValidationFailed({"file": str(exc)}) from None
    for warning in rows.warnings:
        print(f"gateway: warning: {warning}", file=sys.stderr)
    async with open_admin(settings) as a:
        try:
            report = await a.admin.bulk(
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
                    print(
                        f"gateway: row {row.row} ({row.ref or 'no ref'}): {field}: {problem}",
                        file=sys.stderr,
                    )
            raise ValidationFailed({"file": str(exc)}) from None
        except BulkInterrupted as exc:
            raise CommandFailed(str(exc)) from None
    data = report.as_dict()
    if args.json:
        print_json(data)
    else:
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
                    r.get("id", ""),
                    _email_cell(r.get("email")),
                    "; ".join(f"{k}: {v}" for k, v in (r.get("errors") or {}).items())
                    or ("differs: " + ", ".join(r["differs"]) if r.get("differs") else ""),
                ]
                for r in data["rows"]
            ],
            ["row", "ref", "status", "name", "email", "items", "total", "id", "sent", "notes"],
        )
        verb = "would create" if report.dry_run else "created"
        print(
            f"{data['would_create'] if report.dry_run else data['created']} {verb}, "
            f"{data['existing']} existing, {data['invalid']} invalid, "
            f"{data['emails_sent']} emailed, {data['emails_failed']} email(s) failed"
        )
    if data["emails_failed"]:
        raise CommandFailed(
            f"{data['emails_failed']} email(s) not sent; the links exist: run the same command "
            "again (links never sent are retried) or 'gateway links resend ID'"
        )


def _items_cell(items: list[dict[str, Any]] | None) -> str:
    return "; ".join(
        f"{i['description']} {i['amount_display']}"
        + (f" x{i['quantity']}" if i["quantity"] > 1 else "")
        for i in items or []
    )


def _email_cell(email: dict[str, Any] | None) -> str:
    if email is None:
        return ""
    return "sent" if email["sent"] else "FAILED"


# --- links resend -------------------------------------------------------------------------


async def links_resend(settings: Settings, args: argparse.Namespace) -> None:
    async with open_admin(settings) as a:
        result = await a.admin.resend(args.id, actor=ACTOR)
    if args.json:
        print_json(result.as_dict())
    elif result.ok:
        print(f"{args.id} emailed to the payer's address on file")
    if not result.ok:
        raise CommandFailed(f"{args.id}: email not sent: {result.error}")


# --- links list / show --------------------------------------------------------------------


async def links_list(settings: Settings, args: argparse.Namespace) -> None:
    async with open_admin(settings) as a:
        page = await a.admin.list(
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
    print_table(
        [
            [
                r["id"],
                r["ref"],
                r["name"],
                r["amount_display"],
                r["state"],
                r["status"] + (" DUPLICATE" if r["duplicate_payment"] else ""),
                r["opens"]["count"],
                ", ".join(f"{k} x{v}" for k, v in r["previews"].items()),
                _sent_cell(r["email_delivery"]),
                (r["created_at"] or "")[:10],
            ]
            for r in data["links"]
        ],
        ["id", "ref", "name", "amount", "state", "status", "opens", "previews", "sent", "created"],
    )
    if page.next_cursor is not None:
        total = f"{page.total}" if page.total_exact else f"{page.total}+"
        print(f"(showing {len(page.links)} of {total}; next page: --cursor {page.next_cursor})")


def _sent_cell(delivery: dict[str, Any]) -> str:
    if delivery["last_error"]:
        return "FAILED"
    return f"x{delivery['sent_count']}" if delivery["sent_count"] else "-"


async def links_show(settings: Settings, args: argparse.Namespace) -> None:
    async with open_admin(settings) as a:
        data = detail_json(await a.rt.links.show(args.id))
    if args.json:
        print_json(data)
        return
    flag = "  DUPLICATE PAYMENT" if data["duplicate_payment"] else ""
    print(f"{data['id']}  {data['status'].upper()}  {data['ref']}{flag}")
    print(f"  payer     {data['name']} <{data['email']}>")
    print(f"  for       {data['description']}")
    for item in data["items"]:
        qty = f" x{item['quantity']}" if item["quantity"] > 1 else ""
        print(f"    - {item['description']}{qty}: {format_minor(item['amount'], data['currency'])}")
    print(f"  total     {data['amount_display']}")
    print(f"  valid to  {data['valid_until']}")
    opens = data["opens"]
    print(
        f"  opened    {opens['count']} time(s) by the payer; "
        f"first {opens['first_at'] or '-'}, last {opens['last_at'] or '-'}"
    )
    if data["previews"]:
        print("  previews  " + ", ".join(f"{k} x{v}" for k, v in data["previews"].items()))
    delivery = data["email_delivery"]
    print(
        f"  emailed   {delivery['sent_count']} time(s); last {delivery['last_sent_at'] or '-'}"
        + (f"; LAST ATTEMPT FAILED: {delivery['last_error']}" if delivery["last_error"] else "")
    )
    if data["replaces_id"]:
        print(f"  replaces  {data['replaces_id']}")
    print(f"  url       {data['url']}")
    if data["orders"]:
        print("  orders:")
        for o in data["orders"]:
            dup = f"  DUPLICATE of {o['duplicate_of']}" if o["duplicate_of"] else ""
            print(
                f"    {o['id']}  {o['status']:<10} {o['created_at']}  "
                f"{o['cancel_reason'] or ''}{dup}"
            )
    print("  audit:")
    for entry in data["audit"]:
        move = f" {entry['from'] or ''}->{entry['to']}" if entry["to"] else ""
        print(
            f"    {entry['at']}  {entry['action']}{move}  by {entry['actor']}  "
            f"{entry['detail'] or ''}".rstrip()
        )


# --- registration -------------------------------------------------------------------------


def add_list_and_show(links: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``list`` (with the admin API's filters) and ``show`` to ``gateway links``."""
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


def add_bulk_and_resend(links: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bulk`` and ``resend`` (alias ``send``) to ``gateway links``."""
    p = links.add_parser(
        "bulk",
        help="issue links from a CSV or JSON file (one transaction; rows keyed by ref)",
        description=(
            "Columns: email, name, ref, and items ('Desc=150.00 | Kit=25x2') or amount; "
            "optional description, currency, valid_for. CSV in UTF-8 (or Windows-1252), "
            "separated by commas, semicolons or tabs; up to 100,000 rows. A ref that already "
            "has a link (not revoked) is reported as existing and not created again; --send "
            "emails links never sent successfully, --resend existing ones too. Any invalid row "
            "stops the run with nothing created, unless --skip-invalid. Row numbers are the "
            "spreadsheet's (header = row 1)."
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
