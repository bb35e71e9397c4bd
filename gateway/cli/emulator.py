"""``gateway emulator``: the Stripe emulator alone (:mod:`gateway.dev.emulator`, imported only
here)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("emulator", help="run the Stripe emulator alone")
    from gateway.dev.emulator import cli as emulator_cli

    emulator_cli.add_arguments(p)
    p.set_defaults(func=lambda _s, a: emulator_cli.run(a))
