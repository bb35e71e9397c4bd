"""``gateway reconcile``: make the database agree with Stripe, once."""

from __future__ import annotations

import argparse

from gateway.cli.common import CliError, print_json
from gateway.config import Settings
from gateway.runtime import open_runtime


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


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reconcile", help="make the database agree with Stripe")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=reconcile)
