"""``gateway webhooks list|replay``: the webhook inbox."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli.common import cli_locale, print_json, print_table
from gateway.config import Settings
from gateway.i18n import translate
from gateway.runtime import open_runtime
from gateway.services.presenters import iso


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
    locale = cli_locale(settings)
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
        [
            translate(locale, "received"),
            translate(locale, "event"),
            translate(locale, "type"),
            translate(locale, "outcome"),
            translate(locale, "order"),
            translate(locale, "tries"),
            translate(locale, "error"),
        ],
        locale=locale,
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
        locale = cli_locale(settings)
        values = {"event": result.event_id, "outcome": result.outcome, "order": result.order_id}
        if result.order_id:
            print(translate(locale, "%(event)s: %(outcome)s (order %(order)s)") % values)
        else:
            print(translate(locale, "%(event)s: %(outcome)s") % values)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
