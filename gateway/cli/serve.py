"""``gateway serve``: run the gateway (the only command that serves production traffic)."""

from __future__ import annotations

import argparse
import asyncio

from gateway.config import Settings


def serve(settings: Settings, args: argparse.Namespace) -> None:
    from aiohttp import web

    from gateway.app import create_app
    from gateway.logs import configure_logging
    from gateway.services.org_settings import stored_settings

    settings.validate_for_serving()
    configure_logging(settings.log.level, settings.log.json)
    # The console's stored settings (organisation name, contact, time zone, language,
    # reminders, receipts) over config.toml's, read before the app is built from them.
    settings = asyncio.run(stored_settings(settings))
    web.run_app(
        create_app(settings),
        host=args.host or settings.server.host,
        port=args.port or settings.server.port,
        shutdown_timeout=settings.server.shutdown_timeout,
        access_log=None,
        print=lambda *_: None,
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the gateway")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=serve)
