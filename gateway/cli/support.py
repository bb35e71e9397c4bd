"""``gateway support find QUERY``: the support desk (issue 16) from a terminal.

Whatever the parent sent (an email, a name, a reference, a payment URL, a Stripe id) finds the
links it names; each is printed with what happened to it, the fixes to use and the reply to
send, in the link's language (``gateway.services.support``). ``--json`` prints the same for a
program. The fixes themselves are ``gateway orders refund|mark-paid|attach``, ``gateway
webhooks replay``, ``gateway reconcile`` and ``gateway links``.
"""

from __future__ import annotations

import argparse

from gateway.cli.common import cli_locale, print_json
from gateway.config import Settings
from gateway.i18n import localize, translate
from gateway.runtime import open_runtime
from gateway.services.support import FIX_LABELS, found_json


async def support_find(settings: Settings, args: argparse.Namespace) -> None:
    locale = cli_locale(settings)
    async with open_runtime(settings) as rt:
        desk = rt.services.support
        found = await desk.find(args.query)
        if args.json:
            print_json(found_json(desk, found, locale))
            return
        print(localize(locale, found.label))
        if found.problem:
            print(localize(locale, found.problem))
        if not found.results and not found.problem:
            print(translate(locale, "No link matches."))
        for result in found.results:
            print()
            source = (
                translate(locale, "from this database")
                if result.source == "database"
                else translate(locale, "from Stripe")
            )
            if result.note:
                print(f"{localize(locale, result.note)} ({source})")
            diagnosis = result.diagnosis
            if diagnosis is None:
                continue
            facts = diagnosis.facts
            print(f"{diagnosis.link_id}  {facts['name']}  {facts['ref']}  ({source})")
            print(f"  {desk.sentence(diagnosis, locale)}")
            for fix in diagnosis.fixes:
                print(
                    "  "
                    + translate(locale, "Fix: %(fix)s")
                    % {"fix": translate(locale, FIX_LABELS[fix])}
                )
            if diagnosis.orphan_ids:
                print(
                    "  "
                    + translate(locale, "Orphan payments: %(ids)s")
                    % {"ids": ", ".join(diagnosis.orphan_ids)}
                )
            if diagnosis.event_ids:
                print(
                    "  "
                    + translate(locale, "Events not applied: %(ids)s")
                    % {"ids": ", ".join(diagnosis.event_ids)}
                )
            print("  " + translate(locale, "Reply (%(locale)s):") % {"locale": diagnosis.locale})
            for line in desk.reply(diagnosis).splitlines():
                print(f"    {line}" if line else "")
        if found.more:
            print()
            print(translate(locale, "More links match: type more of the query."))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    support = sub.add_parser("support", help="the support desk").add_subparsers(
        dest="support_command", required=True
    )
    p = support.add_parser("find", help="find links by what a payer sent, and diagnose them")
    p.add_argument("query", help="an email, name, reference, link id, payment URL or Stripe id")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=support_find)
