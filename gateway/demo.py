"""``gateway demo``: the whole product in one process, on a fresh machine, with no keys.

A SQLite file, the Stripe emulator on loopback (the gateway still talks to it through the
official SDK, exactly as it would to Stripe), webhooks signed and delivered, and two sample
links printed: open one in a browser, press Pay, then Pay on the emulator's checkout page.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import secrets
import signal

from aiohttp import web

from gateway.app import create_app
from gateway.clock import SystemClock
from gateway.config import Settings
from gateway.demo_mail import MailSink, mail_page_routes
from gateway.domain.links import validate_new_link
from gateway.emulator import StripeEmulator, create_emulator_app
from gateway.logs import configure_logging
from gateway.web.keys import LINKS, MAILER

DEMO_WEBHOOK_SECRET = "whsec_demo"  # noqa: S105 - the demo's own emulator, never real Stripe


def demo_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    gateway_url = f"http://{args.host}:{args.port}"
    emulator_url = f"http://{args.host}:{args.emulator_port}"
    return settings.replace(
        demo=True,
        server=dataclasses.replace(
            settings.server, host=args.host, port=args.port, public_url=gateway_url
        ),
        database=dataclasses.replace(settings.database, url=f"sqlite+aiosqlite:///{args.database}"),
        stripe=dataclasses.replace(
            settings.stripe,
            api_key="sk_test_demo",
            webhook_secret=DEMO_WEBHOOK_SECRET,
            api_base=emulator_url,
            max_retries=1,
        ),
        checkout=dataclasses.replace(
            settings.checkout,
            org_name=settings.checkout.org_name
            if settings.checkout.org_name != "Your organisation"
            else "Riverside Youth Basketball",
        ),
        log=dataclasses.replace(settings.log, json=False, level="WARNING"),
    )


async def _run(settings: Settings, args: argparse.Namespace) -> None:
    clock = SystemClock()
    emulator = StripeEmulator(
        clock=clock,
        public_url=f"http://{args.host}:{args.emulator_port}",
        webhook_url=f"{settings.server.public_url}/stripe/webhook",
        webhook_secret=DEMO_WEBHOOK_SECRET,
        # A restarted demo keeps its database: never reissue ids an earlier run stored.
        seed=secrets.randbits(32),
    )
    # Mail goes to a local sink, shown at /_demo/mail: the sample addresses are not real.
    sink = MailSink()
    await sink.start(args.host)
    admin_key = secrets.token_urlsafe(18)
    settings = settings.replace(
        email=dataclasses.replace(
            settings.email,
            host=args.host,
            port=sink.port,
            tls=False,
            starttls=False,
            user="",
            password="",
            from_address="treasurer@riverside.example",
        ),
        admin=dataclasses.replace(
            settings.admin, api_keys=settings.admin.api_keys or (f"demo:{admin_key}",)
        ),
    )
    gateway_app = create_app(settings, clock=clock)
    gateway_app.router.add_routes(mail_page_routes(sink))
    runners = [web.AppRunner(create_emulator_app(emulator)), web.AppRunner(gateway_app)]
    for runner, port in zip(runners, (args.emulator_port, args.port), strict=True):
        await runner.setup()
        await web.TCPSite(runner, args.host, port).start()
    try:
        links = gateway_app[LINKS]
        one = await links.issue(
            validate_new_link(
                email="sam.parent@example.com",
                name="Sam Rivera",
                description="Spring season fee",
                currency="usd",
                items=["Spring season fee=150.00"],
                ref="2026-04/player-26",
                valid_for=30 * 86400,
                max_valid_for=settings.tokens.max_age,
            ),
            actor="demo",
        )
        two = await links.issue(
            validate_new_link(
                email="alex.parent@example.com",
                name="Alex Chen",
                description="Spring fees, two players",
                currency="usd",
                items=["Spring fee, Maya=150.00", "Spring fee, Leo=120.00"],
                ref="2026-04/family-7",
                valid_for=30 * 86400,
                max_valid_for=settings.tokens.max_age,
            ),
            actor="demo",
        )
        for link in (one, two):
            await gateway_app[MAILER].send_link(link.id, actor="demo")
        key_hint = (
            f"curl -H 'Authorization: Bearer {admin_key}' "
            f"{settings.server.public_url}/admin/api/links"
            if settings.admin.api_keys == (f"demo:{admin_key}",)
            else "(admin keys from your config)"
        )
        print(
            f"""
Checkout-link gateway demo for {settings.checkout.org_name}
  gateway         {settings.server.public_url}
  Stripe emulator {emulator.public_url} (webhooks signed and delivered to the gateway)
  database        {settings.database.url}

Open a sample payment link in your browser:
  one item        {one.url}
  two items       {two.url}

Press Pay, then "Pay" on the emulator's checkout page; the link then shows as paid.
Emails the demo "sent" (the links above, fresh links from expired pages):
  {settings.server.public_url}/_demo/mail
Admin API (OpenAPI at /admin/api/openapi.json), metrics at /metrics:
  {key_hint}
In another terminal, with GATEWAY_DATABASE_URL=sqlite+aiosqlite:///{args.database}:
  gateway links list   /   gateway links show {one.id}
Ctrl-C stops the demo.
""",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        await sink.stop()


def run_demo(settings: Settings, args: argparse.Namespace) -> None:
    settings = demo_settings(settings, args)
    configure_logging(settings.log.level, settings.log.json)
    asyncio.run(_run(settings, args))
