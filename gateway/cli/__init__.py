"""The ``gateway`` command: serve, demo, emulator, links, orders, db.

Human-readable tables by default, ``--json`` where a program would read the output. Errors go to
stderr with exit status 2 (bad input or configuration) or 1 (something failed).

One module per command group (``links``, ``orders``, ``reconcile``, ``webhooks``, ``db``,
``serve``, ``demo``, ``emulator``), each with an ``add_parser``; ``common`` holds the errors and
the printers. ``demo`` and ``emulator`` import :mod:`gateway.dev` only when run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from gateway.cli import db, demo, emulator, links, orders, reconcile, serve, webhooks
from gateway.cli.common import CliError
from gateway.config import ConfigError, Settings, load_settings
from gateway.domain.errors import GatewayError, NotFound, ValidationFailed

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None] | None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: $GATEWAY_CONFIG or ./config.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (demo, serve, emulator, db, links, reconcile, webhooks, orders):
        group.add_parser(sub)
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
