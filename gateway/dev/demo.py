"""``gateway demo``: the whole product in one process, on a fresh machine, with no keys.

A SQLite file, the Stripe emulator on loopback (the gateway still talks to it through the
official SDK, exactly as it would to Stripe), webhooks signed and delivered, and sample links in
every state a parent can meet: fresh, paid, processing, failed, expired and revoked. The paid,
processing, failed and revoked ones get there through the real flow (Pay pressed over HTTP, the
session paid on the emulator, its webhooks delivered to the gateway), the expired one by issuing
it on a clock set back past its validity, the renewed one the same way and then "Email me a new
link" pressed for it. ``/_demo/gallery`` (gateway.dev.gallery) links every page they lead to,
in every offered language.

The emulator keeps its sessions in memory only, so every run starts from a fresh database (the
previous run's file is kept beside it as ``*.previous``): a link left over from an earlier run
would send the payer to a session the new emulator never heard of.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import secrets
import shlex
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiohttp import web

from gateway.app import create_app
from gateway.clock import Clock, SystemClock
from gateway.config import ConfigError, Settings
from gateway.dev.emulator import StripeEmulator, create_emulator_app
from gateway.dev.gallery import gallery_routes
from gateway.domain.links import validate_new_link
from gateway.logs import configure_logging
from gateway.services.links import IssuedLink, LinkService
from gateway.services.renewal import RenewOutcome
from gateway.web.keys import (
    ACCOUNTS,
    DATABASE,
    LINKS,
    MAILER,
    PAYMENTS,
    RENEWALS,
    SETTINGS,
    TOKENS,
)

DEMO_WEBHOOK_SECRET = "whsec_demo"  # noqa: S105 - the demo's own emulator, never real Stripe
# What the demo presses Pay with: a phone browser, so the gateway treats it as a person.
_BROWSER = {
    "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Accept-Language": "en-US,en;q=0.9",
}
_SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]+")
_DAY = 86400


@dataclasses.dataclass(frozen=True, slots=True)
class SampleLink:
    """One sample link and what a parent opening it meets."""

    key: str  # unique: fresh, two_items, paid, processing, failed, expired, revoked, renewed
    label: str  # as printed in the banner
    state: str  # the link's state (LinkState): payable, paid, processing, expired, revoked
    page: str  # the page GET /pay/{token} shows a browser: confirm, paid, processing…
    status: int  # its HTTP status
    note: str
    id: str
    url: str

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class DemoSamples:
    """The sample links of this run, filled once they exist; ``GET /_demo/links.json``."""

    def __init__(self) -> None:
        self.links: list[SampleLink] = []
        # The console's demo accounts and their password, once they exist.
        self.console: dict[str, Any] = {}

    def by_key(self) -> dict[str, SampleLink]:
        return {link.key: link for link in self.links}

    def urls(self) -> dict[str, str]:
        return {link.key: link.url for link in self.links}

    def routes(self) -> list[web.RouteDef]:
        async def links_json(_: web.Request) -> web.Response:
            return web.json_response(
                {
                    "ready": bool(self.links),
                    "links": [s.as_dict() for s in self.links],
                    "console": self.console,
                }
            )

        return [web.get("/_demo/links.json", links_json, name="demo_links")]


class _SetBack:
    """The demo's clock, ``seconds`` earlier: a link issued on it is already past its validity."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds

    def now(self) -> float:
        return self._clock.now() - self._seconds


def demo_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    gateway_url = f"http://{args.host}:{args.port}"
    emulator_url = f"http://{args.host}:{args.emulator_port}"
    database = Path(args.database).resolve()
    return settings.replace(
        demo=True,
        server=dataclasses.replace(
            settings.server, host=args.host, port=args.port, public_url=gateway_url
        ),
        database=dataclasses.replace(settings.database, url=f"sqlite+aiosqlite:///{database}"),
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
            contact_email=settings.checkout.contact_email or "treasurer@riverside.example",
        ),
        log=dataclasses.replace(settings.log, json=False, level="WARNING"),
    )


