"""``gateway orders list``: checkout attempts, newest first."""

from __future__ import annotations

import argparse

from gateway.cli.common import cli_locale, print_json, print_table
from gateway.config import Settings
from gateway.domain.money import format_minor
from gateway.i18n import translate
from gateway.runtime import open_runtime
from gateway.services.presenters import order_json


async def orders_list(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        rows = [
            order_json(o)
            for o in await rt.links.orders(limit=args.limit, offset=args.offset, status=args.status)
        ]
    if args.json:
        print_json(rows)
        return
    locale = cli_locale(settings)
    duplicate_of = translate(locale, "duplicate of %(id)s")
    print_table(
        [
            [
                r["id"],
                r["link_id"],
                r["status"],
                format_minor(r["amount_total"], r["currency"]),
                r["created_at"],
                r["cancel_reason"] or "",
                (duplicate_of % {"id": r["duplicate_of"]}) if r["duplicate_of"] else "",
            ]
            for r in rows
        ],
        [
            translate(locale, "id"),
            translate(locale, "link"),
            translate(locale, "status"),
            translate(locale, "amount"),
            translate(locale, "created"),
            translate(locale, "reason"),
            translate(locale, "flags"),
        ],
        locale=locale,
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    orders = sub.add_parser("orders", help="checkout attempts").add_subparsers(
        dest="orders_command", required=True
    )
    p = orders.add_parser("list", help="list orders, newest first")
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=orders_list)
