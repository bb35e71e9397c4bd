"""The ``gateway`` command: serve, demo, emulator, links, orders, db.

Human-readable tables by default, ``--json`` where a program would read the output. Errors go to
stderr with exit status 2 (bad input or configuration) or 1 (something failed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from gateway.cli_admin import (
    CommandFailed,
    add_bulk_and_resend,
    add_list_and_show,
    open_admin,
    print_json,
    print_table,
)
from gateway.config import ConfigError, Settings, load_settings, parse_duration
from gateway.domain.errors import GatewayError, NotFound, ValidationFailed
from gateway.domain.links import validate_new_link
from gateway.domain.money import format_minor
from gateway.runtime import open_runtime
from gateway.services.email import EmailNotConfigured
from gateway.web.admin_json import iso, order_json


class CliError(Exception):
    """Reported on stderr; exit status 2."""


# --- links --------------------------------------------------------------------------------------


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
    )
    async with open_admin(settings) as a:
        if args.send and not a.mailer.enabled:
            raise EmailNotConfigured
        created = await a.admin.create(
            new, actor="cli", send=args.send, allow_duplicate_ref=args.allow_duplicate_ref
        )
    data = created.as_dict()
    if args.json:
        print_json(data)
    else:
        if created.existing:
            print(
                f"Ref {created.ref} already has a live link, so none was created: {created.id}"
                " (pass --allow-duplicate-ref to issue another, or revoke that one first)"
            )
            if created.differs:
                print(f"  it differs from what you typed in: {', '.join(created.differs)}")
        else:
            print(f"Link {created.id} created")
        print(f"  payer  {data['name']} <{data['payer_email']}>")
        for item in data["items"]:
            qty = f" x{item['quantity']}" if item["quantity"] > 1 else ""
            print(f"  item   {item['description']}: {item['amount_display']}{qty}")
        print(f"  total  {data['total']}")
        print(f"  url    {created.url}")
        if created.email is not None and created.email.ok:
            print(f"  emailed to {data['payer_email']}")
        elif created.email_skipped:
            print(f"  not emailed: {created.email_skipped}")
    if created.email is not None and not created.email.ok:
        raise CommandFailed(
            f"{created.id}: email not sent: {created.email.error}; the link exists: "
            f"'gateway links resend {created.id}' tries again"
        )


async def links_revoke(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        changed = await rt.links.revoke(
            args.id, actor="cli", reason=args.reason or "", provider=rt.payments
        )
    if args.json:
        print_json({"id": args.id, "revoked": True, "changed": changed})
    else:
        print(f"{args.id} revoked" if changed else f"{args.id} was already revoked")


async def orders_list(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        rows = [
            order_json(o)
            for o in await rt.links.orders(limit=args.limit, offset=args.offset, status=args.status)
        ]
    if args.json:
        print_json(rows)
        return
    print_table(
        [
            [
                r["id"],
                r["link_id"],
                r["status"],
                format_minor(r["amount_total"], r["currency"]),
                r["created_at"],
                r["cancel_reason"] or "",
                ("duplicate of " + r["duplicate_of"]) if r["duplicate_of"] else "",
            ]
            for r in rows
        ],
        ["id", "link", "status", "amount", "created", "reason", "flags"],
    )


async def reconcile(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        report = await rt.reconciler.run()
    data = report.as_dict()
    if args.json:
        print_json(data)
    elif not report.ran:
        print("another process is reconciling right now; skipped")
    else:
        print(f"checked {data['events_checked']} Stripe event(s); {report.fixes} fix(es)")
        for key in (
            "events_applied",
            "orders_settled",
            "sessions_recovered",
            "attempts_retired",
            "duplicates",
            "refunds",
            "events_deferred",
            "errors",
        ):
            for entry in data[key]:
                print(f"  {key.replace('_', ' ')}: {entry}")
        for failure in report.failures:
            print(f"  failed: {failure['step']} {failure['item']}: {failure['error']}")
    if not report.ok:
        raise CliError(
            f"reconcile finished with {len(report.errors)} error(s) and "
            f"{len(report.failures)} failed item(s) (see above); the rest was done"
        )


async def webhooks_list(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        rows: list[dict[str, Any]] = [
            {
                "event_id": e.event_id,
                "type": e.type,
                "received_at": iso(e.received_at),
                "processed_at": iso(e.processed_at),
                "source": e.source,
                "outcome": e.outcome,
                "order_id": e.order_id,
                "attempts": e.attempts,
                "error": e.error,
            }
            for e in await rt.webhooks.recent(limit=args.limit, outcome=args.outcome)
        ]
    if args.json:
        print_json(rows)
        return
    print_table(
        [
            [
                r["received_at"],
                r["event_id"],
                r["type"],
                r["outcome"],
                r["order_id"] or "",
                r["attempts"],
                (r["error"] or "")[:60],
            ]
            for r in rows
        ],
        ["received", "event", "type", "outcome", "order", "tries", "error"],
    )


async def webhooks_replay(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        event = await rt.payments.retrieve_event(args.event_id)
        result = await rt.webhooks.handle(event, source="replay", force=True)
    if args.json:
        print_json(
            {"event_id": result.event_id, "outcome": result.outcome, "order_id": result.order_id}
        )
    else:
        print(
            f"{result.event_id}: {result.outcome}"
            + (f" (order {result.order_id})" if result.order_id else "")
        )


async def db_upgrade(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.adapters.db.engine import create_database
    from gateway.adapters.db.migrate import current_revision, upgrade

    db = create_database(settings.database.url)
    try:
        await upgrade(db)
        print(f"database at revision {await current_revision(db)}")
    finally:
        await db.dispose()


# --- servers ------------------------------------------------------------------------------------


def serve(settings: Settings, args: argparse.Namespace) -> None:
    from aiohttp import web

    from gateway.app import create_app
    from gateway.logs import configure_logging

    settings.validate_for_serving()
    configure_logging(settings.log.level, settings.log.json)
    web.run_app(
        create_app(settings),
        host=args.host or settings.server.host,
        port=args.port or settings.server.port,
        shutdown_timeout=settings.server.shutdown_timeout,
        access_log=None,
        print=lambda *_: None,
    )


def demo(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.dev.demo import run_demo

    run_demo(settings, args)


# --- argument parsing ---------------------------------------------------------------------------

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None] | None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: $GATEWAY_CONFIG or ./config.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "demo", help="everything in one process: SQLite, Stripe emulator, sample links"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--emulator-port", type=int, default=12111)
    p.add_argument("--database", default="var/demo.sqlite3", help="SQLite file for the demo")
    p.set_defaults(func=demo)

    p = sub.add_parser("serve", help="run the gateway")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=serve)

    p = sub.add_parser("emulator", help="run the Stripe emulator alone")
    from gateway.dev.emulator import cli as emulator_cli

    emulator_cli.add_arguments(p)
    p.set_defaults(func=lambda _s, a: emulator_cli.run(a), needs_settings=False)

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    p = db.add_parser("upgrade", help="apply migrations")
    p.set_defaults(func=db_upgrade)

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
    p.add_argument("--send", action="store_true", help="email the link to the payer now")
    p.add_argument(
        "--allow-duplicate-ref",
        action="store_true",
        help="issue a second live link for a ref that already has one",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=links_create)

    add_list_and_show(links)

    p = links.add_parser("revoke", help="withdraw a link")
    p.add_argument("id")
    p.add_argument("--reason")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=links_revoke)

    p = sub.add_parser("reconcile", help="make the database agree with Stripe")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=reconcile)

    hooks = sub.add_parser("webhooks", help="the webhook inbox").add_subparsers(
        dest="webhooks_command", required=True
    )
    p = hooks.add_parser("list", help="received events, newest first")
    p.add_argument(
        "--outcome", help="applied, unchanged, ignored, invalid, deferred, failed, received"
    )
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=webhooks_list)
    p = hooks.add_parser("replay", help="fetch an event from Stripe and apply it again")
    p.add_argument("event_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=webhooks_replay)

    orders = sub.add_parser("orders", help="checkout attempts").add_subparsers(
        dest="orders_command", required=True
    )
    p = orders.add_parser("list", help="list orders, newest first")
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=orders_list)

    add_bulk_and_resend(links)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, demo=args.command == "demo")
        result = args.func(settings, args)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    except (ConfigError, CliError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    except ValidationFailed as exc:
        for field, problem in exc.errors.items():
            print(f"gateway: {field}: {problem}", file=sys.stderr)
        return 2
    except NotFound as exc:
        print(f"gateway: not found: {exc}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