def start_fresh(database: Path) -> Path | None:
    """Move an earlier run's database (and its journal files) aside to ``NAME.previous``.

    Returns where it went, or None when there was none. Only the one previous run is kept.
    """
    if not database.exists():
        return None
    previous = database.with_name(database.name + ".previous")
    for suffix in ("", "-wal", "-shm", "-journal"):
        source = Path(f"{database}{suffix}")
        target = Path(f"{previous}{suffix}")
        if source.exists():
            os.replace(source, target)
        elif target.exists():
            target.unlink()  # a stale journal of the older .previous would corrupt the newer
    return previous


def gateway_command() -> str:
    """How to call ``gateway`` from the folder the demo runs in, as the user would type it."""
    script = Path(sys.executable).parent / "gateway"
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m gateway.cli"
    found = shutil.which("gateway")
    if found and Path(found).resolve() == script.resolve():
        return "gateway"
    with contextlib.suppress(ValueError):
        return shlex.quote(str(script.absolute().relative_to(Path.cwd())))
    return shlex.quote(str(script))


def cli_environment(settings: Settings, args: argparse.Namespace) -> dict[str, str]:
    """The settings another terminal needs for ``gateway links …`` against this demo."""
    env = {
        "GATEWAY_DEMO": "1",
        "GATEWAY_DATABASE_URL": settings.database.url,
        "GATEWAY_STRIPE_API_BASE": settings.stripe.api_base,
        "GATEWAY_SERVER_PUBLIC_URL": settings.server.public_url,
    }
    config = getattr(args, "config", None) or os.environ.get("GATEWAY_CONFIG")
    if config:
        env["GATEWAY_CONFIG"] = str(Path(config).resolve())
    return env


