"""``gateway orders``: checkout attempts, newest first (``list``), and the money operations of
issue 16 (``gateway.services.refunds``, ``manual_payments``, ``orphans``):

- ``refund ORDER_ID [--amount 50.00] --reason TEXT [--expect 150.00]``: refund all or part of a
  paid order; ``--expect`` is the refundable amount you saw (refused if it changed meanwhile);
- ``mark-paid LINK_ID --amount 150.00 --method cash|bank_transfer|other --note TEXT``: a payment
  made outside Stripe;
- ``orphans [--all]``: payments Stripe holds with no order here (found by ``gateway reconcile``);
- ``attach ORPHAN_ID --reason TEXT``: record one on the link it names (the payer gets a receipt).
"""

from __future__ import annotations

import argparse

from gateway.cli.common import cli_locale, print_json, print_table
from gateway.config import Settings
from gateway.domain.money import format_minor
from gateway.i18n import translate
from gateway.runtime import open_runtime
from gateway.services.manual_payments import METHODS
from gateway.services.orphans import orphan_json
from gateway.services.presenters import order_json
from gateway.services.refunds import parse_amount


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
    outside = translate(locale, "paid outside Stripe: %(method)s")
    print_table(
        [
            [
                r["id"],
                r["link_id"],
                r["status"],
                format_minor(r["amount_total"], r["currency"]),
                r["created_at"],
                r["cancel_reason"] or "",
                "; ".join(
                    flag
                    for flag in (
                        (duplicate_of % {"id": r["duplicate_of"]}) if r["duplicate_of"] else "",
                        (outside % {"method": r["method"]}) if r["method"] != "stripe" else "",
                    )
                    if flag
                ),
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


async def orders_refund(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        refunds = rt.services.money.refunds
        expected: int | None = None
        if args.expect is not None:
            shown = await refunds.refundable(args.id)
            expected = parse_amount(args.expect, shown.currency, "expect")
        done = await refunds.refund(
            args.id,
            amount=args.amount,
            reason=args.reason,
            expected_refundable=expected,
            actor="cli",
        )
    if args.json:
        print_json(done.as_dict())
        return
    locale = cli_locale(settings)
    message = translate(
        locale, "refunded %(amount)s of order %(order)s (Stripe refund %(refund)s); %(left)s left"
    )
    print(
        message
        % {
            "amount": format_minor(done.amount, done.currency),
            "order": done.order_id,
            "refund": done.stripe_refund_id,
            "left": format_minor(done.refundable, done.currency),
        }
    )


async def orders_mark_paid(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        marked = await rt.services.money.manual.mark_paid(
            args.link_id, amount=args.amount, method=args.method, note=args.note, actor="cli"
        )
    if args.json:
        print_json(marked.as_dict())
        return
    locale = cli_locale(settings)
    if marked.changed:
        message = translate(
            locale, "%(link)s marked paid: %(amount)s (%(method)s), order %(order)s"
        )
    else:
        message = translate(
            locale, "%(link)s was already marked paid: %(amount)s (%(method)s), order %(order)s"
        )
    print(
        message
        % {
            "link": marked.link_id,
            "amount": format_minor(marked.amount, marked.currency),
            "method": marked.method,
            "order": marked.order_id,
        }
    )


async def orders_orphans(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        found = await rt.services.money.orphans.list(attached=None if args.all else False)
    rows = [orphan_json(o) for o in found]
    if args.json:
        print_json(rows)
        return
    locale = cli_locale(settings)
    print_table(
        [
            [
                r["id"],
                r["payment_intent_id"],
                r["amount_display"],
                r["link_id"] or "",
                r["found_at"],
                r["attached_order_id"] or "",
            ]
            for r in rows
        ],
        [
            translate(locale, "id"),
            translate(locale, "payment"),
            translate(locale, "amount"),
            translate(locale, "link"),
            translate(locale, "found"),
            translate(locale, "attached to"),
        ],
        locale=locale,
    )


async def orders_attach(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        attached = await rt.services.money.orphans.attach(args.id, reason=args.reason, actor="cli")
    if args.json:
        print_json(attached.as_dict())
        return
    locale = cli_locale(settings)
    if attached.changed:
        message = translate(locale, "%(orphan)s attached: order %(order)s on %(link)s")
    else:
        message = translate(locale, "%(orphan)s was already attached: order %(order)s on %(link)s")
    print(
        message
        % {
            "orphan": attached.orphan.id,
            "order": attached.order_id,
            "link": attached.orphan.link_id,
        }
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

    p = orders.add_parser("refund", help="refund all or part of a paid order through Stripe")
    p.add_argument("id", metavar="ORDER_ID")
    p.add_argument("--amount", help="major units (50.00); default: all that is refundable")
    p.add_argument("--reason", required=True, help="why (audited)")
    p.add_argument(
        "--expect",
        metavar="REFUNDABLE",
        help="the refundable amount you saw (150.00): refused if it changed meanwhile",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=orders_refund)

    p = orders.add_parser("mark-paid", help="record a payment made outside Stripe")
    p.add_argument("link_id", metavar="LINK_ID")
    p.add_argument("--amount", required=True, help="the link's total, major units (150.00)")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--note", required=True, help="what was received, from whom (audited)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=orders_mark_paid)

    p = orders.add_parser("orphans", help="payments at Stripe with no order here")
    p.add_argument("--all", action="store_true", help="also those attached already")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=orders_orphans)

    p = orders.add_parser("attach", help="record an orphan payment on the link it names")
    p.add_argument("id", metavar="ORPHAN_ID")
    p.add_argument("--reason", required=True, help="why (audited)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=orders_attach)
