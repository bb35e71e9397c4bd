"""``gateway emulator`` / ``python -m gateway.dev.emulator``: run the emulator as a server."""

from __future__ import annotations

import argparse
import logging
import secrets

from aiohttp import web

from gateway.clock import SystemClock
from gateway.dev.emulator.app import create_emulator_app
from gateway.dev.emulator.emulator import StripeEmulator

DEFAULT_PORT = 12111


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument(
        "--public-url",
        help="base URL payers use to reach the hosted page (default http://HOST:PORT)",
    )
    parser.add_argument("--webhook-url", help="where to POST events (default: no webhooks)")
    parser.add_argument("--webhook-secret", default="whsec_emulator", help="signing secret")
    parser.add_argument(
        "--webhook-mode",
        choices=("auto", "manual"),
        default="auto",
        help="auto: deliver events at once; manual: hold them until "
        "POST /_emulator/webhooks/deliver (for tests that choose when)",
    )
    parser.add_argument(
        "--webhook-retry-delays",
        default="0.5,2,10,30",
        help="comma-separated seconds between webhook retries",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed for ids and random faults (default: random, so that a restarted emulator "
        "never reissues ids a database may already hold)",
    )
    faults = parser.add_argument_group("fault injection (all can be changed at runtime)")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added per API call")
    faults.add_argument("--error-rate", type=float, default=0.0, help="share of API calls → 500")
    faults.add_argument("--fail-next", type=int, default=0, help="next N API calls → 500")
    faults.add_argument("--drop-next", type=int, default=0, help="next N API calls: disconnect")
    faults.add_argument(
        "--fault-path",
        action="append",
        dest="fault_paths",
        help="restrict API faults to this path prefix (repeatable)",
    )
    faults.add_argument(
        "--webhook-loss-rate", type=float, default=0.0, help="share of events never delivered"
    )
    faults.add_argument(
        "--duplicate-webhooks", type=float, default=0.0, help="share of events delivered twice"
    )
    faults.add_argument(
        "--reorder-webhooks", action="store_true", help="deliver each batch in reverse order"
    )


def build(args: argparse.Namespace) -> StripeEmulator:
    public_url = args.public_url or f"http://{args.host}:{args.port}"
    delays = [float(d) for d in str(args.webhook_retry_delays).split(",") if d.strip()]
    emulator = StripeEmulator(
        clock=SystemClock(),
        public_url=public_url,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        webhook_mode=args.webhook_mode,
        webhook_retry_delays=delays,
        seed=args.seed if args.seed is not None else secrets.randbits(32),
    )
    emulator.faults.update(
        {
            "latency": args.latency,
            "error_rate": args.error_rate,
            "fail_next": args.fail_next,
            "drop_next": args.drop_next,
            "paths": args.fault_paths,
            "webhook_loss_rate": args.webhook_loss_rate,
            "duplicate_webhooks": args.duplicate_webhooks,
            "reorder_webhooks": args.reorder_webhooks,
        }
    )
    return emulator


def run(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    emulator = build(args)
    print(
        f"Stripe emulator on http://{args.host}:{args.port} (api_base for the SDK), "
        f"seed {emulator.seed}",
        flush=True,
    )
    web.run_app(create_emulator_app(emulator), host=args.host, port=args.port, print=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.dev.emulator", description=__doc__)
    add_arguments(parser)
    run(parser.parse_args(argv))
