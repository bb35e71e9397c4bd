"""``gateway demo``: everything in one process (:mod:`gateway.dev.demo`, imported only here)."""

from __future__ import annotations

import argparse

from gateway.config import Settings


def demo(settings: Settings, args: argparse.Namespace) -> None:
    from gateway.dev.demo import run_demo

    run_demo(settings, args)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="everything in one process: SQLite, Stripe emulator, sample links"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--emulator-port", type=int, default=12111)
    p.add_argument("--database", default="var/demo.sqlite3", help="SQLite file for the demo")
    p.set_defaults(func=demo)
