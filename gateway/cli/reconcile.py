"""``gateway reconcile``: make the database agree with Stripe, once."""

from __future__ import annotations

import argparse

from gateway.cli.common import CliError, cli_locale, print_json
from gateway.config import Settings
from gateway.domain.text import Text
from gateway.i18n import translate
from gateway.runtime import open_runtime


async def reconcile(settings: Settings, args: argparse.Namespace) -> None:
    async with open_runtime(settings) as rt:
        report = await rt.reconciler.run()
    data = report.as_dict()
    locale = cli_locale(settings)
    if args.json:
        print_json(data)
    elif not report.ran:
        print(translate(locale, "another process is reconciling right now; skipped"))
    else:
        checked = translate(locale, "checked %(events)s Stripe event(s); %(fixes)s fix(es)")
        print(checked % {"events": data["events_checked"], "fixes": report.fixes})
        labels = {
            "events_applied": translate(locale, "events applied"),
            "orders_settled": translate(locale, "orders settled"),
            "sessions_recovered": translate(locale, "sessions recovered"),
            "attempts_retired": translate(locale, "attempts retired"),
            "duplicates": translate(locale, "duplicates"),
            "refunds": translate(locale, "refunds"),
            "events_deferred": translate(locale, "events deferred"),
            "errors": translate(locale, "errors"),
        }
        for key, label in labels.items():
            for entry in data[key]:
                print(f"  {label}: {entry}")
        failed = translate(locale, "failed: %(step)s %(item)s: %(error)s")
        for failure in report.failures:
            print("  " + failed % failure)
    if not report.ok:
        raise CliError(
            Text(
                "reconcile finished with %(errors)s error(s) and %(failures)s failed item(s) "
                "(see above); the rest was done",
                errors=len(report.errors),
                failures=len(report.failures),
            )
        )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reconcile", help="make the database agree with Stripe")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=reconcile)
