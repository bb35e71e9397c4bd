"""The ``gateway`` command: serve, demo, emulator, links, orders, users, support, db, ….

Human-readable tables by default, in the user's language (``LANG`` and the other locale
variables, see :mod:`gateway.cli.common`), ``--json`` where a program would read the output.
Errors go to stderr with exit status 2 (bad input or configuration) or 1 (something failed).

One module per command group (``links``, ``orders``, ``reconcile``, ``webhooks``, ``mail``,
``reminders``, ``users``, ``support``, ``db``, ``serve``, ``demo``, ``emulator``), each with an
``add_parser``; ``common`` holds the errors and
the printers. ``demo`` and ``emulator`` import :mod:`gateway.dev` only when run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from gateway.cli import (
    db,
    demo,
    emulator,
    links,
    mail,
    orders,
    reconcile,
    reminders,
    serve,
    support,
    users,
    webhooks,
)
from gateway.cli.common import CliError, cli_locale
from gateway.config import ConfigError, Settings, load_settings
from gateway.domain.errors import GatewayError, NotFound, ValidationFailed
from gateway.domain.text import message_of
from gateway.i18n import localize, translate

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None] | None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: $GATEWAY_CONFIG or ./config.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (
        demo,
        serve,
        emulator,
        db,
        links,
        reconcile,
        webhooks,
        orders,
        mail,
        reminders,
        users,
        support,
    ):
        group.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_settings(args.config, demo=args.command == "demo")
        result = args.func(settings, args)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    except (ConfigError, CliError) as exc:
        print(f"gateway: {localize(cli_locale(settings), message_of(exc))}", file=sys.stderr)
        return 2
    except ValidationFailed as exc:
        locale = cli_locale(settings)
        for field, problem in exc.errors.items():
            print(f"gateway: {field}: {localize(locale, problem)}", file=sys.stderr)
        return 2
    except NotFound as exc:
        not_found = translate(cli_locale(settings), "not found: %(what)s") % {"what": exc}
        print(f"gateway: {not_found}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"gateway: {localize(cli_locale(settings), message_of(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