async def issue_samples(
    app: web.Application,
    emulator: StripeEmulator,
    *,
    clock: Clock,
    actor: str = "demo",
) -> list[SampleLink]:
    """Issue one link per state a parent can meet and drive each there through the real flow.

    Pay is pressed over HTTP on the running gateway, the session is paid on the emulator (as
    its hosted page would), and the emulator's signed webhooks move the order. Each link's
    state is then read back from the database: a sample that did not get where it should
    stops the demo with a message instead of printing a wrong label.
    """
    links = app[LINKS]
    settings = app[SETTINGS]

    def new(ref: str, name: str, description: str, items: Sequence[str], valid_for: float) -> Any:
        return validate_new_link(
            email=f"{name.split()[0].lower()}.parent@example.com",
            name=name,
            description=description,
            currency="usd",
            items=list(items),
            ref=ref,
            valid_for=valid_for,
            max_valid_for=settings.tokens.max_age,
        )

    async def send(link: IssuedLink) -> IssuedLink:
        # Emailed as a club would (to the demo's mail sink): the first step every parent meets.
        if app[MAILER].enabled:
            await app[MAILER].send_link(link.id, actor=actor)
        return link

    async def issue(ref: str, name: str, description: str, *items: str) -> IssuedLink:
        return await send(
            await links.issue(new(ref, name, description, items, 30 * _DAY), actor=actor)
        )

    async with aiohttp.ClientSession(headers=_BROWSER) as http:

        async def press_pay(link: IssuedLink) -> str:
            async with http.post(link.url, allow_redirects=False) as response:
                location = response.headers.get("Location", "")
                found = _SESSION_ID.search(location)
                if response.status != 303 or not found:
                    raise RuntimeError(f"demo: Pay on {link.id} answered {response.status}")
                return found[0]

        async def pay(
            link: IssuedLink, outcome: Literal["paid", "async"], settle: bool | None = None
        ) -> None:
            session_id = await press_pay(link)
            emulator.pay(session_id, outcome)
            if settle is not None:
                emulator.settle_async(session_id, settle)
            await emulator.deliver_webhooks()

        fresh = await issue(
            "2026-04/player-26", "Sam Rivera", "Spring season fee", "Spring season fee=150.00"
        )
        two = await issue(
            "2026-04/family-7",
            "Alex Chen",
            "Spring fees, two players",
            "Spring fee, Maya=150.00",
            "Spring fee, Leo=120.00",
        )
        paid = await issue("2026-04/player-12", "Jordan Lee", "Spring season fee", "Fee=150.00")
        await pay(paid, "paid")
        processing = await issue(
            "2026-04/player-31", "Priya Patel", "Spring season fee", "Fee=150.00"
        )
        await pay(processing, "async")
        failed = await issue("2026-04/player-40", "Morgan Diaz", "Spring season fee", "Fee=150.00")
        await pay(failed, "async", settle=False)
        revoked = await issue("2026-04/player-44", "Casey Brown", "Spring season fee", "Fee=150.00")
        await press_pay(revoked)  # a checkout started, then the treasurer withdrew the link
        await links.revoke(
            revoked.id, actor=actor, reason="issued twice by mistake", provider=app[PAYMENTS]
        )

    # Issued 31 days ago, valid for 30: its validity passed yesterday.
    earlier = LinkService(
        app[DATABASE], app[TOKENS], _SetBack(clock, 31 * _DAY), settings.server.public_url
    )
    expired = await send(
        await earlier.issue(
            new("2026-03/player-8", "Robin Park", "Winter season fee", ["Fee=120.00"], 30 * _DAY),
            actor=actor,
        )
    )
    # Expired too, then "Email me a new link" pressed on it: its page now says a new link went.
    renewed = await send(
        await earlier.issue(
            new("2026-03/player-9", "Noa Kim", "Winter season fee", ["Fee=120.00"], 30 * _DAY),
            actor=actor,
        )
    )
    renewal = await app[RENEWALS].renew(renewed.id, token_expired=True)
    if renewal.outcome is not RenewOutcome.SENT:
        raise RuntimeError(f"demo: renewing the renewed sample link gave {renewal.outcome}")

    samples = [
        (fresh, "fresh", "fresh, one item", "payable", "confirm", 200, "press Pay"),
        (two, "two_items", "fresh, two items", "payable", "confirm", 200, "press Pay"),
        (paid, "paid", "paid", "paid", "paid", 409, "Already paid"),
        (
            processing,
            "processing",
            "processing",
            "processing",
            "processing",
            409,
            "a bank debit, not settled yet",
        ),
        (
            failed,
            "failed",
            "failed",
            "payable",
            "confirm",
            200,
            "its bank debit failed: it can be paid again",
        ),
        (expired, "expired", "expired", "expired", "expired", 410, "offers a fresh link"),
        (revoked, "revoked", "revoked", "revoked", "revoked", 410, "withdrawn by the club"),
        (
            renewed,
            "renewed",
            "renewed",
            "revoked",
            "revoked",
            410,
            "expired, a new link emailed in its place",
        ),
    ]
    result: list[SampleLink] = []
    for link, key, label, state, page, status, note in samples:
        actual = (await links.show(link.id)).state
        if actual != state:
            raise RuntimeError(f"demo: the {key} sample link is {actual}, not {state}")
        result.append(SampleLink(key, label, state, page, status, note, link.id, link.url))
    return result


# The console's demo accounts, one per role, all with the run's password (printed, and in
# /_demo/links.json for the browser suite: a demo on loopback, never a deployment).
CONSOLE_ACCOUNTS = {
    "admin": "admin@riverside.example",
    "treasurer": "treasurer@riverside.example",
    "viewer": "viewer@riverside.example",
}


async def add_console_accounts(app: web.Application, password: str) -> None:
    from gateway.domain.accounts import Role

    accounts = app[ACCOUNTS]
    for role, email in CONSOLE_ACCOUNTS.items():
        invitation = await accounts.add(email, Role(role), name=f"Demo {role}", actor="demo")
        await accounts.accept(invitation.url.rstrip("/").rsplit("/", 1)[1], password)


def banner(
    settings: Settings,
    args: argparse.Namespace,
    emulator: StripeEmulator,
    samples: Sequence[SampleLink],
    previous: Path | None,
    key_hint: str,
    console_password: str = "",
) -> str:
    width = max(len(s.label) for s in samples)
    rows = "\n".join(f"  {s.label:<{width}}  {s.url}\n  {'':<{width}}  ({s.note})" for s in samples)
    env = cli_environment(settings, args)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    cmd = gateway_command()
    fresh = (
        f"Started fresh (the emulator keeps sessions in memory only); the last run's database is "
        f"kept as {previous}."
        if previous
        else "Every run starts fresh: the emulator keeps its sessions in memory only."
    )
    return f"""
Checkout-link gateway demo for {settings.checkout.org_name}
  gateway         {settings.server.public_url}
  Stripe emulator {emulator.public_url} (webhooks signed and delivered to the gateway)
  database        {settings.database.url}
{fresh}

Sample payment links, one for every state a parent can meet (JSON: /_demo/links.json):
{rows}

The treasurers' console, {settings.server.public_url}/admin/ (password {console_password}):
  {"  /  ".join(f"{email} ({role})" for role, email in CONSOLE_ACCOUNTS.items())}

Every payer page in every language, for reviewers and translators:
  {settings.server.public_url}/_demo/gallery

Open a fresh one, press Pay, then "Pay" on the emulator's checkout page; it then shows as paid.
Emails the demo "sent" (every sample link, fresh links asked for from expired pages):
  {settings.server.public_url}/_demo/mail
Admin API (OpenAPI at /admin/api/openapi.json), metrics at /metrics:
  {key_hint}
The command line, in another terminal in this folder:
  export {exports}
  {cmd} links list   /   {cmd} links show {samples[0].id}
Ctrl-C stops the demo.
"""


async def _run(settings: Settings, args: argparse.Namespace, previous: Path | None) -> None:
    clock = SystemClock()
    emulator = StripeEmulator(
        clock=clock,
        public_url=f"http://{args.host}:{args.emulator_port}",
        webhook_url=f"{settings.server.public_url}/stripe/webhook",
        webhook_secret=DEMO_WEBHOOK_SECRET,
        seed=secrets.randbits(32),
    )
    from gateway.dev.demo_mail import MailSink, mail_page_routes  # aiosmtpd: the demo extra

    # Mail goes to a local sink, shown at /_demo/mail: the sample addresses are not real.
    sink = MailSink()
    await sink.start(args.host)
    admin_key = secrets.token_urlsafe(18)
    console_password = "demo-" + secrets.token_urlsafe(9)
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
    samples = DemoSamples()
    gateway_app.router.add_routes(samples.routes())
    gateway_app.router.add_routes(gallery_routes(samples.urls))
    runners = [web.AppRunner(create_emulator_app(emulator)), web.AppRunner(gateway_app)]
    try:
        for runner, port in zip(runners, (args.emulator_port, args.port), strict=True):
            await runner.setup()
            await web.TCPSite(runner, args.host, port).start()
        samples.links = await issue_samples(gateway_app, emulator, clock=clock)
        await add_console_accounts(gateway_app, console_password)
        samples.console = {"password": console_password, "accounts": CONSOLE_ACCOUNTS}
        key_hint = (
            f"curl -H 'Authorization: Bearer {admin_key}' "
            f"{settings.server.public_url}/admin/api/links"
            if settings.admin.api_keys == (f"demo:{admin_key}",)
            else "(admin keys from your config)"
        )
        text = banner(settings, args, emulator, samples.links, previous, key_hint, console_password)
        print(text, flush=True)
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
    try:
        import aiosmtpd  # noqa: F401 - only the demo's mail sink needs it
    except ImportError:
        raise ConfigError(
            "gateway demo needs the demo extra (its local mail sink, aiosmtpd): "
            "pip install 'checkout-link-gateway[demo]', or from a clone: "
            "pip install -r requirements/demo.lock"
        ) from None
    settings = demo_settings(settings, args)
    configure_logging(settings.log.level, settings.log.json)
    previous = start_fresh(Path(args.database).resolve())
    asyncio.run(_run(settings, args, previous))
